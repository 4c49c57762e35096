"""`corpus gc`: remove what crashed or abandoned runs left behind.

- Shard objects no committed manifest names. One is kept while it is younger than the grace
  period by the object's own creation time (a running refresh may have uploaded it and not
  yet recorded it anywhere), or while a version still being built within the grace period
  names it.
- Versions that never committed: a record not committed, untouched for longer than the
  grace period and without a manifest in the store, with its decision records, steps and jobs,
  and its `runs/<version>/` folder (validation results and Data Docs). A building record
  whose manifest exists is a commit whose last write was lost: it is left for the next run
  to finish, never discarded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.config import Settings
from pipeline.provenance import connect
from pipeline.shards.manifest import manifest_key
from pipeline.storage import ObjectNotFound, ObjectStore, open_store

SHARDS_PREFIX = "shards/"
RUNS_PREFIX = "runs/"


def collect_garbage(
    settings: Settings, dry_run: bool = False, grace_hours: float = 24
) -> list[str]:
    """Delete (or with `dry_run`, only list) unreferenced shard objects; returns their keys."""
    store = open_store(settings.store)
    cutoff = datetime.now(UTC) - timedelta(hours=grace_hours)
    referenced: set[str] = set()
    for key in store.list("versions/"):
        if key.endswith("/manifest.json"):
            referenced.update(s["path"] for s in json.loads(store.get(key))["shards"])
    referenced |= _in_flight(settings, cutoff)
    garbage = [
        key
        for key in store.list(SHARDS_PREFIX)
        if key not in referenced and _older(store, key, cutoff)
    ]
    if dry_run:
        return garbage
    prov = connect(settings)
    try:
        # A run may have taken up one of these (same content, same name) since the listing.
        garbage = [key for key in garbage if not prov.shard_in_use(key, cutoff)]
        for key in garbage:
            _delete(store, key)
    finally:
        prov.close()
    return garbage


@dataclass
class Leftovers:
    versions: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)


def collect_leftovers(
    settings: Settings, dry_run: bool = False, grace_hours: float = 24
) -> Leftovers:
    """Discard (or with `dry_run`, only list) versions that never committed and their
    `runs/<version>/` objects."""
    store = open_store(settings.store)
    cutoff = datetime.now(UTC) - timedelta(hours=grace_hours)
    prov = connect(settings, write=not dry_run)
    try:
        records = {v["_id"]: v for v in prov.versions()}
        found = Leftovers()
        for version, record in records.items():
            abandoned = record.get("status") != "committed" and record["updated_at"] < cutoff
            if abandoned and not store.exists(manifest_key(version)):
                found.versions.append(version)
        if not dry_run:
            found.versions = [v for v in found.versions if prov.discard_version(v, cutoff)]
        for key in store.list(RUNS_PREFIX):
            version = key.removeprefix(RUNS_PREFIX).split("/", 1)[0]
            kept = version in records and version not in found.versions
            if not kept and _older(store, key, cutoff):
                found.objects.append(key)
        if not dry_run:
            for key in found.objects:
                _delete(store, key)
        return found
    finally:
        prov.close()


def _older(store: ObjectStore, key: str, cutoff: datetime) -> bool:
    try:
        return store.info(key).created < cutoff
    except ObjectNotFound:
        return False


def _delete(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except ObjectNotFound:
        pass


def _in_flight(settings: Settings, cutoff: datetime) -> set[str]:
    prov = connect(settings, write=False)
    try:
        building = [
            v["_id"]
            for v in prov.versions()
            if v.get("status") == "building" and v["updated_at"] >= cutoff
        ]
        return {path for version in building for path in prov.shard_members(version)}
    finally:
        prov.close()
