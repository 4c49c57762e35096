"""End to end through real Airflow: `airflow dags test` on its own metadata database."""

import json
import os
import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient

from tests.oracle import expected_counts, expected_outcomes

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_corpus_refresh_dag_runs_end_to_end(corpus_env, mongo_uri, tmp_path):
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CORPUS_BATCH_SIZE": "5",
        "CORPUS_SHARD_TARGET_BYTES": "1000000",
    }
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    run = subprocess.run(
        [AIRFLOW, "dags", "test", "corpus_refresh", "2026-11-20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "DagRun Finished" in log and "state=success" in log, log[-4000:]
    assert "map_index=3" in log

    versions = list((corpus_env / "store" / "versions").iterdir())
    assert len(versions) == 1
    manifest = json.loads((versions[0] / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-20"
    assert manifest["run_id"].startswith("manual__")
    outcomes = expected_outcomes()
    accepted, rejected = expected_counts()
    assert manifest["counts"]["accepted"] == len(accepted)
    assert manifest["counts"]["rejected"] == rejected
    assert len(manifest["shards"]) >= 2
    assert "write_shard" in log and "map_index=1" in log
    db = MongoClient(mongo_uri).get_default_database()
    assert db.decisions.count_documents({"version": manifest["version"]}) == len(outcomes)
    actors = {e["actor"] for e in db.events.find({"run_id": manifest["run_id"]})}
    assert actors == {"airflow:corpus_refresh"}
    assert db.items.count_documents({"current": True, "status": "accepted"}) == len(accepted)
