"""`corpus verify`: re-read a committed version and prove it holds only admitted audio.

Checks, each reported as a violation naming the shard or item:
  shards      every shard exists with its recorded size, sha256 and crc32c
  rows        row counts match; item keys are unique; each row's audio hashes to its sha256
  provenance  accepted decisions and shard rows agree item for item, shard for shard
  licences    every row's licence, re-judged under the version's policy at its logical
              date, is still admitted (not expired, not revoked as of that date)
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.licensing import Policy, decide
from pipeline.licensing.model import License
from pipeline.provenance import connect
from pipeline.shards.manifest import DamagedManifest, load_manifest, manifest_key
from pipeline.storage import ObjectNotFound, open_store
from pipeline.storage.base import crc32c_b64

COLUMNS = ["item_key", "license_id", "audio", "audio_sha256"]


@dataclass(frozen=True)
class Violation:
    check: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.message}"


def verify(settings: Settings, version: str) -> list[Violation]:
    store = open_store(settings.store)
    try:
        manifest = load_manifest(store, version)
    except ObjectNotFound:
        return [Violation("manifest", version, "no manifest: the version does not exist")]
    except DamagedManifest as exc:
        return [Violation("manifest", manifest_key(version), str(exc))]
    found: list[Violation] = []
    rows: dict[str, dict] = {}
    for shard in manifest["shards"]:
        found += _check_shard(store, shard, rows)
    found += _check_provenance(settings, manifest, rows)
    return found


def _check_shard(store, shard: dict, rows: dict[str, dict]) -> list[Violation]:
    path = shard["path"]
    try:
        data = store.get(path)
    except ObjectNotFound:
        return [Violation("shards", path, "missing from the store")]
    found = []
    actual = {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "crc32c": crc32c_b64(data),
    }
    for field, value in actual.items():
        if shard[field] != value:
            found.append(Violation("shards", path, f"{field} {value} != recorded {shard[field]}"))
    try:
        table = pq.read_table(io.BytesIO(data), columns=COLUMNS)
    except (pa.ArrowException, OSError) as exc:
        return [*found, Violation("rows", path, f"unreadable as Parquet: {exc}")]
    if table.num_rows != shard["rows"]:
        found.append(
            Violation("rows", path, f"{table.num_rows} rows, manifest says {shard['rows']}")
        )
    for row in table.to_pylist():
        key = row["item_key"]
        if key in rows:
            found.append(Violation("rows", key, f"in {path} and in {rows[key]['shard']}"))
        audio_hash = hashlib.sha256(row["audio"]["bytes"]).hexdigest()
        if audio_hash != row["audio_sha256"]:
            found.append(
                Violation(
                    "rows",
                    key,
                    f"audio bytes hash to {audio_hash[:12]}…, row says {row['audio_sha256'][:12]}…",
                )
            )
        rows[key] = {
            "shard": path,
            "license_id": row["license_id"],
            "audio_sha256": row["audio_sha256"],
        }
    return found


def _check_provenance(settings: Settings, manifest: dict, rows: dict[str, dict]):
    version = manifest["version"]
    policy = Policy.model_validate(manifest["policy"])
    as_of = date.fromisoformat(manifest["as_of"])
    prov = connect(settings, write=False)
    try:
        accepted = prov.accepted_items(version)
    finally:
        prov.close()
    found = []
    for key in sorted(set(rows) - set(accepted)):
        found.append(Violation("provenance", key, "in a shard but not accepted in provenance"))
    for key in sorted(set(accepted) - set(rows)):
        found.append(Violation("provenance", key, "accepted in provenance but in no shard"))
    for key in sorted(set(rows) & set(accepted)):
        row, record = rows[key], accepted[key]
        if record.get("shard") != row["shard"]:
            found.append(
                Violation(
                    "provenance",
                    key,
                    f"provenance says shard {record.get('shard')}, row is in {row['shard']}",
                )
            )
        if record.get("audio_sha256") != row["audio_sha256"]:
            found.append(Violation("provenance", key, "audio sha256 differs from provenance"))
        licence = License.model_validate(record["license"])
        if licence.id != row["license_id"]:
            found.append(
                Violation(
                    "licences", key, f"row licence {row['license_id']} != provenance {licence.id}"
                )
            )
        decision = decide(licence, policy, as_of)
        if not decision.accepted:
            found.append(Violation("licences", key, "; ".join(decision.messages)))
    return found
