"""Takedown: a new version without what was revoked or is about to expire, and nothing else.

Derived from the latest committed version, not from the deliveries: items are only ever
removed here. The removal horizon is the time to the next scheduled refresh, so a licence
that would lapse before then leaves now. Older versions that hold a removed item are
marked withdrawn in provenance (their objects stay: versions are immutable).
"""

from __future__ import annotations

from datetime import date

from pipeline.config import Settings
from pipeline.items import Stage, Status
from pipeline.licensing.policy import Policy
from pipeline.provenance import connect
from pipeline.provenance.ledger import utc_now
from pipeline.refresh.commit import finish_lost_commits
from pipeline.refresh.common import refusal, rejudge
from pipeline.refresh.plan import Plan, existing_plan
from pipeline.shards.manifest import version_id
from pipeline.storage import open_store

NOT_COPIED = ("_id", "updated_at", "batch", "shard", "parent_shard", "attempt")


def plan_takedown(settings: Settings, run_id: str, as_of: date, horizon_days: int = 7) -> Plan:
    """Plan the takedown version; when nothing must go, the latest version is returned as is."""
    version = version_id(as_of, run_id)
    store = open_store(settings.store)
    prov = connect(settings)
    try:
        done = existing_plan(store, prov, version)
        if done:
            return done
        finish_lost_commits(settings, prov, store)
        parent = prov.latest_committed()
        if parent is None:
            raise LookupError("no committed version to take anything down from")
        parent_meta = prov.version(parent)
        policy = Policy.model_validate(parent_meta["policy"])
        horizon = max(policy.min_validity_days, horizon_days)
        judge = policy.model_copy(update={"min_validity_days": horizon})
        read_at = utc_now()
        revocations = prov.revocations(judge.needed_until(as_of).isoformat())
        docs, removed = [], []
        for old in prov.decisions(parent):
            doc = {k: v for k, v in old.items() if k not in NOT_COPIED}
            doc.update(
                version=version, run_id=run_id, as_of=as_of.isoformat(), batch=None, shard=None
            )
            if old["status"] == Status.ACCEPTED:
                licence, decision = rejudge(old, judge, as_of, revocations)
                if decision.accepted:
                    doc.update(
                        status=Status.CARRIED, stage=Stage.CARRIED, parent_shard=old["shard"]
                    )
                else:
                    removed.append(old["item_key"])
                    doc.update(refusal(licence, decision, Stage.TAKEDOWN))
            docs.append(doc)
        if not removed:
            prov.record_event(
                run_id, "takedown-nothing-to-do", version=parent, as_of=as_of.isoformat()
            )
            return Plan(parent, [], committed=True)
        prov.record_event(
            run_id,
            "takedown-started",
            version=version,
            removed=removed,
            horizon_days=horizon,
            policy_hash=parent_meta["policy_hash"],
        )
        prov.upsert_decisions(docs, prov.begin_attempt(version))
        prov.upsert_version(
            version,
            kind="takedown",
            revocations_read_at=read_at,
            run_id=run_id,
            as_of=as_of.isoformat(),
            status="building",
            parent=parent,
            store=store.uri,
            partners=parent_meta["partners"],
            partners_file=parent_meta.get("partners_file"),
            policy=parent_meta["policy"],
            policy_hash=parent_meta["policy_hash"],
            descriptor_set=parent_meta["descriptor_set"],
            validation=parent_meta.get("validation", {}),
            items=len(docs),
            licensed=0,
            carried=sum(d["status"] == Status.CARRIED for d in docs),
            removed=removed,
            horizon_days=horizon,
            batch_count=0,
            shard_target_bytes=parent_meta["shard_target_bytes"],
            planned=True,
        )
        return Plan(version, [], committed=False)
    finally:
        prov.close()


def withdraw_older(settings: Settings, version: str) -> list[str]:
    """The older committed versions holding an item `version` removed: its commit marked
    them withdrawn (and logged it), this reports them."""
    prov = connect(settings, write=False)
    try:
        meta = prov.version(version) or {}
        return prov.versions_holding(meta.get("removed") or [], besides=version)
    finally:
        prov.close()
