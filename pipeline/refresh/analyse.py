"""Analyse one batch: fetch and checksum, decode once, quality gate, descriptors."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.audio.fetch import FetchError, fetch
from pipeline.config import Settings
from pipeline.licensing.policy import Policy
from pipeline.reasons import Reason
from pipeline.refresh.common import ANALYSED, REJECTED, step

Progress = Callable[[str], None]


def analyse_batch(
    settings: Settings, version: str, batch: int, progress: Progress | None = None
) -> dict:
    """Analyse the licensed items of `batch`; a finished batch returns its recorded summary."""
    with step(settings, version) as s:
        done = s.prov.step_done(version, "analyse", batch)
        if done:
            return done["summary"]
        updates = []
        for record in s.prov.batch_items(version, batch):
            if progress:
                progress(record["item_key"])
            updates.append({**record, **analyse_item(record, s.policy)})
        s.prov.upsert_decisions(updates)
        analysed = sum(u["status"] == ANALYSED for u in updates)
        summary = {"analysed": analysed, "rejected": len(updates) - analysed}
        s.prov.mark_step_done(version, "analyse", batch, summary)
        return summary


def reject(reason: Reason, message: str, **measures) -> dict:
    return {
        "status": REJECTED,
        "stage": "audio",
        "reasons": [reason.value],
        "messages": [f"{reason}: {message}"],
        **measures,
    }


def analyse_item(record: dict, policy: Policy) -> dict:
    """The decision update for one licensed item; never raises for bad audio."""
    from pipeline.audio.decode import AudioUndecodable, decode
    from pipeline.descriptors.essentia_set import DESCRIPTOR_SET_VERSION, compute

    try:
        fetched = fetch(record["audio_location"], record.get("sha256"), policy.audio.max_file_bytes)
    except FetchError as exc:
        return reject(exc.reason, str(exc))
    facts = {"audio_sha256": fetched.sha256, "audio_bytes": len(fetched.data)}
    try:
        audio = decode(fetched.path)
    except AudioUndecodable as exc:
        return reject(Reason.AUDIO_UNDECODABLE, str(exc), **facts)
    quality = {"duration_s": audio.duration_s, "sample_rate_hz": audio.sample_rate}
    if audio.duration_s < policy.audio.min_duration_s:
        return reject(
            Reason.AUDIO_TOO_SHORT,
            f"{audio.duration_s:.2f} s < {policy.audio.min_duration_s} s",
            quality=quality,
            **facts,
        )
    try:
        descriptors = compute(audio)
    except Exception as exc:  # noqa: BLE001 - one bad signal must not sink the batch
        return reject(Reason.AUDIO_UNDECODABLE, f"descriptor extraction failed: {exc!r}", **facts)
    return {
        "status": ANALYSED,
        "stage": "audio",
        "reasons": [],
        "messages": [],
        "codec": audio.codec,
        "quality": quality,
        "descriptor_set": DESCRIPTOR_SET_VERSION,
        "descriptors": descriptors,
        "fingerprint": None,
        **facts,
    }
