"""The provenance adapter: the only module that speaks to MongoDB.

Every collection (listed, with validators and indexes, in `collections.py`) is written by
upsert on a stable id, so any task can be re-run; events are only ever inserted. Values that
come from partners are stored as values under our own field names, never as field names:
a raw record that failed validation is kept as JSON text (`raw_json`), a partner's mapping
as `config_json`, so no `$` or dotted key from outside reaches MongoDB.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from pipeline.config import Settings
from pipeline.provenance.collections import ensure_collections
from pipeline.provenance.embedded import ensure_server

DEFAULT_DB = "corpus"
LAPSED = ["REVOKED", "EXPIRED"]
# What an item's current state (the `items` collection) keeps from its latest decision.
BATCH = 1000
# Item fields that name the run which judged it: an item is unchanged when all but these are.
PER_RUN = ("version", "as_of", "delivery")
DUPLICATE_KEY = 11000
ITEM_FIELDS = (
    "partner",
    "track_id",
    "isrc",
    "title",
    "artists",
    "status",
    "stage",
    "reasons",
    "messages",
    "version",
    "as_of",
    "policy_hash",
    "license",
    "source",
    "delivery",
    "audio_location",
    "audio_sha256",
    "descriptor_set",
    "duplicate_of",
)


def connect(settings: Settings, write: bool = True) -> Provenance:
    """`CORPUS_MONGO_URI` when set, else the embedded server (started on first use).

    Read-only callers (audits, trace, verify) pass `write=False`: they create no collections
    or indexes, so they work under a MongoDB user that holds only the `read` role.
    """
    uri = settings.mongo_uri or ensure_server(settings.home)
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
    prov = Provenance(client.get_default_database(DEFAULT_DB), client)
    if write:
        ensure_collections(prov.db)
    return prov


def current_actor() -> str:
    """Who acts: `CORPUS_ACTOR`, else the Airflow DAG running the task, else the OS user."""
    if os.environ.get("CORPUS_ACTOR"):
        return os.environ["CORPUS_ACTOR"]
    if os.environ.get("AIRFLOW_CTX_DAG_ID"):
        return f"airflow:{os.environ['AIRFLOW_CTX_DAG_ID']}"
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def _state_hash(state: dict) -> str:
    text = json.dumps(state, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _now() -> datetime:
    return datetime.now(UTC)


def _only_duplicates(exc: BulkWriteError) -> list[dict]:
    """The write errors of a bulk insert when every one is a duplicate key (a concurrent
    writer got there first); anything else is raised again."""
    errors = exc.details.get("writeErrors", [])
    if exc.details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
        raise exc
    return errors


class Provenance:
    def __init__(self, db: Database, client: MongoClient | None = None):
        self.db = db
        self._client = client
        self.actor = current_actor()
        self._origins: dict[str, tuple[str, dict]] = {}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _origin(self, version: str) -> tuple[str, dict]:
        """(the version whose decision records `version` uses, what to stamp on them).
        A version made from an unchanged delivery shares its parent's decisions
        (`decisions_from`) instead of writing a copy of each; its readers get them stamped
        with its own version, run and date, as if they were its own."""
        if version not in self._origins:
            meta = self.db.versions.find_one(
                {"_id": version}, {"decisions_from": 1, "run_id": 1, "as_of": 1}
            )
            origin = (meta or {}).get("decisions_from")
            stamp = {}
            if origin:
                stamp = {"version": version, "run_id": meta["run_id"], "as_of": meta["as_of"]}
            self._origins[version] = (origin or version, stamp)
        return self._origins[version]

    def _own(self, version: str, docs):
        """Decision records of `version`'s origin, stamped as `version`'s."""
        origin, stamp = self._origin(version)
        for doc in docs:
            if stamp:
                doc.update(stamp)
                if doc.get("delivery") == f"{origin}/{doc.get('partner')}":
                    doc["delivery"] = f"{version}/{doc['partner']}"
                if doc["status"] == "accepted":
                    doc.update(stage="carried", parent_shard=doc.get("shard"))
                elif doc.get("stage") == "audio":
                    doc.setdefault("verdict_from", origin)
            yield doc

    def sharing(self, origins: set[str]) -> set[str]:
        """Versions that use the decision records of one of `origins`."""
        if not origins:
            return set()
        query = {"decisions_from": {"$in": sorted(origins)}}
        return set(self.db.versions.distinct("_id", query))

    def record_event(
        self, run_id: str, kind: str, subject: str = "", actor: str | None = None, **payload: Any
    ) -> None:
        """Append an event; recording the same (run, kind, subject) again changes nothing."""
        event_id = f"{run_id}:{kind}:{subject}" if subject else f"{run_id}:{kind}"
        self.db.events.update_one(
            {"_id": event_id},
            {
                "$setOnInsert": {
                    "run_id": run_id,
                    "kind": kind,
                    "subject": subject,
                    "actor": actor or self.actor,
                    "at": _now(),
                    **payload,
                }
            },
            upsert=True,
        )

    def events_about(self, item_key: str) -> list[dict]:
        """Events whose subject is the item, or that name it among what they removed."""
        query = {"$or": [{"subject": item_key}, {"removed": item_key}]}
        return list(self.db.events.find(query).sort([("at", 1), ("_id", 1)]))

    def events(self, run_id: str | None = None) -> list[dict]:
        query = {"run_id": run_id} if run_id else {}
        return list(self.db.events.find(query).sort([("at", 1), ("_id", 1)]))

    def upsert_partners(self, partners: list[dict], version: str) -> None:
        """The partners as configured for `version` (one document each, keyed by id)."""
        now = _now()
        ops = [
            UpdateOne(
                {"_id": partner["id"]},
                {
                    "$set": {
                        **{k: v for k, v in partner.items() if k != "id"},
                        "last_version": version,
                        "updated_at": now,
                    },
                    "$setOnInsert": {"first_version": version, "created_at": now},
                },
                upsert=True,
            )
            for partner in partners
        ]
        if ops:
            self.db.partners.bulk_write(ops, ordered=False)

    def record_deliveries(self, deliveries: list[dict]) -> None:
        """One document per (version, partner) delivery; a re-run plan rewrites its own."""
        ops = [
            UpdateOne(
                {"_id": f"{d['version']}/{d['partner']}"},
                {"$set": d},
                upsert=True,
            )
            for d in deliveries
        ]
        if ops:
            self.db.deliveries.bulk_write(ops, ordered=False)

    def connectors(self, version: str) -> dict[str, str]:
        """Partner -> connector of the deliveries `version` read (a takedown reads none:
        then the partners' configuration as last used)."""
        read = self.db.deliveries.find({"version": version})
        found = {d["partner"]: d["connector"] for d in read}
        if not found:
            found = {p["_id"]: p["connector"] for p in self.db.partners.find()}
        return found

    def delivery_log(self, partner: str | None = None) -> list[dict]:
        query = {"partner": partner} if partner else {}
        found = self.db.deliveries.find(query, {"validation": 0})
        return list(found.sort([("read_at", 1), ("_id", 1)]))

    def delivery(self, delivery_id: str) -> dict | None:
        """One delivery record by `version/partner`."""
        return self.db.deliveries.find_one({"_id": delivery_id})

    def deliveries(self, ids: list[str]) -> list[dict]:
        return list(self.db.deliveries.find({"_id": {"$in": ids}}).sort("read_at", 1))

    def update_items(self, version: str) -> int:
        """Bring the items' current state to `version`, when it is the latest committed one
        (a late re-run of an older commit must not roll the state back). Only what changed
        is written: an item whose state (apart from the run that judged it) is the same as
        recorded costs no write, unless a shard of `version` holds it (`in_versions` grows).
        A version that shares its parent's decisions changed nothing: only the items in its
        shards gain it in `in_versions`. Returns the number of items written."""
        if self.latest_committed() != version:
            return 0
        if self._origin(version)[0] != version:
            shards = self.db.shards.find({"versions": version}, {"items": 1}).batch_size(10)
            for shard in shards:
                keys = shard.get("items", [])
                for start in range(0, len(keys), BATCH):
                    self.db.items.update_many(
                        {"_id": {"$in": keys[start : start + BATCH]}},
                        {"$addToSet": {"in_versions": version}},
                    )
            return 0
        rows = {}
        for shard in self.db.shards.find({"versions": version}, {"items": 1}).batch_size(10):
            for row, key in enumerate(shard.get("items", [])):
                rows[key] = (shard["_id"], row)
        known = {
            doc["_id"]: (doc.get("state_hash"), doc.get("current"))
            for doc in self.db.items.find({}, {"state_hash": 1, "current": 1}).batch_size(BATCH)
        }
        now = _now()
        ops: list[UpdateOne] = []
        new: list[dict] = []
        count = 0
        fields = {f: 1 for f in (*ITEM_FIELDS, "item_key")}
        decided = self.db.decisions.find({"version": version}, fields).batch_size(BATCH)
        for doc in decided:
            key = doc["item_key"]
            previous = known.pop(key, None)
            shard, row = rows.get(key, (None, None))
            state = {k: doc.get(k) for k in ITEM_FIELDS if k in doc and k not in PER_RUN}
            state.update(shard=shard, row=row, current=True)
            digest = _state_hash(state)
            if previous == (digest, True) and shard is None:
                continue
            run = {k: doc[k] for k in PER_RUN if k in doc}
            fresh = {**state, **run, "state_hash": digest, "updated_at": now}
            if previous is None:
                new.append(
                    {"_id": key, **fresh, "first_version": version}
                    | ({"in_versions": [version]} if shard else {})
                )
            else:
                update: dict = {"$set": fresh, "$setOnInsert": {"first_version": version}}
                if shard:
                    update["$addToSet"] = {"in_versions": version}
                ops.append(UpdateOne({"_id": key}, update, upsert=True))
            if len(ops) == BATCH:
                self.db.items.bulk_write(ops, ordered=False)
                count, ops = count + len(ops), []
            if len(new) == BATCH:
                count, new = count + self._insert_items(new, version), []
        if ops:
            self.db.items.bulk_write(ops, ordered=False)
            count += len(ops)
        if new:
            count += self._insert_items(new, version)
        gone = [key for key, (_, current) in known.items() if current]
        for start in range(0, len(gone), BATCH):
            self.db.items.update_many(
                {"_id": {"$in": gone[start : start + BATCH]}},
                {
                    "$set": {"current": False, "shard": None, "row": None, "updated_at": now},
                    "$unset": {"state_hash": ""},
                },
            )
        return count + len(gone)

    def _insert_items(self, docs: list[dict], version: str) -> int:
        """Insert items seen for the first time; one that a concurrent commit inserted
        meanwhile is updated instead."""
        try:
            self.db.items.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = _only_duplicates(exc)
            ops = []
            for error in errors:
                doc = dict(docs[error["index"]])
                key, versions = doc.pop("_id"), doc.pop("in_versions", None)
                doc.pop("first_version")
                update: dict = {"$set": doc, "$setOnInsert": {"first_version": version}}
                if versions:
                    update["$addToSet"] = {"in_versions": version}
                ops.append(UpdateOne({"_id": key}, update, upsert=True))
            self.db.items.bulk_write(ops, ordered=False)
        return len(docs)

    def item(self, key: str) -> dict | None:
        """An item's current state by `partner:track_id`, or by ISRC (the latest seen)."""
        found = self.db.items.find_one({"_id": key})
        if found is None:
            isrc = key.replace("-", "").upper()
            found = self.db.items.find_one({"isrc": isrc}, sort=[("updated_at", -1)])
        return found

    def shards_holding(self, item_key: str) -> list[dict]:
        """Shard documents whose rows include `item_key`, with the row index of the item."""
        found = []
        for shard in self.db.shards.find({"items": item_key}):
            found.append({**shard, "row": shard["items"].index(item_key)})
        return found

    def revocations_for(self, partner: str, track_id: str, license_ids: list[str]) -> list[dict]:
        """Every recorded revocation naming this track or one of its licences, any date."""
        query = {
            "partner": partner,
            "$or": [{"track_id": track_id}, {"license_id": {"$in": license_ids}}],
        }
        return list(self.db.revocations.find(query).sort("effective", 1))

    def record_revocation(self, revocation: dict) -> bool:
        """Store a revocation once (keyed by what it revokes and from when); True if new."""
        target = revocation.get("track_id") or f"licence:{revocation['license_id']}"
        rev_id = f"{revocation['partner']}|{target}|{revocation['effective']}"
        result = self.db.revocations.update_one(
            {"_id": rev_id}, {"$setOnInsert": {**revocation, "recorded_at": _now()}}, upsert=True
        )
        return result.upserted_id is not None

    def revocations(self, as_of: str) -> list[dict]:
        """Revocations in effect on the ISO date `as_of`."""
        return list(self.db.revocations.find({"effective": {"$lte": as_of}}).sort("_id", 1))

    def upsert_version(self, version: str, **fields: Any) -> None:
        self.db.versions.update_one(
            {"_id": version},
            {"$set": {**fields, "updated_at": _now()}, "$setOnInsert": {"created_at": _now()}},
            upsert=True,
        )

    def version(self, version: str) -> dict | None:
        return self.db.versions.find_one({"_id": version})

    def upsert_decisions(self, docs: list[dict]) -> None:
        """Write decision records keyed by `version/item_key`; unordered, one round trip."""
        if not docs:
            return
        now = _now()
        ops = [
            UpdateOne(
                {"_id": f"{doc['version']}/{doc['item_key']}"},
                {"$set": {**{k: v for k, v in doc.items() if k != "_id"}, "updated_at": now}},
                upsert=True,
            )
            for doc in docs
        ]
        self.db.decisions.bulk_write(ops, ordered=False)

    def insert_decisions(self, docs: list[dict]) -> None:
        """Write the decision records of a plan that starts clean: plain inserts in batches,
        which the embedded store takes about six times faster than upserts. A record that
        is there already (a concurrent re-run of the same plan) is overwritten instead."""
        now = _now()
        for start in range(0, len(docs), BATCH):
            batch = [
                {
                    **{k: v for k, v in doc.items() if k != "_id"},
                    "_id": f"{doc['version']}/{doc['item_key']}",
                    "updated_at": now,
                }
                for doc in docs[start : start + BATCH]
            ]
            try:
                self.db.decisions.insert_many(batch, ordered=False)
            except BulkWriteError as exc:
                errors = _only_duplicates(exc)
                self.upsert_decisions([batch[e["index"]] for e in errors])

    def forget_decisions(self, version: str) -> None:
        """Drop what an interrupted, never-finished plan of `version` wrote, so its re-run
        starts from the delivery as it is now."""
        self.db.decisions.delete_many({"version": version})

    def batch_items(self, version: str, batch: int) -> list[dict]:
        query = {"version": version, "batch": batch, "status": "licensed"}
        return list(self.db.decisions.find(query).sort("seq", 1).batch_size(BATCH))

    def step_done(self, version: str, kind: str, number: int) -> dict | None:
        """The completion marker of one mapped step (`analyse` batch or `write` job)."""
        return self.db.steps.find_one({"_id": f"{version}/{kind}/{number}"})

    def mark_step_done(self, version: str, kind: str, number: int, summary: dict) -> None:
        self.db.steps.update_one(
            {"_id": f"{version}/{kind}/{number}"},
            {
                "$set": {
                    "version": version,
                    "kind": kind,
                    "number": number,
                    "summary": summary,
                    "at": _now(),
                }
            },
            upsert=True,
        )

    def steps(self, version: str, kind: str) -> list[dict]:
        return list(self.db.steps.find({"version": version, "kind": kind}).sort("number", 1))

    def save_jobs(self, version: str, jobs: list[dict]) -> None:
        ops = [
            UpdateOne(
                {"_id": f"{version}/{n}"},
                {"$set": {**job, "version": version, "number": n}},
                upsert=True,
            )
            for n, job in enumerate(jobs)
        ]
        if ops:
            self.db.jobs.bulk_write(ops, ordered=False)

    def job(self, version: str, number: int) -> dict:
        job = self.db.jobs.find_one({"_id": f"{version}/{number}"})
        if job is None:
            raise LookupError(f"version {version} has no shard job {number}")
        return job

    def jobs(self, version: str) -> list[dict]:
        return list(self.db.jobs.find({"version": version}).sort("number", 1))

    def record_shard(self, shard: dict, version: str) -> None:
        self.db.shards.update_one(
            {"_id": shard["path"]},
            {"$set": {**shard, "updated_at": _now()}, "$addToSet": {"versions": version}},
            upsert=True,
        )

    def add_shards_to_version(self, paths: list[str], version: str) -> None:
        if paths:
            self.db.shards.update_many(
                {"_id": {"$in": paths}}, {"$addToSet": {"versions": version}}
            )

    def shard_members(self, version: str) -> dict[str, list[str]]:
        """Shard path -> item keys, for the shards of `version`."""
        found = self.db.shards.find({"versions": version}, {"items": 1})
        return {doc["_id"]: doc.get("items", []) for doc in found}

    def count(self, version: str, status: str) -> int:
        origin, _ = self._origin(version)
        return self.db.decisions.count_documents({"version": origin, "status": status})

    def decisions_by_keys(self, version: str, keys: list[str]) -> list[dict]:
        origin, _ = self._origin(version)
        ids = [f"{origin}/{key}" for key in keys]
        found = {
            d["item_key"]: d
            for d in self._own(version, self.db.decisions.find({"_id": {"$in": ids}}))
        }
        return [found[key] for key in keys if key in found]

    def accepted_items(self, version: str) -> dict[str, dict]:
        query = {"version": self._origin(version)[0], "status": "accepted"}
        found = self.db.decisions.find(query).batch_size(BATCH)
        return {d["item_key"]: d for d in self._own(version, found)}

    def audio_verdicts(self, version: str) -> dict[str, dict]:
        """Items of `version` refused by the audio stage or as duplicates, by item key."""
        query = {
            "version": self._origin(version)[0],
            "status": "rejected",
            "stage": {"$in": ["audio", "dedup"]},
        }
        found = self.db.decisions.find(query).batch_size(BATCH)
        return {d["item_key"]: d for d in self._own(version, found)}

    def latest_committed(self) -> str | None:
        found = self.db.versions.find_one(
            {"status": "committed"}, sort=[("committed_at", -1), ("_id", -1)]
        )
        return found["_id"] if found else None

    def decisions(
        self, version: str, statuses: tuple[str, ...] | None = None, stage: str | None = None
    ) -> list[dict]:
        query: dict = {"version": self._origin(version)[0]}
        if statuses:
            query["status"] = {"$in": list(statuses)}
        if stage:
            query["stage"] = stage
        found = self.db.decisions.find(query).sort("seq", 1).batch_size(BATCH)
        return list(self._own(version, found))

    def counts(self, version: str) -> tuple[int, dict[str, int], int, dict[str, dict]]:
        """(accepted items, rejections per reason code, rejected items, partner ->
        {accepted, rejected}) of `version`, counted by the server in one pass over its
        decisions: no decision travels to the client."""
        grouped = self.db.decisions.aggregate(
            [
                {"$match": {"version": self._origin(version)[0]}},
                {
                    "$group": {
                        "_id": {"p": "$partner", "s": "$status", "r": "$reasons"},
                        "n": {"$sum": 1},
                    }
                },
            ]
        )
        accepted = rejected_items = 0
        reasons: dict[str, int] = {}
        partners: dict[str, dict[str, int]] = {}
        for doc in grouped:
            status, count = doc["_id"]["s"], doc["n"]
            entry = partners.setdefault(doc["_id"]["p"], {"accepted": 0, "rejected": 0})
            if status in entry:
                entry[status] += count
            if status == "accepted":
                accepted += count
            elif status == "rejected":
                rejected_items += count
                for code in doc["_id"].get("r") or ():
                    reasons[code] = reasons.get(code, 0) + count
        by_reason, by_partner = dict(sorted(reasons.items())), dict(sorted(partners.items()))
        return accepted, by_reason, rejected_items, by_partner

    def trace(self, key: str) -> list[dict]:
        """Every decision about an item key (`partner:track_id`), or about every item an
        ISRC was delivered as (including its decisions where the record had none)."""
        isrc = key.replace("-", "").upper()
        keys = {key, *self.db.decisions.distinct("item_key", {"isrc": isrc})}
        found = list(self.db.decisions.find({"item_key": {"$in": sorted(keys)}}))
        shared = self.sharing({d["version"] for d in found})
        for version in sorted(shared):
            origin, _ = self._origin(version)
            found += self._own(version, [dict(d) for d in found if d["version"] == origin])
        return found

    def examples(self, version: str) -> dict:
        """One rejected and one accepted item key of `version`, for "try tracing this"."""
        found = {}
        for status in ("rejected", "accepted"):
            doc = self.db.decisions.find_one(
                {"version": self._origin(version)[0], "status": status}, sort=[("seq", 1)]
            )
            if doc:
                found[f"example_{status}"] = doc["item_key"]
        return found

    def withdraw_versions_holding(self, item_keys: list[str], by: str) -> list[str]:
        """Flag committed versions (other than `by`) whose rows include any of `item_keys`;
        the first version that withdrew one stays its `withdrawn_by`."""
        versions = self.versions_holding(item_keys, besides=by)
        for version in versions:
            origin, _ = self._origin(version)
            items = []
            for start in range(0, len(item_keys), BATCH):
                query = {
                    "_id": {"$in": [f"{origin}/{k}" for k in item_keys[start : start + BATCH]]},
                    "status": "accepted",
                }
                items += self.db.decisions.distinct("item_key", query)
            self.db.versions.update_one(
                {"_id": version, "withdrawn": {"$ne": True}},
                {"$set": {"withdrawn": True, "withdrawn_by": by, "withdrawn_at": _now()}},
            )
            self.db.versions.update_one(
                {"_id": version}, {"$addToSet": {"withdrawn_items": {"$each": items}}}
            )
        return versions

    def versions_holding(self, item_keys: list[str], besides: str) -> list[str]:
        """Committed versions other than `besides` whose rows include any of `item_keys`
        (asked in chunks, so no query grows with the number of keys)."""
        holding: set[str] = set()
        for start in range(0, len(item_keys), BATCH):
            chunk = item_keys[start : start + BATCH]
            query = {"item_key": {"$in": chunk}, "status": "accepted"}
            holding.update(self.db.decisions.distinct("version", query))
        if not holding:
            return []
        holding |= self.sharing(holding)
        committed = self.db.versions.distinct(
            "_id", {"_id": {"$in": sorted(holding)}, "status": "committed"}
        )
        return sorted(v for v in committed if v != besides)

    def licence_removals(self, version: str) -> list[str]:
        """Items `version` refuses as revoked or expired: older versions holding them must
        not be trained on any more."""
        query = {
            "version": self._origin(version)[0],
            "status": "rejected",
            "reasons": {"$in": LAPSED},
        }
        return sorted(self.db.decisions.distinct("item_key", query))

    def versions(self) -> list[dict]:
        return list(self.db.versions.find().sort("created_at", 1))
