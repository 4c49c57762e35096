"""Plan: read every partner catalog, decide licences, record every item, batch the work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.models import CatalogItem, InvalidRecord
from pipeline.catalogs.partners import Partner, load_partners
from pipeline.config import Settings
from pipeline.licensing import decide, load_policy
from pipeline.licensing.policy import Policy
from pipeline.licensing.revocations import apply_revocations
from pipeline.provenance import connect
from pipeline.reasons import Reason
from pipeline.refresh.common import (
    ANALYSED,
    CARRIED,
    LICENSED,
    REJECTED,
    refusal,
    rejudge,
    row_hash,
)
from pipeline.shards.manifest import manifest_key, version_id
from pipeline.storage import open_store
from pipeline.validation.publish import publish_report

RAW_LIMIT = 4000
# What the audio stage learned about an item; reused while the item is unchanged.
ANALYSIS_FIELDS = (
    "audio_sha256",
    "audio_bytes",
    "descriptor_set",
    "descriptors",
    "quality",
    "fingerprint",
    "codec",
    "format",
)


@dataclass(frozen=True)
class Plan:
    version: str
    batches: list[int]
    committed: bool
    licensed: int = 0


def default_partners(settings: Settings) -> Path:
    """The partners file to use: the given one, or the demo delivery (generated once)."""
    if settings.partners is not None:
        return settings.partners
    from pipeline.demo import ensure_demo_delivery

    return ensure_demo_delivery(settings.home / "demo")


def plan(settings: Settings, run_id: str, as_of: date) -> Plan:
    from pipeline.descriptors.essentia_set import DESCRIPTOR_SET_VERSION

    version = version_id(as_of, run_id)
    store = open_store(settings.store)
    prov = connect(settings)
    try:
        done = existing_plan(store, prov, version)
        if done:
            return done
        partners_file = default_partners(settings)
        policy = load_policy(settings.policy)
        partners = load_partners(partners_file)
        prov.record_event(
            run_id, "started", version=version, as_of=as_of.isoformat(), policy_hash=policy.hash
        )
        parent = prov.latest_committed()
        carried_from = prov.accepted_items(parent) if parent else {}
        audio_verdicts = prov.audio_verdicts(parent) if parent else {}
        revocations = prov.revocations(policy.needed_until(as_of).isoformat())
        prov.upsert_partners([partner_record(p, partners_file) for p in partners], version)
        docs, validation, deliveries = [], {}, []
        for partner in partners:
            items, report = read_delivery(partner)
            validation[partner.id] = publish_report(store, version, partner.id, report)
            first = len(docs)
            for item in items:
                doc = _licence_record(item, policy, as_of, version, run_id, len(docs), revocations)
                if doc["status"] == LICENSED:
                    doc["audio_stamp"] = audio_stamp(item.audio, partner.allowed_audio_hosts)
                docs.append(doc)
            deliveries.append(
                delivery_record(partner, version, run_id, as_of, items, docs[first:], validation)
            )
        delivered = {d["item_key"] for d in docs}
        for partner in partners:
            if partner.missing_items == "keep":
                for previous in carried_from.values():
                    if previous["partner"] == partner.id and previous["item_key"] not in delivered:
                        docs.append(
                            _kept_record(
                                previous, policy, as_of, version, run_id, len(docs), revocations
                            )
                        )
        to_analyse = []
        for doc in docs:
            if doc["status"] != LICENSED or doc.get("kept_undelivered"):
                continue
            doc["row_hash"] = row_hash(doc)
            previous = carried_from.get(doc["item_key"])
            verdict = audio_verdicts.get(doc["item_key"])
            if _unchanged(doc, previous, DESCRIPTOR_SET_VERSION):
                doc.update(_carried_fields(previous))
            elif _unchanged(doc, verdict, DESCRIPTOR_SET_VERSION, refused=True):
                doc.update(_earlier_verdict(verdict))
            else:
                to_analyse.append(doc)
        for index, doc in enumerate(to_analyse):
            doc["batch"] = index // settings.batch_size
        batch_count = -(-len(to_analyse) // settings.batch_size)
        prov.forget_decisions(version)
        prov.insert_decisions(docs)
        prov.record_deliveries(deliveries)
        prov.upsert_version(
            version,
            run_id=run_id,
            as_of=as_of.isoformat(),
            status="building",
            parent=parent,
            store=store.uri,
            partners_file=str(partners_file),
            partners=[p.id for p in partners],
            audio_hosts={p.id: list(p.allowed_audio_hosts) for p in partners},
            validation=validation,
            policy=policy.model_dump(mode="json"),
            policy_hash=policy.hash,
            descriptor_set=DESCRIPTOR_SET_VERSION,
            items=len(docs),
            licensed=len(to_analyse),
            carried=sum(d["status"] == CARRIED for d in docs),
            batch_count=batch_count,
            shard_target_bytes=settings.shard_target_bytes,
            planned=True,
        )
        return Plan(version, list(range(batch_count)), committed=False, licensed=len(to_analyse))
    finally:
        prov.close()


def existing_plan(store, prov, version: str) -> Plan | None:
    """The plan of `version` when a run already made it (committed, or planned and building),
    so a re-run task goes on from there instead of planning again."""
    if store.exists(manifest_key(version)):
        return Plan(version, [], committed=True)
    existing = prov.version(version)
    if existing and existing.get("planned"):
        batches = list(range(existing["batch_count"]))
        return Plan(version, batches, committed=False, licensed=existing["licensed"])
    return None


def partner_record(partner: Partner, partners_file: Path) -> dict:
    """A partner as configured: the credential is a reference (never a secret), and the
    mapping, whose keys come from the partner's vocabulary, is kept as JSON text."""
    config = partner.model_dump_json()
    return {
        "id": partner.id,
        "name": partner.name,
        "connector": partner.connector,
        "location": partner.location,
        "credentials": partner.credentials.model_dump(mode="json") if partner.credentials else None,
        "missing_items": partner.missing_items,
        "allowed_audio_hosts": list(partner.allowed_audio_hosts),
        "config_json": config,
        "config_hash": hashlib.sha256(config.encode()).hexdigest(),
        "partners_file": str(partners_file),
    }


