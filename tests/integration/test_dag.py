"""The DAG folder parses cleanly, has the expected shape, and stays light at parse time."""

import json
import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_dagbag_imports_without_errors(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags.get("corpus_refresh")
    assert dag is not None
    assert {t.task_id for t in dag.tasks} == {
        "plan",
        "analysis_batches",
        "analyse",
        "dedup",
        "write_shard",
        "commit",
    }
    for mapped in ("analyse", "write_shard"):
        assert type(dag.get_task(mapped)).__name__.endswith("MappedOperator")
    assert "analyse" in dag.get_task("dedup").upstream_task_ids
    assert dag.schedule == "@weekly"
    assert dag.timetable.expression == "0 0 * * 0"
    assert not dag.catchup
    assert dag.get_task("commit").upstream_task_ids >= {"write_shard", "plan"}


def test_takedown_dag_shape(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags["corpus_takedown"]
    assert dag.schedule == "@daily"
    assert {t.task_id for t in dag.tasks} == {"plan", "dedup", "write_shard", "commit", "withdraw"}
    assert dag.get_task("withdraw").upstream_task_ids >= {"commit"}


def test_audit_dag_follows_every_new_version(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    from pipeline.assets import CORPUS_VERSIONS

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"corpus_refresh", "corpus_takedown", "corpus_audit"}
    for producer in ("corpus_refresh", "corpus_takedown"):
        outlets = bag.dags[producer].get_task("commit").outlets
        assert [o.uri for o in outlets] == [CORPUS_VERSIONS.uri]
    assert "corpus-versions" in str(bag.dags["corpus_audit"].timetable.asset_condition)


def test_dag_parse_does_no_heavy_imports(airflow_home):
    code = (
        "import runpy, sys, json; runpy.run_path(sys.argv[1]);"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('essentia', 'pyarrow', 'pymongo', 'pipeline', 'great_expectations', 'librosa'))))"
    )
    for dag_file in sorted(DAGS.glob("*.py")):
        result = subprocess.run(
            [sys.executable, "-c", code, str(dag_file)], capture_output=True, text=True, check=True
        )
        loaded = json.loads(result.stdout.strip().splitlines()[-1])
        heavy = [m for m in loaded if m not in ("pipeline", "pipeline.assets")]
        assert not heavy, (dag_file.name, heavy)
