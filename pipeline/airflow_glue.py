"""Airflow-facing helpers: settings from Variables/params/environment, the logical date.

Airflow Variables (`corpus_store`, `corpus_mongo_uri`, `corpus_partners`, `corpus_policy`,
also settable as `AIRFLOW_VAR_CORPUS_*`) override the `CORPUS_*` environment; DAG run
params `partners` and `policy` override both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pipeline.config import Settings


def _variable(name: str) -> str | None:
    from airflow.sdk import Variable

    try:
        return Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - no Variable backend reachable: fall back to env
        return None


def settings_for(params: dict | None) -> Settings:
    params = params or {}
    return Settings.from_env(
        partners=params.get("partners") or _variable("corpus_partners"),
        policy=params.get("policy") or _variable("corpus_policy"),
        store=_variable("corpus_store"),
        mongo_uri=_variable("corpus_mongo_uri"),
    )


def task_date(data_interval_end: datetime | None, logical_date: datetime | None) -> date:
    """Licences are judged on the UTC date at the end of the run's data interval."""
    moment = data_interval_end or logical_date or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()
