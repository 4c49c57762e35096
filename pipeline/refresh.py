"""The corpus refresh, in three resumable steps the CLI and the Airflow DAG both run.

  plan(settings, run_id, as_of)    read catalogs, decide licences, record every item,
                                    split licensed items into batches
  process_batch(version, batch)    fetch, decode, describe, write one shard (mapped task)
  commit(version)                  write the version manifest last; the version now exists

Each step is keyed by the version id (derived from the run id) and leaves completion
markers in provenance, so re-running any step after a crash neither duplicates nor loses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pipeline.audio.fetch import FetchError, fetch
from pipeline.catalogs import read_partner
from pipeline.catalogs.models import CatalogItem, InvalidRecord
from pipeline.catalogs.partners import load_partners
from pipeline.config import Settings
from pipeline.licensing import decide, load_policy
from pipeline.licensing.policy import Policy
from pipeline.provenance import Provenance, connect
from pipeline.reasons import Reason
from pipeline.shards.manifest import build_manifest, dump, manifest_key, version_id
from pipeline.shards.rows import shard_row
from pipeline.shards.writer import shard_key, to_parquet
from pipeline.storage import ObjectExists, open_store

Progress = Callable[[str], None]


class IncompleteVersion(RuntimeError):
    """Commit was asked for a version whose batches are not all done."""


@dataclass(frozen=True)
class Plan:
    version: str
    batches: list[int]
    committed: bool
    licensed: int = 0


def default_partners(settings: Settings):
    """The partners file to use: the given one, or the demo delivery (generated once)."""
    if settings.partners is not None:
        return settings.partners
    from pipeline.demo import ensure_demo_delivery

    return ensure_demo_delivery(settings.home / "demo")


def plan(settings: Settings, run_id: str, as_of: date) -> Plan:
    version = version_id(as_of, run_id)
    store = open_store(settings.store)
    prov = connect(settings)
    try:
        existing = prov.version(version)
        if store.exists(manifest_key(version)):
            return Plan(version, [], committed=True)
        if existing and existing.get("planned"):
            batches = list(range(existing["batch_count"]))
            return Plan(version, batches, committed=False, licensed=existing["licensed"])
        partners_file = default_partners(settings)
        policy = load_policy(settings.policy)
        partners = load_partners(partners_file)
        prov.record_event(run_id, "started", version=version, as_of=as_of.isoformat())
        docs = []
        for partner in partners:
            for item in read_partner(partner):
                docs.append(_licence_record(item, policy, as_of, version, run_id, len(docs)))
        licensed = [d for d in docs if d["status"] == "licensed"]
        for index, doc in enumerate(licensed):
            doc["batch"] = index // settings.batch_size
        batch_count = -(-len(licensed) // settings.batch_size)
        prov.upsert_decisions(docs)
        prov.upsert_version(
            version,
            run_id=run_id,
            as_of=as_of.isoformat(),
            status="building",
            store=store.uri,
            partners_file=str(partners_file),
            partners=[p.id for p in partners],
            policy=policy.model_dump(mode="json"),
            policy_hash=policy.hash,
            items=len(docs),
            licensed=len(licensed),
            batch_count=batch_count,
            planned=True,
        )
        return Plan(version, list(range(batch_count)), committed=False, licensed=len(licensed))
    finally:
        prov.close()


def _licence_record(
    item: CatalogItem | InvalidRecord,
    policy: Policy,
    as_of: date,
    version: str,
    run_id: str,
    seq: int,
) -> dict:
    base = {
        "version": version,
        "run_id": run_id,
        "seq": seq,
        "item_key": item.key,
        "partner": item.partner,
        "track_id": item.track_id,
        "as_of": as_of.isoformat(),
        "policy_hash": policy.hash,
        "batch": None,
        "shard": None,
    }
    if isinstance(item, InvalidRecord):
        return {
            **base,
            "isrc": None,
            "source": item.source,
            "raw": item.raw if isinstance(item.raw, dict) else {"line": item.raw},
            "status": "rejected",
            "stage": "catalog",
            "reasons": [Reason.METADATA_INVALID.value],
            "messages": [f"{Reason.METADATA_INVALID}: {item.message}"],
        }
    decision = decide(item.license, policy, as_of)
    return {
        **base,
        "isrc": item.isrc,
        "title": item.title,
        "artists": item.artists,
        "audio_location": item.audio,
        "sha256": item.sha256,
        "license": item.license.model_dump(mode="json"),
        "status": "licensed" if decision.accepted else "rejected",
        "stage": "licence",
        "reasons": [r.value for r in decision.reasons],
        "messages": decision.messages,
    }


def process_batch(
    settings: Settings, version: str, batch: int, progress: Progress | None = None
) -> dict:
    """Audio and shard work for one batch; a finished batch returns its recorded summary."""
    from pipeline.descriptors.essentia_set import DESCRIPTOR_SET_VERSION

    prov = connect(settings)
    try:
        done = prov.batch_done(version, batch)
        if done:
            return _batch_summary(done)
        meta = prov.version(version)
        if meta is None:
            raise LookupError(f"version {version} was never planned")
        policy = Policy.model_validate(meta["policy"])
        store = open_store(meta["store"])
        rows, updates = [], []
        for record in prov.batch_items(version, batch):
            if progress:
                progress(record["item_key"])
            row, update = _audio_stage(record, policy, DESCRIPTOR_SET_VERSION)
            updates.append({**record, **update})
            if row is not None:
                rows.append(row)
        shard = None
        if rows:
            data = to_parquet(rows)
            key = shard_key(data)
            try:
                stored = store.put(key, data, content_type="application/vnd.apache.parquet")
            except ObjectExists:
                stored = store.stat(key)
            shard = {
                "path": key,
                "rows": len(rows),
                "bytes": stored.size,
                "sha256": stored.sha256,
                "crc32c": stored.crc32c,
                "url": store.url(key),
            }
            prov.record_shard(shard, version)
        for update in updates:
            if update["status"] == "accepted":
                update["shard"] = shard["path"]
        prov.upsert_decisions(updates)
        accepted = sum(u["status"] == "accepted" for u in updates)
        summary = {"shard": shard, "accepted": accepted, "rejected": len(updates) - accepted}
        prov.mark_batch_done(version, batch, summary)
        return _batch_summary(summary)
    finally:
        prov.close()


def _batch_summary(doc: dict) -> dict:
    return {k: doc.get(k) for k in ("shard", "accepted", "rejected")}


def _audio_stage(record: dict, policy: Policy, descriptor_set: str) -> tuple[dict | None, dict]:
    """(shard row or None, decision update) for one licensed item; never raises."""
    from pipeline.audio.decode import AudioUndecodable, decode
    from pipeline.descriptors.essentia_set import compute

    def reject(reason: Reason, message: str) -> tuple[None, dict]:
        return None, {
            "status": "rejected",
            "stage": "audio",
            "reasons": [reason.value],
            "messages": [f"{reason}: {message}"],
        }

    try:
        fetched = fetch(record["audio_location"], record.get("sha256"), policy.audio.max_file_bytes)
    except FetchError as exc:
        return reject(exc.reason, str(exc))
    try:
        audio = decode(fetched.path)
    except AudioUndecodable as exc:
        return reject(Reason.AUDIO_UNDECODABLE, str(exc))
    if audio.duration_s < policy.audio.min_duration_s:
        return reject(
            Reason.AUDIO_TOO_SHORT,
            f"{audio.duration_s:.2f} s < {policy.audio.min_duration_s} s",
        )
    try:
        descriptors = compute(audio)
    except Exception as exc:  # noqa: BLE001 - one bad signal must not sink the batch
        return reject(Reason.AUDIO_UNDECODABLE, f"descriptor extraction failed: {exc!r}")
    row = shard_row(record, fetched.data, fetched.sha256, descriptor_set, descriptors)
    row["audio_codec"] = audio.codec
    return row, {
        "status": "accepted",
        "stage": "audio",
        "reasons": [],
        "messages": [],
        "audio_sha256": fetched.sha256,
        "descriptor_set": descriptor_set,
        "descriptors": descriptors,
    }


def commit(settings: Settings, version: str) -> dict:
    """Write the manifest (last) when every batch is done; returns the run summary."""
    from pipeline.descriptors.essentia_set import DESCRIPTOR_SET_VERSION

    prov = connect(settings)
    try:
        meta = prov.version(version)
        if meta is None:
            raise LookupError(f"version {version} was never planned")
        store = open_store(meta["store"])
        key = manifest_key(version)
        if not store.exists(key):
            batches = {b["batch"]: b for b in prov.batches(version) if b.get("done")}
            missing = [b for b in range(meta["batch_count"]) if b not in batches]
            if missing:
                raise IncompleteVersion(f"version {version}: batches {missing} are not done")
            accepted, rejected, rejected_items = prov.reason_counts(version)
            manifest = build_manifest(
                version=version,
                run_id=meta["run_id"],
                as_of=date.fromisoformat(meta["as_of"]),
                parent=_parent(prov, version),
                policy=meta["policy"],
                policy_hash=meta["policy_hash"],
                descriptor_set=DESCRIPTOR_SET_VERSION,
                shards=[b["shard"] for b in batches.values() if b.get("shard")],
                accepted=accepted,
                rejected=rejected,
                rejected_items=rejected_items,
                partners=meta["partners"],
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            try:
                store.put(key, dump(manifest), content_type="application/json")
            except ObjectExists:
                pass
        manifest = json.loads(store.get(key))
        prov.upsert_version(
            version,
            status="committed",
            committed_at=manifest["created_at"],
            manifest=store.url(key),
            counts=manifest["counts"],
            parent=manifest["parent"],
        )
        prov.record_event(meta["run_id"], "committed", version=version, counts=manifest["counts"])
        return {**summary(manifest, store.url(key)), **prov.examples(version)}
    finally:
        prov.close()


def _parent(prov: Provenance, version: str) -> str | None:
    committed = [
        v for v in prov.versions() if v.get("status") == "committed" and v["_id"] != version
    ]
    committed.sort(key=lambda v: v.get("committed_at", ""))
    return committed[-1]["_id"] if committed else None


def summary(manifest: dict, manifest_url: str) -> dict:
    counts = manifest["counts"]
    return {
        "version": manifest["version"],
        "accepted": counts["accepted"],
        "rejected": counts["rejected"],
        "rejected_items": counts["rejected_items"],
        "shards": len(manifest["shards"]),
        "rows": counts["rows"],
        "manifest": manifest_url,
        "as_of": manifest["as_of"],
    }


def run_refresh(
    settings: Settings,
    as_of: date | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> dict:
    """The whole refresh in this process: what `corpus refresh` runs."""
    started = time.monotonic()
    as_of = as_of or datetime.now(UTC).date()
    run_id = run_id or f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    the_plan = plan(settings, run_id, as_of)
    if on_plan:
        on_plan(the_plan)
    for batch in the_plan.batches:
        process_batch(settings, the_plan.version, batch, progress)
    result = commit(settings, the_plan.version)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result
