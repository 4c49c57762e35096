"""Dedup and layout: the same recording is admitted once; decide which shards to write."""

from __future__ import annotations

import json
from datetime import date

from pipeline.config import Settings
from pipeline.items import Stage, Status, passed, refused_for
from pipeline.reasons import Reason
from pipeline.refresh.commit import IncompleteVersion
from pipeline.refresh.common import (
    refusal,
    rejudge,
    step,
)
from pipeline.shards.manifest import manifest_key


def find_duplicates(items: list[dict]) -> dict[str, tuple[str, str]]:
    """Item key -> (key of the item it duplicates, how it was found); the first in `items`
    order is kept. Identical files first, then audio fingerprints (re-encodes, gain)."""
    from pipeline.audio.fingerprint import find_duplicates as similar_audio

    first_by_audio: dict[str, str] = {}
    duplicates = {}
    for item in items:
        original = first_by_audio.setdefault(item["audio_sha256"], item["item_key"])
        if original != item["item_key"]:
            duplicates[item["item_key"]] = (original, "identical file")
    printed = [
        (item["item_key"], item["fingerprint"])
        for item in items
        if item["item_key"] not in duplicates and item.get("fingerprint")
    ]
    for key, original in similar_audio(printed).items():
        duplicates[key] = (original, "audio fingerprint")
    return duplicates


def is_carried(doc: dict) -> bool:
    """Unchanged since the parent: its row lives in a parent shard (reused or rewritten)."""
    return doc["status"] in (Status.CARRIED, Status.ACCEPTED) and bool(doc.get("parent_shard"))


def dedup(settings: Settings, version: str) -> list[int]:
    """Mark duplicates, then lay out shard jobs; returns the job ids (idempotent)."""
    with step(settings, version) as s:
        if s.meta.get("jobs_planned"):
            return list(range(s.meta["job_count"]))
        pending = [
            b for b in range(s.meta["batch_count"]) if not s.prov.step_done(version, "analyse", b)
        ]
        if pending or s.prov.count(version, Status.LICENSED):
            raise IncompleteVersion(f"version {version}: analysis batches {pending} not done")
        # A re-run after a crash finds carried items already accepted into reused shards,
        # and the duplicates it refused: both are judged again. (A takedown's duplicates are
        # its parent's, and a takedown only removes.)
        retry = s.meta.get("kind") != "takedown"
        found = s.prov.decisions(
            version, statuses=(Status.CARRIED, Status.ANALYSED, Status.ACCEPTED)
        )
        found += s.prov.decisions(version, statuses=(Status.REJECTED,), stage=Stage.DEDUP)
        candidates = [_undecided(d) for d in found if _in_play(d, retry)]
        restored = {
            d["item_key"] for d in found if d["status"] == Status.REJECTED and _in_play(d, retry)
        }
        updates = late_revocations(s, candidates)
        revoked = {u["item_key"] for u in updates}
        candidates = [d for d in candidates if d["item_key"] not in revoked]
        candidates.sort(key=lambda d: (not is_carried(d), d["seq"]))
        duplicates = find_duplicates(candidates)
        for doc in candidates:
            if doc["item_key"] in duplicates:
                original, how = duplicates[doc["item_key"]]
                updates.append(
                    {
                        **doc,
                        **refused_for(
                            Stage.DEDUP, Reason.DUPLICATE, f"same recording as {original} ({how})"
                        ),
                        "duplicate_of": original,
                    }
                )
        kept = [d for d in candidates if d["item_key"] not in duplicates]
        reused, jobs = _layout(s, kept, target=s.meta["shard_target_bytes"])
        for doc in kept:
            if is_carried(doc) and doc["parent_shard"] in reused:
                updates.append({**doc, "status": Status.ACCEPTED, "shard": doc["parent_shard"]})
            elif doc["item_key"] in restored:
                updates.append(doc)
        s.prov.upsert_decisions(updates, s.attempt)
        s.prov.add_shards_to_version(sorted(reused), version)
        s.prov.save_jobs(version, jobs)
        s.prov.upsert_version(
            version,
            reused_shards=sorted(reused),
            job_count=len(jobs),
            duplicates=len(duplicates),
            jobs_planned=True,
        )
        return list(range(len(jobs)))


def _in_play(doc: dict, retry_duplicates: bool) -> bool:
    if doc["status"] == Status.ACCEPTED:
        return bool(doc.get("parent_shard"))
    if doc["status"] == Status.REJECTED:
        return retry_duplicates and doc["stage"] == Stage.DEDUP
    return True


def _undecided(doc: dict) -> dict:
    """A duplicate refused by an interrupted earlier attempt goes back to where it was."""
    if doc["status"] != Status.REJECTED:
        return doc
    carried = bool(doc.get("parent_shard"))
    return {
        **doc,
        **(
            passed(Status.CARRIED, Stage.CARRIED)
            if carried
            else passed(Status.ANALYSED, Stage.AUDIO)
        ),
        "duplicate_of": None,
    }


def late_revocations(s, candidates: list[dict], revocations: list[dict] | None = None):
    """Refusals for items revoked after `plan` judged them (while audio was analysed), so
    a revocation recorded during the build does not land in the version. `revocations`:
    those in effect, when the caller has read them already."""
    as_of = date.fromisoformat(s.meta["as_of"])
    if revocations is None:
        revocations = s.prov.revocations(s.policy.needed_until(as_of).isoformat())
    refused = []
    for doc in candidates:
        licence, decision = rejudge(doc, s.policy, as_of, revocations)
        if not decision.accepted and licence.model_dump(mode="json") != doc["license"]:
            note = " (revoked while the version was built)"
            refused.append({**doc, **refusal(licence, decision, Stage.LICENCE, note)})
    return refused


def _layout(s, kept: list[dict], target: int) -> tuple[set[str], list[dict]]:
    """Reuse parent shards whose items all carry over; rewrite the others; pack new items."""
    parent = s.meta.get("parent")
    parent_shards = []
    if parent:
        manifest = json.loads(s.store.get(manifest_key(parent)))
        parent_shards = [shard["path"] for shard in manifest["shards"]]
    carried = {d["item_key"]: d for d in kept if is_carried(d)}
    members = s.prov.shard_members(parent) if parent else {}
    reused, jobs = set(), []
    for path in parent_shards:
        keys = members.get(path, [])
        keep = [k for k in keys if k in carried]
        if keep and len(keep) == len(keys):
            reused.add(path)
        elif keep:
            jobs.append({"kind": "rewrite", "source": path, "items": sorted(keep)})
    new_items = [d for d in kept if d["status"] == Status.ANALYSED]
    group, size = [], 0
    for doc in new_items:
        if group and size + doc.get("audio_bytes", 0) > target:
            jobs.append({"kind": "new", "items": group})
            group, size = [], 0
        group.append(doc["item_key"])
        size += doc.get("audio_bytes", 0)
    if group:
        jobs.append({"kind": "new", "items": group})
    return reused, jobs