def delivery_record(
    partner: Partner,
    version: str,
    run_id: str,
    as_of: date,
    items: list[CatalogItem | InvalidRecord],
    docs: list[dict],
    validation: dict,
) -> dict:
    """What one partner delivered to this run. `digest` covers the records as delivered
    (metadata, licence, audio reference and checksums; not where in the files they were),
    so equal deliveries have equal digests whatever our revocations did meanwhile."""
    lines = sorted(item.model_dump_json(exclude={"source"}) for item in items)
    return {
        "partner": partner.id,
        "version": version,
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "connector": partner.connector,
        "location": partner.location,
        "records": len(docs),
        "invalid": sum(d["stage"] == "catalog" for d in docs),
        "refused_at_licence": sum(
            d["stage"] == "licence" and d["status"] == REJECTED for d in docs
        ),
        "digest": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        "validation": validation.get(partner.id),
        "read_at": datetime.now(UTC),
    }


def _kept_record(
    previous: dict,
    policy: Policy,
    as_of: date,
    version: str,
    run_id: str,
    seq: int,
    revocations: list[dict],
) -> dict:
    """An item gone from a full delivery whose partner says `missing_items: keep`: it stays
    while its recorded licence still admits it."""
    skip = ("_id", "updated_at", "shard", "parent_shard", "batch")
    doc = {k: v for k, v in previous.items() if k not in skip}
    licence, decision = rejudge(previous, policy, as_of, revocations)
    doc.update(
        version=version,
        run_id=run_id,
        seq=seq,
        as_of=as_of.isoformat(),
        policy_hash=policy.hash,
        batch=None,
        shard=None,
        kept_undelivered=True,
        license=licence.model_dump(mode="json"),
    )
    if decision.accepted:
        return {**doc, **_carried_fields(previous)}
    return {**doc, **refusal(licence, decision, "licence")}


