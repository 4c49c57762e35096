"""corpus_takedown: publish a version without revoked or soon-expiring items (daily).

Thin wiring over `pipeline.refresh` (the same code as `corpus takedown`). When nothing
must go, every task finds the latest version already committed and does nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from pipeline.assets import CORPUS_VERSIONS

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(minutes=2)}


@dag(
    dag_id="corpus_takedown",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["corpus", "rights"],
    params={
        "horizon_days": Param(
            7,
            type="integer",
            minimum=0,
            description="Also remove licences lapsing within this many days",
        ),
    },
    doc_md=__doc__,
)
def corpus_takedown():
    @task
    def plan(params=None, run_id=None, data_interval_end=None, logical_date=None) -> str:
        from pipeline.airflow_glue import settings_for, task_date
        from pipeline.refresh.takedown import plan_takedown

        as_of = task_date(data_interval_end, logical_date)
        return plan_takedown(settings_for(params), run_id, as_of, params["horizon_days"]).version

    @task
    def dedup(version: str, params=None) -> list[dict]:
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh import dedup as layout

        return [{"version": version, "job": j} for j in layout(settings_for(params), version)]

    @task(max_active_tis_per_dagrun=4)
    def write_shard(ref: dict, params=None) -> dict:
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh import write_shard as write

        return write(settings_for(params), ref["version"], ref["job"])

    @task(outlets=[CORPUS_VERSIONS])
    def commit(version: str, params=None) -> dict:
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh import commit as commit_version

        return commit_version(settings_for(params), version)

    @task
    def withdraw(version: str, params=None) -> list[str]:
        """The older versions that hold a removed item (commit marked them withdrawn)."""
        from pipeline.airflow_glue import settings_for
        from pipeline.refresh.takedown import withdraw_older

        return withdraw_older(settings_for(params), version)

    version = plan()
    written = write_shard.expand(ref=dedup(version))
    committed = commit(version)
    written >> committed >> withdraw(version)


corpus_takedown()
