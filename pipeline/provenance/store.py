"""The provenance adapter: the only module that speaks to MongoDB.

Collections, all written by upsert on stable ids so any task can be re-run:
  decisions  one per (version, item): the item, its licence, status, reasons, shard
  batches    completion markers of the mapped audio/shard tasks
  shards     one per shard object (content-addressed key)
  versions   one per corpus version: policy, logical date, status, counts
  events     one per (run, event kind)
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.database import Database

from pipeline.config import Settings
from pipeline.provenance.embedded import ensure_server

DEFAULT_DB = "corpus"


def connect(settings: Settings) -> Provenance:
    """`CORPUS_MONGO_URI` when set, else the embedded server (started on first use)."""
    uri = settings.mongo_uri or ensure_server(settings.home)
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
    prov = Provenance(client.get_default_database(DEFAULT_DB), client)
    prov.ensure_indexes()
    return prov


def _now() -> datetime:
    return datetime.now(UTC)


class Provenance:
    def __init__(self, db: Database, client: MongoClient | None = None):
        self.db = db
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def ensure_indexes(self) -> None:
        self.db.decisions.create_index([("item_key", ASCENDING), ("version", ASCENDING)])
        self.db.decisions.create_index([("isrc", ASCENDING)])
        self.db.decisions.create_index([("version", ASCENDING), ("batch", ASCENDING)])
        self.db.decisions.create_index([("version", ASCENDING), ("status", ASCENDING)])
        self.db.shards.create_index([("version", ASCENDING)])
        self.db.events.create_index([("run_id", ASCENDING), ("at", ASCENDING)])

    def record_event(self, run_id: str, kind: str, **payload: Any) -> None:
        self.db.events.update_one(
            {"_id": f"{run_id}:{kind}"},
            {"$set": {"run_id": run_id, "kind": kind, "at": _now(), **payload}},
            upsert=True,
        )

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
                {"$set": {**doc, "updated_at": now}},
                upsert=True,
            )
            for doc in docs
        ]
        self.db.decisions.bulk_write(ops, ordered=False)

    def batch_items(self, version: str, batch: int) -> list[dict]:
        return list(self.db.decisions.find({"version": version, "batch": batch}).sort("seq", 1))

    def batch_done(self, version: str, batch: int) -> dict | None:
        return self.db.batches.find_one({"_id": f"{version}/{batch}", "done": True})

    def mark_batch_done(self, version: str, batch: int, summary: dict) -> None:
        self.db.batches.update_one(
            {"_id": f"{version}/{batch}"},
            {"$set": {"version": version, "batch": batch, "done": True, "at": _now(), **summary}},
            upsert=True,
        )

    def batches(self, version: str) -> list[dict]:
        return list(self.db.batches.find({"version": version}).sort("batch", 1))

    def record_shard(self, shard: dict, version: str) -> None:
        self.db.shards.update_one(
            {"_id": shard["path"]},
            {"$set": {**shard, "updated_at": _now()}, "$addToSet": {"versions": version}},
            upsert=True,
        )

    def decisions(self, version: str) -> list[dict]:
        return list(self.db.decisions.find({"version": version}).sort("seq", 1))

    def reason_counts(self, version: str) -> tuple[int, dict[str, int], int]:
        """(accepted items, rejections per reason code, rejected items) of `version`."""
        accepted = rejected_items = 0
        reasons: Counter[str] = Counter()
        for doc in self.db.decisions.find({"version": version}, {"status": 1, "reasons": 1}):
            if doc["status"] == "accepted":
                accepted += 1
            elif doc["status"] == "rejected":
                rejected_items += 1
                reasons.update(doc["reasons"])
        return accepted, dict(sorted(reasons.items())), rejected_items

    def trace(self, key: str) -> list[dict]:
        """Every decision about an item key (`partner:track_id`) or ISRC, oldest first."""
        query = {"$or": [{"item_key": key}, {"isrc": key.replace("-", "").upper()}]}
        return list(self.db.decisions.find(query).sort([("as_of", 1), ("version", 1)]))

    def examples(self, version: str) -> dict:
        """One rejected and one accepted item key of `version`, for "try tracing this"."""
        found = {}
        for status in ("rejected", "accepted"):
            doc = self.db.decisions.find_one(
                {"version": version, "status": status}, sort=[("seq", 1)]
            )
            if doc:
                found[f"example_{status}"] = doc["item_key"]
        return found

    def versions(self) -> list[dict]:
        return list(self.db.versions.find().sort("created_at", 1))