def _unchanged(
    doc: dict, previous: dict | None, descriptor_set: str, refused: bool = False
) -> bool:
    """Same row inputs (a delivered `hash_sum` is one) and same audio: by the delivered
    sha256, or, when the partner gives none, by the file's stamp (`audio_stamp`: size and
    mtime, or a gs:// object's generation; no read needed). An earlier audio refusal is
    kept only while the file's stamp is the same (missing stays missing)."""
    if not previous or previous.get("row_hash") != doc["row_hash"]:
        return False
    if refused:
        return (
            doc.get("audio_stamp") is not None
            and previous.get("audio_stamp") == doc["audio_stamp"]
            and previous.get("policy_hash") == doc["policy_hash"]
            and (
                previous.get("stage") != "dedup" or previous.get("descriptor_set") == descriptor_set
            )
        )
    if previous.get("descriptor_set") != descriptor_set:
        return False
    if doc.get("sha256"):
        return previous.get("audio_sha256") == doc["sha256"]
    return bool(doc.get("audio_stamp")) and previous.get("audio_stamp") == doc["audio_stamp"]


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


def _earlier_verdict(previous: dict) -> dict:
    """Reuse the parent's audio work: a refusal stands; a duplicate goes back to dedup with
    its analysis, since the item it duplicated may be gone."""
    fields = {k: previous.get(k) for k in ANALYSIS_FIELDS if k in previous}
    if previous.get("stage") == "dedup":
        return {**fields, "status": ANALYSED, "stage": "audio", "reasons": [], "messages": []}
    return {
        **fields,
        "status": REJECTED,
        "stage": "audio",
        "reasons": previous["reasons"],
        "messages": previous["messages"],
        "verdict_from": previous["version"],
    }


def _carried_fields(previous: dict) -> dict:
    return {
        **{k: previous.get(k) for k in ANALYSIS_FIELDS},
        "status": CARRIED,
        "stage": "carried",
        "parent_shard": previous["shard"],
    }


def _licence_record(
    item: CatalogItem | InvalidRecord,
    policy: Policy,
    as_of: date,
    version: str,
    run_id: str,
    seq: int,
    revocations: list[dict] = (),
) -> dict:
    base = {
        "version": version,
        "run_id": run_id,
        "seq": seq,
        "item_key": item.key,
        "partner": item.partner,
        "track_id": item.track_id,
        "delivery": f"{version}/{item.partner}",
        "source": item.source,
        "as_of": as_of.isoformat(),
        "policy_hash": policy.hash,
        "batch": None,
        "shard": None,
    }
    if isinstance(item, InvalidRecord):
        raw = item.raw if isinstance(item.raw, str) else json.dumps(item.raw, default=str)
        return {
            **base,
            "isrc": None,
            "raw_json": raw[:RAW_LIMIT],
            "status": REJECTED,
            "stage": "catalog",
            "reasons": [Reason.METADATA_INVALID.value],
            "messages": [f"{Reason.METADATA_INVALID}: {item.message}"],
        }
    licence = apply_revocations(item.license, item.partner, item.track_id, list(revocations))
    decision = decide(licence, policy, as_of)
    return {
        **base,
        "isrc": item.isrc,
        "title": item.title,
        "artists": item.artists,
        "audio_location": item.audio,
        "audio_stamp": None,
        "sha256": item.sha256,
        "hash_sum": item.hash_sum.model_dump() if item.hash_sum else None,
        "license": licence.model_dump(mode="json"),
        "status": LICENSED if decision.accepted else REJECTED,
        "stage": "licence",
        "reasons": [r.value for r in decision.reasons],
        "messages": decision.messages,
    }
