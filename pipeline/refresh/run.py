"""The whole refresh in one process: what `corpus refresh` runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from pipeline.config import Settings
from pipeline.refresh.analyse import analyse_batch
from pipeline.refresh.commit import commit
from pipeline.refresh.dedup import dedup
from pipeline.refresh.plan import Plan, partners_file, plan
from pipeline.refresh.write import write_shard


def run_refresh(
    settings: Settings,
    as_of: date | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> dict:
    started = time.monotonic()
    partners_file(settings)  # refused before any store is opened
    as_of = as_of or datetime.now(UTC).date()
    run_id = run_id or f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    the_plan = plan(settings, run_id, as_of)
    if on_plan:
        on_plan(the_plan)
    if not the_plan.committed:
        for batch in the_plan.batches:
            analyse_batch(settings, the_plan.version, batch, progress)
        for job in dedup(settings, the_plan.version):
            write_shard(settings, the_plan.version, job)
    result = commit(settings, the_plan.version)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def run_takedown(
    settings: Settings,
    as_of: date | None = None,
    run_id: str | None = None,
    horizon_days: int = 7,
) -> dict:
    """The takedown in this process: what `corpus takedown` runs."""
    from pipeline.refresh.takedown import plan_takedown, withdraw_older

    started = time.monotonic()
    as_of = as_of or datetime.now(UTC).date()
    run_id = run_id or f"takedown__{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    the_plan = plan_takedown(settings, run_id, as_of, horizon_days)
    if not the_plan.committed:
        for job in dedup(settings, the_plan.version):
            write_shard(settings, the_plan.version, job)
    result = commit(settings, the_plan.version)
    result["withdrawn"] = withdraw_older(settings, the_plan.version)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result
