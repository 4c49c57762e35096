"""The provenance collections: their `$jsonSchema` validators and indexes, in one place.

`ensure_collections` creates what is missing and re-applies every validator (`collMod`), so it
is safe to run on every start and brings an older database up to date. The README's
"Provenance in MongoDB" table is checked against `COLLECTIONS` by a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import CollectionInvalid, OperationFailure

from pipeline.items import Status
from pipeline.reasons import Reason

STATUSES = [status.value for status in Status]
UNAUTHORIZED = 13
NAMESPACE_EXISTS = 48
INDEX_NOT_FOUND = 27
ISO_DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

_STRING = {"bsonType": "string"}
_TEXT = {"bsonType": "string", "minLength": 1}
_DATE = {"bsonType": "date"}
_DAY = {"bsonType": "string", "pattern": ISO_DATE}
_NULLABLE_TEXT = {"bsonType": ["string", "null"]}
_COUNT = {"bsonType": ["int", "long"], "minimum": 0}
_STRINGS = {"bsonType": "array", "items": _STRING}


@dataclass(frozen=True)
class Collection:
    name: str
    key: str
    holds: str
    required: tuple[str, ...]
    properties: dict = field(default_factory=dict)
    indexes: tuple[IndexModel, ...] = ()
    # Indexes of earlier releases that a current one replaces: dropped where found (each
    # index slows every insert, and a query planner may prefer the wrong one).
    retired: tuple[str, ...] = ()

    @property
    def validator(self) -> dict:
        return {
            "$jsonSchema": {
                "bsonType": "object",
                "required": list(self.required),
                "properties": self.properties,
            }
        }


COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        "partners",
        "partner id",
        "each partner's current configuration: connector, location, credential reference "
        "(never a secret), mapping as JSON text, first and last version it delivered to",
        ("name", "connector", "location", "config_json", "config_hash", "updated_at"),
        {
            "name": _TEXT,
            "connector": {"enum": ["manifest", "csv", "ddex", "http"]},
            "location": _TEXT,
            "config_json": _STRING,
            "config_hash": _TEXT,
            "last_version": _STRING,
            "updated_at": _DATE,
        },
    ),
    Collection(
        "deliveries",
        "version/partner",
        "one partner delivery as a run read it: location, connector, record counts, a "
        "digest of its records, the metadata-validation result",
        ("partner", "version", "run_id", "connector", "location", "records", "digest", "read_at"),
        {
            "partner": _TEXT,
            "version": _TEXT,
            "run_id": _TEXT,
            "records": _COUNT,
            "invalid": _COUNT,
            "digest": {"bsonType": "string", "pattern": "^[0-9a-f]{64}$"},
            "read_at": _DATE,
        },
        (
            IndexModel([("partner", ASCENDING), ("read_at", DESCENDING)]),
            IndexModel([("partner", ASCENDING), ("version", ASCENDING)], unique=True),
        ),
    ),
    Collection(
        "items",
        "partner:track_id",
        "each track's current state, as of the latest committed version: status, licence, "
        "fetch checksum, descriptor set, shard and row, every version that holds it; "
        "`version` is the latest version that changed it (an unchanged item is not "
        "rewritten); `current` is false once a track is no longer in the latest version",
        ("partner", "track_id", "status", "version", "current", "updated_at"),
        {
            "current": {"bsonType": "bool"},
            "partner": _TEXT,
            "track_id": _TEXT,
            "status": {"enum": STATUSES},
            "version": _TEXT,
            "in_versions": _STRINGS,
            "row": {"bsonType": ["int", "long", "null"]},
            "updated_at": _DATE,
        },
        (
            IndexModel([("isrc", ASCENDING)]),
            IndexModel([("current", ASCENDING), ("partner", ASCENDING), ("status", ASCENDING)]),
            IndexModel([("license.id", ASCENDING)]),
            IndexModel([("license.valid_until", ASCENDING)]),
        ),
    ),
    Collection(
        "decisions",
        "version/partner:track_id",
        "one per item and version: the record as delivered, its licence, status, stage, reason "
        "codes and messages, audio checksum, descriptors, shard",
        ("version", "item_key", "partner", "track_id", "status", "stage", "reasons", "as_of"),
        {
            "version": _TEXT,
            "item_key": _TEXT,
            "status": {"enum": STATUSES},
            "stage": _TEXT,
            "reasons": {"bsonType": "array", "items": {"enum": [r.value for r in Reason]}},
            "as_of": _DAY,
            "raw_json": _STRING,
        },
        (
            IndexModel([("item_key", ASCENDING), ("version", ASCENDING)]),
            IndexModel([("isrc", ASCENDING)]),
            IndexModel([("version", ASCENDING), ("status", ASCENDING), ("batch", ASCENDING)]),
        ),
        retired=("version_1_batch_1", "version_1_status_1"),
    ),
    Collection(
        "shards",
        "object key",
        "each shard object: checksums, size, its items in row order, the versions using it",
        ("path", "rows", "sha256", "items", "versions"),
        {"path": _TEXT, "rows": _COUNT, "items": _STRINGS, "versions": _STRINGS},
        (IndexModel([("versions", ASCENDING)]), IndexModel([("items", ASCENDING)])),
    ),
    Collection(
        "versions",
        "version id",
        "each corpus version: policy and its hash, logical date, parent, status, counts, "
        "manifest, withdrawal; `holds_until`, the last date its decisions stay the same; "
        "`decisions_from` when it shares an earlier version's decisions (nothing changed)",
        ("created_at", "updated_at"),
        {
            "status": {"enum": ["building", "committed"]},
            "as_of": _DAY,
            "withdrawn": {"bsonType": "bool"},
            "withdrawn_items": _STRINGS,
        },
        (IndexModel([("status", ASCENDING), ("committed_at", DESCENDING)]),),
    ),
    Collection(
        "revocations",
        "partner|target|effective",
        "takedown requests: partner plus track or licence, first effective day, actor, reason",
        ("partner", "effective", "reason", "actor", "recorded_at"),
        {
            "partner": _TEXT,
            "track_id": _NULLABLE_TEXT,
            "license_id": _NULLABLE_TEXT,
            "effective": _DAY,
            "reason": _TEXT,
            "actor": _TEXT,
            "recorded_at": _DATE,
        },
        (IndexModel([("partner", ASCENDING), ("effective", ASCENDING)]),),
    ),
    Collection(
        "events",
        "run:kind:subject",
        "the append-only log: what happened, to which item or object, in which run, under "
        "which policy hash, by which actor, when",
        ("run_id", "kind", "actor", "at"),
        {"run_id": _TEXT, "kind": _TEXT, "subject": _STRING, "actor": _TEXT, "at": _DATE},
        (
            IndexModel([("run_id", ASCENDING), ("at", ASCENDING)]),
            IndexModel([("subject", ASCENDING), ("at", ASCENDING)]),
            IndexModel([("removed", ASCENDING)]),
        ),
    ),
    Collection(
        "steps",
        "version/step/number",
        "completion markers of the mapped refresh steps (analysis batches, shard jobs)",
        ("version", "kind", "number", "summary", "at"),
        {"version": _TEXT, "kind": {"enum": ["analyse", "write"]}, "number": _COUNT},
    ),
    Collection(
        "jobs",
        "version/number",
        "the shard jobs `dedup` laid out for a version (new items, or a parent shard rewritten)",
        ("version", "number", "kind", "items"),
        {"kind": {"enum": ["new", "rewrite"]}, "items": _STRINGS},
    ),
)


def ensure_collections(db: Database) -> None:
    """Create each collection with its validator, re-apply a validator that changed, add
    missing indexes. In steady state this only reads, so a `readWrite` user can run it;
    changing a validator (`collMod`) also needs `dbAdmin`."""
    existing = {c["name"]: c.get("options", {}) for c in db.list_collections()}
    for spec in COLLECTIONS:
        options = {"validator": spec.validator, "validationLevel": "strict"}
        if spec.name not in existing:
            try:
                db.create_collection(spec.name, validationAction="error", **options)
            except CollectionInvalid:
                existing[spec.name] = {}
            except OperationFailure as exc:
                if exc.code != NAMESPACE_EXISTS:  # another process created it meanwhile
                    raise
                existing[spec.name] = {}
        current = existing.get(spec.name)
        if current is not None and current.get("validator") != spec.validator:
            try:
                db.command("collMod", spec.name, validationAction="error", **options)
            except OperationFailure as exc:
                if exc.code != UNAUTHORIZED:
                    raise
                raise PermissionError(
                    f"the provenance collection {spec.name!r} needs its validator updated; "
                    "run any write command once as a user with the dbAdmin role"
                ) from exc
        if spec.indexes:
            db[spec.name].create_indexes(list(spec.indexes))
        if spec.retired:
            _drop_retired(db[spec.name], spec.retired)


def _drop_retired(collection, names: tuple[str, ...]) -> None:
    """Drop retired indexes; a user without the right to leaves them (they cost speed only)."""
    for name in set(names) & set(collection.index_information()):
        try:
            collection.drop_index(name)
        except OperationFailure as exc:
            if exc.code not in (UNAUTHORIZED, INDEX_NOT_FOUND):
                raise
