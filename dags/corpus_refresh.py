"""corpus_refresh: pull partner catalogs, admit licensed audio, commit a corpus version.

Thin wiring only: every task calls `pipeline.refresh`, the same code as `corpus refresh`.
The pipeline is imported inside the tasks so DAG parsing stays fast and free of I/O.
XCom carries only the version id and batch or job numbers; the data lives in provenance.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from pipeline.assets import CORPUS_VERSIONS

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(minutes=2)}


@dag(
    dag_id="corpus_refresh",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["corpus"],
    params={
        "partners": Param(None, type=["null", "string"], description="Partners file (YAML)"),
        "policy": Param(None, type=["null", "string"], description="Corpus policy (YAML)"),
    },
    doc_md=__doc__,
)
def corpus_refresh():
    @task
    def plan(params=None, run_id=None, data_interval_end=None, logical_date=None) -> dict:
        """Read catalogs, validate, decide licences, record every item."""
        from pipeline.airflow_glue import settings_for, task_date
        from pipeline.refresh import plan as plan_run

        result = plan_run(settings_for(params), run_id, task_date(data_interval_end, logical_date))
        return {"version": result.version, "batches": result.batches}

    @task
    def analysis_batches(planned: dict) -> list[dict]:
        return [{"version": planned["version"], "batch": b} for b in planned["batches"]]

    @task(max_active_tis_per_dagrun=4)
    def analyse(ref: dict, params=None) -> dict:
        """Fetch, checksum, decode once, quality gate and descriptors for one batch."""
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh import analyse_batch

        return analyse_batch(settings_for(params), ref["version"], ref["batch"])

    @task
    def dedup(planned: dict, params=None) -> list[dict]:
        """Admit each recording once and lay out the shard jobs."""
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh import dedup as dedup_version

        jobs = dedup_version(settings_for(params), planned["version"])
        return [{"version": planned["version"], "job": j} for j in jobs]

    @task(max_active_tis_per_dagrun=4)
    def write_shard(ref: dict, params=None) -> dict:
        """Write one new shard, or rewrite a parent shard without removed items."""
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh import write_shard as write

        return write(settings_for(params), ref["version"], ref["job"])

    @task(outlets=[CORPUS_VERSIONS])
    def commit(planned: dict, params=None) -> dict:
        """Write the version manifest last: the version exists from this moment."""
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh import commit as commit_version

        return commit_version(settings_for(params), planned["version"])

    planned = plan()
    analysed = analyse.expand(ref=analysis_batches(planned))
    jobs = dedup(planned)
    analysed >> jobs
    written = write_shard.expand(ref=jobs)
    written >> commit(planned)


corpus_refresh()
