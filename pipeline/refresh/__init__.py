"""The corpus refresh in resumable steps; the CLI runs them in order, the DAG as tasks.

  plan           read catalogs a chunk at a time, validate, decide licences, record every
                 item; carry over unchanged items of the parent version; batch the rest for
                 analysis; when nothing changed, share the parent's decisions (share.py)
  analyse_batch  fetch + checksum, decode once, quality gate, descriptors (mapped)
  dedup          the same recording twice is admitted once; lay out the shard jobs
  write_shard    write one new shard, or rewrite a parent shard without removed items (mapped)
  commit         write the version manifest last; from then on the version exists

Every step is keyed by the version id (derived from the run id), writes by upsert and
leaves a completion marker, so re-running any step after a crash neither duplicates nor
loses anything.
"""

from pipeline.refresh.analyse import analyse_batch
from pipeline.refresh.commit import IncompleteVersion, commit, summary
from pipeline.refresh.dedup import dedup
from pipeline.refresh.plan import Plan, plan
from pipeline.refresh.run import run_refresh, run_takedown
from pipeline.refresh.write import write_shard

__all__ = [
    "IncompleteVersion",
    "Plan",
    "analyse_batch",
    "commit",
    "dedup",
    "plan",
    "run_refresh",
    "run_takedown",
    "summary",
    "write_shard",
]
