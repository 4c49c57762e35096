"""The DAGs run the way a deployment runs them: a scheduler, a DAG processor and an API server,
the LocalExecutor starting each task in its own task process, runs made by the schedule and
through the REST API. `airflow dags test` runs every task in one process and hides what only
separate task processes meet (issue: analysis workers re-ran `bin/airflow` and died)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from PIL import Image

from tests.fixtures.airflow import Deployment
from tests.fixtures.browser import ARTIFACTS, CHROMIUM_FLAGS
from tests.fixtures.browser import chromium as browser

CORPUS = str(Path(sys.executable).with_name("corpus"))
DESCRIBED = ("item_key", "audio_sha256", "license_id", "split", "key", "scale", "bpm")


def corpus(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [CORPUS, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=900
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def rows(store: Path, version: str) -> list[tuple]:
    manifest = json.loads((store / "versions" / version / "manifest.json").read_text())
    files = [str(store / shard["path"]) for shard in manifest["shards"]]
    table = ds.dataset(files, format="parquet").to_table(columns=list(DESCRIBED))
    return sorted(tuple(row.values()) for row in table.to_pylist())


@pytest.fixture
def deployment(corpus_env, tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUS_BATCH_SIZE", "5")
    monkeypatch.setenv("CORPUS_SHARD_TARGET_BYTES", "1000000")
    corpus("demo-data")
    airflow = Deployment(tmp_path / "airflow", dict(os.environ)).start()
    try:
        yield airflow
    finally:
        airflow.stop()


def test_scheduled_refresh_takedown_and_audit_under_the_scheduler(
    deployment, corpus_env, mongo_server_uri, tmp_path
):
    for dag_id in ("corpus_refresh", "corpus_takedown", "corpus_audit"):
        deployment.wait_for_dag(dag_id)
    deployment.unpause("corpus_audit")
    deployment.unpause("corpus_refresh")
    [run] = deployment.wait_for_runs("corpus_refresh", timeout=1200)
    assert run["state"] == "success" and run["run_type"] == "scheduled"
    tasks = deployment.task_instances("corpus_refresh", run["dag_run_id"])
    analysed = [t for t in tasks if t["task_id"] == "analyse"]
    assert len(analysed) >= 4
    assert {(t["state"], t["try_number"]) for t in tasks} == {("success", 1)}, tasks

    store = corpus_env / "store"
    [version] = [p.name for p in (store / "versions").iterdir()]
    manifest = json.loads((store / "versions" / version / "manifest.json").read_text())
    as_of = run["data_interval_end"][:10]
    assert manifest["as_of"] == as_of and manifest["run_id"] == run["dag_run_id"]

    # The same delivery refreshed from the command line, into its own store and database.
    cli_store = tmp_path / "cli-store"
    cli_env = {
        **os.environ,
        "CORPUS_STORE": str(cli_store),
        "CORPUS_MONGO_URI": f"{mongo_server_uri}/cli_twin?directConnection=true",
    }
    partners = str(corpus_env / "home" / "demo" / "partners.yaml")
    cli = json.loads(
        corpus("refresh", "--json", "--as-of", as_of, "--partners", partners, env=cli_env).stdout
    )
    assert manifest["counts"]["accepted"] == cli["accepted"]
    assert manifest["counts"]["rejected"] == cli["rejected"]
    assert rows(store, version) == rows(cli_store, cli["version"])

    # A revocation, then the takedown DAG made by the REST API (and its own schedule).
    item_key = rows(store, version)[0][0]
    partner, track = item_key.split(":", 1)
    corpus("revoke", "--partner", partner, "--track", track, "--reason", "artist request")
    deployment.unpause("corpus_takedown")
    triggered = deployment.trigger("corpus_takedown")
    runs = deployment.wait_for_runs("corpus_takedown", count=2, timeout=900)
    assert triggered in {r["dag_run_id"] for r in runs}
    assert {r["state"] for r in runs} == {"success"}
    versions = sorted(p.name for p in (store / "versions").iterdir())
    [takedown] = [v for v in versions if v != version]
    assert item_key not in {r[0] for r in rows(store, takedown)}

    # corpus_audit follows the corpus-versions Asset that both commits update.
    report = store / "audits" / takedown / "report.html"
    deployment.wait(report.is_file, 600, f"the audit report of {takedown}")
    audits = deployment.wait_for_runs("corpus_audit", timeout=600)
    assert {r["run_type"] for r in audits} == {"asset_triggered"}

    logs = deployment.task_logs()
    assert logs, "the task processes wrote their logs"
    assert not [p for p, text in logs.items() if "Traceback" in text], deployment.failed_task_logs()

    screenshot_of_the_grid(deployment, tmp_path)


def screenshot_of_the_grid(deployment: Deployment, tmp_path: Path) -> None:
    """What a user sees in the Airflow UI after the scheduled run: the DAG's page, its grid
    of task instances (one row per task, mapped ones folded) and the run's duration bar."""
    chromium = browser()
    page = f"{deployment.url}/dags/corpus_refresh"
    browse = [chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=20000"]
    dom = subprocess.run(
        [*browse, f"--user-data-dir={tmp_path / 'chromium-dom'}", "--dump-dom", page],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
    assert "Page Not Found" not in dom
    for task_id in ("plan", "analyse", "dedup", "write_shard", "commit", "corpus-versions"):
        assert task_id in dom, task_id
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "airflow-grid.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [*browse, f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,900",
         f"--screenshot={shot}", page],
        capture_output=True, timeout=180, check=True,
    )  # fmt: skip
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=2_000_000)
    greens = sum(n for n, (r, g, b) in colours if g > 100 and g > r + 40 and g > b + 20)
    assert greens > 20_000, "the successful run is drawn in green (its tasks and duration bar)"
