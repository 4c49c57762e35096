"""Write one shard: pack new items, or rewrite a parent shard without the items it lost."""

from __future__ import annotations

import io

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.audio.fetch import FetchError, fetch
from pipeline.config import Settings
from pipeline.items import Stage, Status, refused_for
from pipeline.reasons import Reason
from pipeline.refresh.common import step
from pipeline.shards.rows import shard_row
from pipeline.shards.writer import shard_key, table_to_parquet, to_parquet
from pipeline.storage import ObjectExists
from pipeline.storage.base import describe

PARQUET = "application/vnd.apache.parquet"


def write_shard(settings: Settings, version: str, job_id: int) -> dict:
    """Run shard job `job_id`; a finished job returns its recorded result."""
    with step(settings, version) as s:
        done = s.prov.step_done(version, "write", job_id)
        if done:
            return done["summary"]
        job = s.prov.job(version, job_id)
        records = s.prov.decisions_by_keys(version, job["items"])
        if job["kind"] == "rewrite":
            data, updates = _rewrite(s, job["source"], records)
        else:
            data, updates = _pack(s, records)
        shard = None
        if data is not None:
            shard = _store(s, data)
            s.prov.record_shard({**shard, "items": _row_order(data)}, version)
            for update in updates:
                if update["status"] == Status.ACCEPTED:
                    update["shard"] = shard["path"]
        s.prov.upsert_decisions(updates, s.attempt)
        summary = {
            "shard": shard,
            "kind": job["kind"],
            "rows": sum(u["status"] == Status.ACCEPTED for u in updates),
        }
        s.prov.mark_step_done(version, "write", job_id, summary)
        s.prov.upsert_version(version)
        return summary


def _pack(s, records: list[dict]):
    rows, updates = [], []
    for record in records:
        try:
            fetched = fetch(
                record["audio_location"],
                record["audio_sha256"],
                s.policy.audio.max_file_bytes,
                allowed_hosts=s.meta.get("audio_hosts", {}).get(record["partner"], []),
                hash_sum=record.get("hash_sum"),
            )
        except FetchError as exc:
            reason = exc.reason
            if reason == Reason.AUDIO_CHECKSUM_MISMATCH:
                exc = FetchError(reason, f"{exc} (the file changed after analysis)")
            updates.append({**record, **refused_for(Stage.SHARD, reason, str(exc))})
            continue
        with fetched:
            rows.append(
                shard_row(record, fetched.data, fetched.sha256, s.policy.splits.model_dump())
            )
        updates.append({**record, "status": Status.ACCEPTED, "stage": Stage.SHARD})
    return (to_parquet(rows) if rows else None), updates


def _rewrite(s, source: str, records: list[dict]):
    table = pq.read_table(io.BytesIO(s.store.get(source)))
    keep = [r["item_key"] for r in records]
    kept = table.filter(pc.is_in(table.column("item_key"), value_set=pa_array(keep)))
    found = set(kept.column("item_key").to_pylist())
    updates = []
    for record in records:
        if record["item_key"] in found:
            updates.append({**record, "status": Status.ACCEPTED, "stage": Stage.CARRIED})
        else:
            message = f"row missing from parent shard {source}"
            updates.append({**record, **refused_for(Stage.SHARD, Reason.AUDIO_MISSING, message)})
    return (table_to_parquet(kept) if kept.num_rows else None), updates


def _row_order(data: bytes) -> list[str]:
    """The shard's item keys in row order, so provenance can name an item's row."""
    table = pq.read_table(io.BytesIO(data), columns=["item_key"])
    return table.column("item_key").to_pylist()


def pa_array(values: list[str]):
    import pyarrow as pa

    return pa.array(values, type=pa.string())


def _store(s, data: bytes) -> dict:
    """Store a shard under the hash of its bytes. One already there is those same bytes,
    unless it was damaged: then it is replaced, since its name says what it must hold."""
    key = shard_key(data)
    expected = describe(key, data)
    try:
        stored = s.store.put(key, data, content_type=PARQUET)
    except ObjectExists:
        stored = s.store.stat(key)
        if stored != expected:
            s.store.delete(key)
            stored = s.store.put(key, data, content_type=PARQUET)
    return {
        "path": key,
        "rows": pq.ParquetFile(io.BytesIO(data)).metadata.num_rows,
        "bytes": stored.size,
        "sha256": stored.sha256,
        "crc32c": stored.crc32c,
        "url": s.store.url(key),
    }
