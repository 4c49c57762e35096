"""Analyse one batch: fetch and checksum, then decode once, quality gate, descriptors and
fingerprint in isolated worker processes (a crash or hang costs one item, not the batch)."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.audio.fetch import Fetched, FetchError, fetch
from pipeline.config import Settings
from pipeline.items import Stage, Status, passed, refused, refused_for
from pipeline.reasons import Reason
from pipeline.refresh.common import step

Progress = Callable[[str], None]


def analyse_batch(
    settings: Settings, version: str, batch: int, progress: Progress | None = None
) -> dict:
    """Analyse the licensed items of `batch`; a finished batch returns its recorded summary."""
    with step(settings, version) as s:
        done = s.prov.step_done(version, "analyse", batch)
        if done:
            return done["summary"]
        hosts = s.meta.get("audio_hosts", {})
        records = s.prov.batch_items(version, batch)
        updates: dict[str, dict] = {}
        fetched: dict[str, Fetched] = {}
        for record in records:
            try:
                fetched[record["item_key"]] = fetch(
                    record["audio_location"],
                    record.get("sha256"),
                    s.policy.audio.max_file_bytes,
                    allowed_hosts=hosts.get(record["partner"], []),
                    hash_sum=record.get("hash_sum"),
                )
            except FetchError as exc:
                updates[record["item_key"]] = reject(exc.reason, str(exc))
                if progress:
                    progress(record["item_key"])
        try:
            updates.update(_analyse_all(fetched, s.policy, progress))
        finally:
            for item in fetched.values():
                item.release()
        merged = [{**record, **updates[record["item_key"]]} for record in records]
        s.prov.upsert_decisions(merged, s.attempt)
        analysed = sum(u["status"] == Status.ANALYSED for u in merged)
        summary = {"analysed": analysed, "rejected": len(merged) - analysed}
        s.prov.mark_step_done(version, "analyse", batch, summary)
        s.prov.upsert_version(version)
        return summary


def _analyse_all(fetched: dict[str, Fetched], policy, progress: Progress | None) -> dict:
    from pipeline.audio.analyse import analysis_pool

    if not fetched:
        return {}
    keys = list(fetched)
    updates = {}
    with analysis_pool(policy.audio, workers=min(len(keys), _workers())) as pool:
        for index, result in pool.imap_unordered([str(fetched[k].path) for k in keys]):
            key = keys[index]
            updates[key] = decision_update(result, fetched[key])
            if progress:
                progress(key)
    return updates


def _workers() -> int:
    from pipeline.audio.isolation import default_workers

    return default_workers()


def reject(reason: Reason | str, message: str, **measures) -> dict:
    return {**refused_for(Stage.AUDIO, reason, message), **measures}


def decision_update(result: dict, fetched: Fetched) -> dict:
    """Map one isolated analysis result onto the item's decision record."""
    facts = {
        "audio_sha256": fetched.sha256,
        "audio_bytes": len(fetched.data),
        "format": result.get("format"),
        "codec": result.get("codec"),
        "quality": result.get("quality") or {},
    }
    if not result.get("ok"):
        reasons = [Reason(r) for r in result.get("reasons") or [result.get("reason")] if r]
        reasons = reasons or [Reason.AUDIO_UNDECODABLE]
        message = result.get("message") or "analysis failed"
        parts = message.split("; ")
        if not all(part.startswith(tuple(reasons)) for part in parts):
            parts = [f"{reasons[0]}: {message}"]
        return {**refused(Stage.AUDIO, reasons, parts), **facts}
    return {
        **passed(Status.ANALYSED, Stage.AUDIO),
        "descriptor_set": result["descriptor_set"],
        "descriptors": result["descriptors"],
        "fingerprint": result.get("fingerprint"),
        **facts,
    }
