"""The corpus version manifest: the commit point, written last and never rewritten."""

from __future__ import annotations

import hashlib
import json
from datetime import date

MANIFEST_FORMAT = 1


def version_id(as_of: date, run_id: str) -> str:
    """Stable per run, so a re-run of the same Airflow run finds its own version again."""
    return f"{as_of:%Y%m%d}-{hashlib.sha256(run_id.encode()).hexdigest()[:10]}"


def manifest_key(version: str) -> str:
    return f"versions/{version}/manifest.json"


class DamagedManifest(ValueError):
    """A manifest that cannot be read as one; the message names the version and object."""


def load_manifest(store, version: str) -> dict:
    """The manifest of `version`; ObjectNotFound when there is none, DamagedManifest when
    what is there is not a whole manifest (truncated, corrupted, not JSON)."""
    key = manifest_key(version)
    data = store.get(key)
    try:
        manifest = json.loads(data)
        if not isinstance(manifest, dict) or manifest.get("version") != version:
            raise ValueError("not the manifest of this version")
        missing = [name for name in ("shards", "counts", "as_of") if name not in manifest]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
    except ValueError as exc:
        raise DamagedManifest(
            f"version {version}: the manifest {store.url(key)} ({len(data)} bytes) is damaged: "
            f"{exc}"
        ) from exc
    return manifest


def manifest_versions(store) -> list[str]:
    """Versions that have a manifest object in the store, whatever its state, by id."""
    keys = store.list("versions/")
    return sorted(
        key.removeprefix("versions/").removesuffix("/manifest.json")
        for key in keys
        if key.endswith("/manifest.json") and key.count("/") == 2
    )


def build_manifest(
    *,
    version: str,
    run_id: str,
    as_of: date,
    parent: str | None,
    policy: dict,
    policy_hash: str,
    descriptor_set: str,
    shards: list[dict],
    accepted: int,
    rejected: dict[str, int],
    rejected_items: int,
    partners: list[str],
    created_at: str,
    changes: dict | None = None,
    validation: dict | None = None,
    by_partner: dict | None = None,
) -> dict:
    shard_list = sorted(
        ({k: s[k] for k in ("path", "rows", "bytes", "sha256", "crc32c")} for s in shards),
        key=lambda s: s["path"],
    )
    return {
        "format": MANIFEST_FORMAT,
        "version": version,
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "created_at": created_at,
        "parent": parent,
        "policy_hash": policy_hash,
        "policy": policy,
        "descriptor_set": descriptor_set,
        "partners": partners,
        "counts": {
            "accepted": accepted,
            "rejected": rejected,
            "rejected_items": rejected_items,
            "rows": sum(s["rows"] for s in shard_list),
            "by_partner": by_partner or {},
        },
        "changes": changes or {},
        "validation": validation or {},
        "shards": shard_list,
    }


def dump(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
