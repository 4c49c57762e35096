"""Sharing: a refresh where nothing a decision rests on changed makes a version that uses
its parent's decision records (`decisions_from`) and shards, and writes none per item."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.catalogs.partners import Partner
from pipeline.items import Status


def digest(values: list[str]) -> str:
    return hashlib.sha256("\n".join(values).encode()).hexdigest()


def may_share(parent_meta: dict | None, context: dict, as_of: date) -> bool:
    """Whether the parent's decisions would all come out the same on `as_of`, deliveries
    aside: same policy, descriptor set, partners and revocations in effect, and no licence
    date between the parent's logical date and this one (`holds_until`)."""
    if not parent_meta or parent_meta.get("kind") == "takedown" or parent_meta.get("withdrawn"):
        return False
    if any(parent_meta.get(key) != value for key, value in context.items()):
        return False
    if "holds_until" not in parent_meta or as_of.isoformat() < parent_meta["as_of"]:
        return False
    holds = parent_meta["holds_until"]
    return holds is None or as_of.isoformat() <= holds


def audio_unchanged(records: list[dict], hosts: dict[str, list[str]]) -> bool:
    """Whether the audio behind the parent's admitted and audio-refused items is as it was:
    by the delivered checksum an admitted row was checked against, else by its stamp."""
    for record in records:
        if record["status"] == Status.ACCEPTED and record.get("sha256"):
            continue
        stamp = audio_stamp(record["audio_location"], hosts.get(record["partner"], []))
        if stamp is None or stamp != record.get("audio_stamp"):
            return False
    return True


def earlier_deliveries(prov, parent: str, partners: list[Partner]) -> dict[str, dict]:
    found = prov.deliveries([f"{parent}/{p.id}" for p in partners])
    return {d["partner"]: d for d in found}


def shared_plan(
    prov,
    parent_meta: dict,
    earlier: dict[str, dict],
    version: str,
    run_id: str,
    as_of: date,
    fields: dict,
    parent_manifest: dict,
) -> None:
    """A version whose deliveries, policy, partners, revocations and audio are those of its
    parent, on a date where no licence changes: it uses the parent's decisions and shards
    (`decisions_from`) and writes no record per item."""
    parent = parent_meta["_id"]
    validation = {
        partner: {**d["validation"], "reused_from": d["validation"].get("reused_from") or parent}
        for partner, d in earlier.items()
        if d.get("validation")
    }
    skip = ("_id", "version", "run_id", "as_of", "read_at", "validation")
    prov.record_deliveries(
        [
            {k: v for k, v in d.items() if k not in skip}
            | {
                "version": version,
                "run_id": run_id,
                "as_of": as_of.isoformat(),
                "validation": validation.get(partner),
                "read_at": datetime.now(UTC),
            }
            for partner, d in earlier.items()
        ]
    )
    shards = [shard["path"] for shard in parent_manifest["shards"]]
    prov.add_shards_to_version(shards, version)
    prov.upsert_version(
        version,
        run_id=run_id,
        as_of=as_of.isoformat(),
        status="building",
        parent=parent,
        decisions_from=parent_meta.get("decisions_from") or parent,
        examples=parent_meta.get("examples"),
        validation=validation,
        holds_until=parent_meta["holds_until"],
        items=parent_meta["items"],
        licensed=0,
        batch_count=0,
        planned=True,
        reused_shards=shards,
        job_count=0,
        duplicates=0,
        jobs_planned=True,
        **fields,
    )
    prov.record_event(run_id, "decisions-shared", version=version, decisions_from=parent)


def audio_stamp(location: str, allowed_hosts: list[str] | tuple[str, ...] = ()) -> str | None:
    """`size:mtime_ns` of a local audio file, `gs:<generation>:<size>` of a gs:// object (its
    metadata; nothing downloaded) in an allowed bucket, `missing` when there is none, and None
    for other remote audio (or a store that cannot be asked), whose state cannot be known
    without fetching it. Asked only for licence-admitted items."""
    if location.startswith("gs://"):
        from pipeline.audio.fetch import host_allowed

        if not host_allowed(location, allowed_hosts):
            return None
        from pipeline.catalogs.location import object_stamp

        return object_stamp(location)
    if "://" in location:
        return None
    try:
        stat = Path(location).stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"
