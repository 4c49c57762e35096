"""The ledger: what provenance records and keeps. Decisions, items' current state, events,
partners and their deliveries, revocations, versions and the shards they hold.

Every collection (listed, with validators and indexes, in `collections.py`) is written by
upsert on a stable id, so any task can be re-run; events are only ever inserted. Values that
come from partners are stored as values under our own field names, never as field names:
a raw record that failed validation is kept as JSON text (`raw_json`), a partner's mapping
as `config_json`, so no `$` or dotted key from outside reaches MongoDB.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from pipeline.items import Status

# Documents fetched per round trip on long scans; more makes the embedded server's memory grow.
BATCH = 1000
# Item fields that name the run which judged it: an item is unchanged when all but these are.
PER_RUN = ("version", "as_of", "delivery")
DUPLICATE_KEY = 11000
# What an item's current state (the `items` collection) keeps from its latest decision.
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


class StaleAttempt(RuntimeError):
    """A write from an attempt a newer one has overtaken, or to a committed version."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _state_hash(state: dict) -> str:
    text = json.dumps(state, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _only_duplicates(exc: BulkWriteError) -> list[dict]:
    """The write errors of a bulk insert when every one is a duplicate key (a concurrent
    writer got there first); anything else is raised again."""
    errors = exc.details.get("writeErrors", [])
    if exc.details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
        raise exc
    return errors


class Ledger:
    """Writes and plain reads of the record; mixed into `Provenance`."""

    db: Database
    actor: str

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
                    "at": utc_now(),
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
        now = utc_now()
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
        now = utc_now()
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
        """Store a revocation once (keyed by what it revokes and from when) with its `revoked`
        event; True if new."""
        from pipeline.licensing.revocations import subject

        target = revocation.get("track_id") or f"licence:{revocation['license_id']}"
        rev_id = f"{revocation['partner']}|{target}|{revocation['effective']}"
        result = self.db.revocations.update_one(
            {"_id": rev_id}, {"$setOnInsert": {**revocation, "recorded_at": utc_now()}}, upsert=True
        )
        self.record_event(
            f"revoke__{revocation['effective']}",
            "revoked",
            subject=subject(revocation),
            actor=revocation["actor"],
            reason=revocation["reason"],
            effective=revocation["effective"],
        )
        return result.upserted_id is not None

    def revocations(self, as_of: str) -> list[dict]:
        """Revocations in effect on the ISO date `as_of`."""
        return list(self.db.revocations.find({"effective": {"$lte": as_of}}).sort("_id", 1))

    def upsert_version(self, version: str, **fields: Any) -> None:
        self.db.versions.update_one(
            {"_id": version},
            {
                "$set": {**fields, "updated_at": utc_now()},
                "$setOnInsert": {"created_at": utc_now()},
            },
            upsert=True,
        )

    def version(self, version: str) -> dict | None:
        return self.db.versions.find_one({"_id": version})

    def begin_attempt(self, version: str) -> int:
        """A new attempt at a step of `version`: a number larger than any earlier one's.
        Decision writes carry it, so an older attempt (a zombie task, a retry after a lost
        heartbeat) can never overwrite what a newer one wrote."""
        now = utc_now()
        doc = self.db.versions.find_one_and_update(
            {"_id": version},
            {
                "$inc": {"attempts": 1},
                "$set": {"updated_at": now},
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return doc["attempts"]

    def _refuse_if_committed(self, docs: list[dict], attempt: int | None) -> None:
        for version in {doc["version"] for doc in docs}:
            meta = self.db.versions.find_one({"_id": version}, {"status": 1})
            if meta and meta.get("status") == "committed":
                who = f"attempt {attempt}" if attempt else "a write"
                raise StaleAttempt(f"version {version} is committed; {who} changes nothing in it")

    def upsert_decisions(self, docs: list[dict], attempt: int | None = None) -> None:
        """Write decision records keyed by `version/item_key`; unordered, one round trip.
        With `attempt`, a record a newer attempt wrote is left alone and StaleAttempt says
        so; no write reaches a committed version."""
        if not docs:
            return
        self._refuse_if_committed(docs, attempt)
        now = utc_now()
        fence = (
            {} if attempt is None else {"$or": [{"attempt": {"$lte": attempt}}, {"attempt": None}]}
        )
        stamp = {} if attempt is None else {"attempt": attempt}
        ops = [
            UpdateOne(
                {"_id": f"{doc['version']}/{doc['item_key']}", **fence},
                {
                    "$set": {
                        **{k: v for k, v in doc.items() if k != "_id"},
                        **stamp,
                        "updated_at": now,
                    }
                },
                upsert=True,
            )
            for doc in docs
        ]
        try:
            self.db.decisions.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            overtaken = _only_duplicates(exc)
            first = docs[overtaken[0]["index"]]
            raise StaleAttempt(
                f"attempt {attempt} at version {first['version']} was overtaken by a newer one, "
                f"which wrote {first['item_key']} and {len(overtaken) - 1} more record(s); "
                "it leaves them as they are"
            ) from exc

    def insert_decisions(self, docs: list[dict], attempt: int | None = None) -> None:
        """Write the decision records of a plan that starts clean: plain inserts in batches,
        which the embedded store takes about six times faster than upserts. A record that
        is there already (a concurrent re-run of the same plan) is overwritten instead,
        unless a newer attempt wrote it."""
        if not docs:
            return
        self._refuse_if_committed(docs, attempt)
        now = utc_now()
        stamp = {} if attempt is None else {"attempt": attempt}
        for start in range(0, len(docs), BATCH):
            batch = [
                {
                    **{k: v for k, v in doc.items() if k != "_id"},
                    **stamp,
                    "_id": f"{doc['version']}/{doc['item_key']}",
                    "updated_at": now,
                }
                for doc in docs[start : start + BATCH]
            ]
            try:
                self.db.decisions.insert_many(batch, ordered=False)
            except BulkWriteError as exc:
                errors = _only_duplicates(exc)
                self.upsert_decisions([batch[e["index"]] for e in errors], attempt)

    def forget_decisions(self, version: str) -> None:
        """Drop what an interrupted, never-finished plan of `version` wrote, so its re-run
        starts from the delivery as it is now."""
        self.db.decisions.delete_many({"version": version})

    def record_shard(self, shard: dict, version: str) -> None:
        self.db.shards.update_one(
            {"_id": shard["path"]},
            {"$set": {**shard, "updated_at": utc_now()}, "$addToSet": {"versions": version}},
            upsert=True,
        )

    def add_shards_to_version(self, paths: list[str], version: str) -> None:
        if paths:
            self.db.shards.update_many(
                {"_id": {"$in": paths}}, {"$addToSet": {"versions": version}}
            )

    def detach_shard(self, path: str, version: str) -> None:
        """`version` no longer holds the shard at `path` (its job is to be done again)."""
        self.db.shards.update_one({"_id": path}, {"$pull": {"versions": version}})

    def shard_in_use(self, path: str, since: datetime) -> bool:
        """Whether a committed version, or one worked on since `since`, holds the shard."""
        found = self.db.shards.find_one({"_id": path}, {"versions": 1})
        holders = (found or {}).get("versions") or []
        if not holders:
            return False
        query = {
            "_id": {"$in": holders},
            "$or": [{"status": "committed"}, {"updated_at": {"$gte": since}}],
        }
        return bool(self.db.versions.count_documents(query))

    def shard_members(self, version: str) -> dict[str, list[str]]:
        """Shard path -> item keys, for the shards of `version`."""
        found = self.db.shards.find({"versions": version}, {"items": 1})
        return {doc["_id"]: doc.get("items", []) for doc in found}

    def discard_version(self, version: str, untouched_since: datetime) -> bool:
        """Remove a version that never committed and was not touched since `untouched_since`:
        its record, decisions, steps and jobs, and its name on the shards it wrote. The event
        log keeps that it was discarded. False, and nothing removed, when it was touched (a
        run took it up again) or committed meanwhile."""
        gone = self.db.versions.delete_one(
            {"_id": version, "status": {"$ne": "committed"}, "updated_at": {"$lt": untouched_since}}
        )
        if not gone.deleted_count:
            return False
        self.db.decisions.delete_many({"version": version})
        self.db.steps.delete_many({"version": version})
        self.db.jobs.delete_many({"version": version})
        self.db.shards.update_many({"versions": version}, {"$pull": {"versions": version}})
        self.record_event(f"gc__{version}", "version-discarded", subject=version)
        return True

    def latest_committed(self) -> str | None:
        found = self.db.versions.find_one(
            {"status": "committed"}, sort=[("committed_at", -1), ("_id", -1)]
        )
        return found["_id"] if found else None

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
                    "status": Status.ACCEPTED,
                }
                items += self.db.decisions.distinct("item_key", query)
            self.db.versions.update_one(
                {"_id": version, "withdrawn": {"$ne": True}},
                {"$set": {"withdrawn": True, "withdrawn_by": by, "withdrawn_at": utc_now()}},
            )
            self.db.versions.update_one(
                {"_id": version}, {"$addToSet": {"withdrawn_items": {"$each": items}}}
            )
        return versions

    def versions(self) -> list[dict]:
        return list(self.db.versions.find().sort("created_at", 1))
