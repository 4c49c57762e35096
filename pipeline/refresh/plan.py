"""Plan: read every partner catalog, decide licences, record every item, batch the work."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.catalogs.delivery import Delivery, files_stamp, open_delivery
from pipeline.catalogs.models import CatalogItem, InvalidRecord
from pipeline.catalogs.partners import Partner, load_partners
from pipeline.config import Settings
from pipeline.items import Stage, Status, passed, refused, refused_for
from pipeline.licensing import decide, load_policy
from pipeline.licensing.decide import holds_until
from pipeline.licensing.model import License
from pipeline.licensing.policy import Policy
from pipeline.licensing.revocations import apply_revocations
from pipeline.provenance import connect
from pipeline.provenance.ledger import utc_now
from pipeline.reasons import Reason
from pipeline.refresh.commit import finish_lost_commits
from pipeline.refresh.common import refusal, rejudge, row_hash
from pipeline.refresh.share import (
    audio_stamp,
    audio_unchanged,
    digest,
    earlier_deliveries,
    may_share,
    shared_plan,
)
from pipeline.shards.manifest import manifest_key, version_id
from pipeline.storage import open_store
from pipeline.validation.delivery import DeliveryValidation

RAW_LIMIT = 4000
BATCH = 1000
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


class NoPartnersFile(LookupError):
    """A refresh was asked for with no partners file to read."""


def partners_file(settings: Settings) -> Path:
    """The partners file to read; a refresh without one is refused, never guessed."""
    if settings.partners is None:
        raise NoPartnersFile(
            "no partners file: pass --partners FILE or set CORPUS_PARTNERS "
            "(`corpus demo-data` writes a demo delivery and prints its partners file)"
        )
    if not settings.partners.is_file():
        raise NoPartnersFile(f"partners file {settings.partners} does not exist")
    return settings.partners


def plan(settings: Settings, run_id: str, as_of: date) -> Plan:
    """Read and judge every delivery, streaming: refused records are written as they are
    judged, in batches; only licence-admitted ones wait in memory for the audio check."""
    from pipeline.descriptors.essentia_set import DESCRIPTOR_SET_VERSION

    version = version_id(as_of, run_id)
    store = open_store(settings.store)
    prov = connect(settings)
    try:
        done = existing_plan(store, prov, version)
        if done:
            return done
        partners_path = partners_file(settings)
        policy = load_policy(settings.policy)
        policy_hash = policy.hash
        partners = load_partners(partners_path)
        prov.record_event(
            run_id, "started", version=version, as_of=as_of.isoformat(), policy_hash=policy_hash
        )
        finish_lost_commits(settings, prov, store)
        parent = prov.latest_committed()
        parent_meta = prov.version(parent) if parent else None
        carried_from = prov.accepted_items(parent) if parent else {}
        audio_verdicts = prov.audio_verdicts(parent) if parent else {}
        read_at = utc_now()
        revocations = prov.revocations(policy.needed_until(as_of).isoformat())
        records = [partner_record(p, partners_path) for p in partners]
        prov.upsert_partners(records, version)
        context = {
            "policy_hash": policy_hash,
            "descriptor_set": DESCRIPTOR_SET_VERSION,
            "partner_configs": [[r["id"], r["config_hash"]] for r in records],
            "revocations_digest": digest(sorted(str(r["_id"]) for r in revocations)),
        }
        hosts = {p.id: list(p.allowed_audio_hosts) for p in partners}
        share = may_share(parent_meta, context, as_of) and audio_unchanged(
            [*carried_from.values(), *audio_verdicts.values()], hosts
        )
        earlier = earlier_deliveries(prov, parent, partners) if share else {}
        attempt = prov.begin_attempt(version)
        prov.forget_decisions(version)
        judge = _Judge(policy, policy_hash, as_of, version, run_id, revocations)
        written = _Writer(prov, attempt)
        validation, deliveries, admitted, delivered = {}, [], [], set()

        def judge_delivery(delivery: Delivery) -> None:
            partner = delivery.partner
            checks = DeliveryValidation(store, prov, parent, version, delivery)
            tally = _Tally()
            for item in delivery.items(checks):
                doc = judge.item(item)
                delivered.add(doc["item_key"])
                tally.add(item, doc)
                if doc["status"] == Status.LICENSED:
                    doc["audio_stamp"] = audio_stamp(item.audio, partner.allowed_audio_hosts)
                    admitted.append(doc)
                else:
                    written.add(doc)
            validation[partner.id] = checks.published(delivery.records_digest)
            deliveries.append(
                tally.record(partner, version, run_id, as_of, validation[partner.id])
                | {"records_digest": delivery.records_digest, "files_stamp": stamps[partner.id]}
            )

        held: list[Delivery | Partner] = []
        stamps = {p.id: files_stamp(p) for p in partners}
        for partner in partners:
            before = earlier.get(partner.id, {})
            if share and stamps[partner.id] and before.get("files_stamp") == stamps[partner.id]:
                held.append(partner)
                continue
            delivery = open_delivery(partner)
            if (
                share
                and delivery.complete
                and before.get("records_digest") == (delivery.records_digest)
            ):
                held.append(delivery)
                continue
            share = False
            for each in [*held, delivery]:
                judge_delivery(each if isinstance(each, Delivery) else open_delivery(each))
            held = []
            del delivery
        if share:
            shared_plan(
                prov,
                parent_meta,
                {p: {**d, "files_stamp": stamps.get(p)} for p, d in earlier.items()},
                version,
                run_id,
                as_of,
                {
                    **context,
                    "revocations_read_at": read_at,
                    "store": store.uri,
                    "partners_file": str(partners_path),
                    "partners": [p.id for p in partners],
                    "audio_hosts": hosts,
                    "policy": policy.model_dump(mode="json"),
                    "carried": len(carried_from),
                    "shard_target_bytes": settings.shard_target_bytes,
                },
                json.loads(store.get(manifest_key(parent))),
            )
            return Plan(version, [], committed=False, licensed=0)
        for partner in partners:
            if partner.missing_items == "keep":
                for previous in carried_from.values():
                    if previous["partner"] == partner.id and previous["item_key"] not in delivered:
                        written.add(judge.kept(previous))
        to_analyse = []
        for doc in admitted:
            doc["row_hash"] = row_hash(doc)
            previous = carried_from.get(doc["item_key"])
            verdict = audio_verdicts.get(doc["item_key"])
            if _unchanged(doc, previous, DESCRIPTOR_SET_VERSION):
                doc.update(_carried_fields(previous))
            elif _unchanged(doc, verdict, DESCRIPTOR_SET_VERSION, refused=True):
                doc.update(_earlier_verdict(verdict))
            else:
                doc["batch"] = len(to_analyse) // settings.batch_size
                to_analyse.append(doc)
            written.add(doc)
        written.flush()
        batch_count = -(-len(to_analyse) // settings.batch_size)
        prov.record_deliveries(deliveries)
        prov.upsert_version(
            version,
            run_id=run_id,
            as_of=as_of.isoformat(),
            status="building",
            parent=parent,
            store=store.uri,
            partners_file=str(partners_path),
            partners=[p.id for p in partners],
            audio_hosts=hosts,
            validation=validation,
            policy=policy.model_dump(mode="json"),
            **context,
            revocations_read_at=read_at,
            holds_until=judge.holds_until,
            items=written.count,
            licensed=len(to_analyse),
            carried=written.carried,
            batch_count=batch_count,
            shard_target_bytes=settings.shard_target_bytes,
            planned=True,
        )
        return Plan(version, list(range(batch_count)), committed=False, licensed=len(to_analyse))
    finally:
        prov.close()


class _Writer:
    """Decision records written in batches of `BATCH` as the plan makes them."""

    def __init__(self, prov, attempt: int):
        self.prov, self.attempt = prov, attempt
        self.pending, self.count, self.carried = [], 0, 0

    def add(self, doc: dict) -> None:
        self.pending.append(doc)
        self.count += 1
        self.carried += doc["status"] == Status.CARRIED
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.prov.insert_decisions(self.pending, self.attempt)
            self.pending = []


class _Judge:
    """Turns each record into its decision record, numbering them in the order judged."""

    def __init__(self, policy, policy_hash, as_of, version, run_id, revocations):
        self.policy, self.policy_hash, self.as_of = policy, policy_hash, as_of
        self.version, self.run_id, self.revocations = version, run_id, revocations
        self.seq = 0
        self._holds: date | None = None

    @property
    def holds_until(self) -> str | None:
        """The last logical date on which every decision made so far stays the same."""
        return self._holds.isoformat() if self._holds else None

    def _bound(self, licence: License) -> None:
        until = holds_until(licence, self.policy, self.as_of)
        if until is not None and (self._holds is None or until < self._holds):
            self._holds = until

    def item(self, item: CatalogItem | InvalidRecord) -> dict:
        self.seq += 1
        return _licence_record(
            item,
            self.policy,
            self.as_of,
            self.version,
            self.run_id,
            self.seq - 1,
            self.revocations,
            self.policy_hash,
            self._bound,
        )

    def kept(self, previous: dict) -> dict:
        self.seq += 1
        self._bound(License.model_validate(previous["license"]))
        return _kept_record(
            previous,
            self.policy,
            self.as_of,
            self.version,
            self.run_id,
            self.seq - 1,
            self.revocations,
        )


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


class _Tally:
    """What one partner delivered to this run, counted as its records are judged. `digest`
    covers the records as delivered (metadata, licence, audio reference and checksums; not
    where in the files they were) whatever their order, so equal deliveries have equal
    digests whatever our revocations did meanwhile. It is the sum of the records' hashes
    modulo 2^256, so it is made in one pass without holding the records."""

    def __init__(self):
        self.records = self.invalid = self.refused = self.digest = 0

    def add(self, item: CatalogItem | InvalidRecord, doc: dict) -> None:
        line = item.model_dump_json(exclude={"source"}).encode()
        self.digest = (self.digest + int.from_bytes(hashlib.sha256(line).digest())) % 2**256
        self.records += 1
        self.invalid += doc["stage"] == Stage.CATALOG
        self.refused += doc["stage"] == Stage.LICENCE and doc["status"] == Status.REJECTED

    def record(
        self, partner: Partner, version: str, run_id: str, as_of: date, validation: dict | None
    ) -> dict:
        return {
            "partner": partner.id,
            "version": version,
            "run_id": run_id,
            "as_of": as_of.isoformat(),
            "connector": partner.connector,
            "location": partner.location,
            "records": self.records,
            "invalid": self.invalid,
            "refused_at_licence": self.refused,
            "digest": f"{self.digest:064x}",
            "validation": validation,
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
    return {**doc, **refusal(licence, decision, Stage.LICENCE)}


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


def _earlier_verdict(previous: dict) -> dict:
    """Reuse the parent's audio work: a refusal stands; a duplicate goes back to dedup with
    its analysis, since the item it duplicated may be gone."""
    fields = {k: previous.get(k) for k in ANALYSIS_FIELDS if k in previous}
    if previous.get("stage") == Stage.DEDUP:
        return {**fields, **passed(Status.ANALYSED, Stage.AUDIO)}
    return {
        **fields,
        **refused(Stage.AUDIO, previous["reasons"], previous["messages"]),
        "verdict_from": previous["version"],
    }


def _carried_fields(previous: dict) -> dict:
    return {
        **{k: previous.get(k) for k in ANALYSIS_FIELDS},
        "status": Status.CARRIED,
        "stage": Stage.CARRIED,
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
    policy_hash: str | None = None,
    judged: Callable[[License], None] | None = None,
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
        "policy_hash": policy_hash or policy.hash,
        "batch": None,
        "shard": None,
    }
    if isinstance(item, InvalidRecord):
        raw = item.raw if isinstance(item.raw, str) else json.dumps(item.raw, default=str)
        return {
            **base,
            "isrc": None,
            "raw_json": raw[:RAW_LIMIT],
            **refused_for(Stage.CATALOG, Reason.METADATA_INVALID, item.message),
        }
    licence = apply_revocations(item.license, item.partner, item.track_id, revocations)
    decision = decide(licence, policy, as_of)
    if judged:
        judged(licence)
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
        **(
            passed(Status.LICENSED, Stage.LICENCE)
            if decision.accepted
            else refused(Stage.LICENCE, decision.reasons, decision.messages)
        ),
    }
