"""corpus_audit: after every new corpus version, write its audit report and keep it with it.

Scheduled on the `corpus-versions` Asset that the refresh and takedown DAGs update when
they commit, so each version gets its report without anyone asking.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from pipeline.assets import CORPUS_VERSIONS


@dag(
    dag_id="corpus_audit",
    schedule=[CORPUS_VERSIONS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["corpus", "rights"],
    doc_md=__doc__,
)
def corpus_audit():
    @task
    def audit(params=None) -> dict:
        """Report on the latest committed version; store it under audits/<version>/."""
        from pipeline.airflow_glue import settings_for
        from pipeline.audit.publish import audit_version

        return audit_version(settings_for(params), publish=True)

    audit()


corpus_audit()
