"""Load a version's facts from the store and provenance, write its audit report."""

from __future__ import annotations

import json
import mimetypes
import tempfile
from pathlib import Path

from pipeline.config import Settings
from pipeline.provenance import connect
from pipeline.shards.manifest import manifest_key
from pipeline.storage import ObjectExists, open_store
from pipeline.versions import list_versions


def resolve_version(settings: Settings, version: str | None) -> str:
    versions = [v["version"] for v in list_versions(settings)]
    if not versions:
        raise LookupError("no committed version yet")
    if version is None:
        return versions[-1]
    if version not in versions:
        raise LookupError(f"no committed version {version!r}; committed: {', '.join(versions)}")
    return version


def version_facts(settings: Settings, version: str) -> tuple[dict, list, dict | None, list | None]:
    """(manifest, decisions, parent manifest, parent decisions), read-only."""
    store = open_store(settings.store)
    manifest = json.loads(store.get(manifest_key(version)))
    parent = manifest.get("parent")
    prov = connect(settings, write=False)
    try:
        decisions = _final(prov.decisions(version))
        parent_decisions = _final(prov.decisions(parent)) if parent else None
    finally:
        prov.close()
    parent_manifest = json.loads(store.get(manifest_key(parent))) if parent else None
    return manifest, decisions, parent_manifest, parent_decisions


def withdrawal_of(settings: Settings, version: str) -> dict | None:
    """(by, at, items) when a later version withdrew `version`, else None."""
    prov = connect(settings, write=False)
    try:
        meta = prov.version(version) or {}
    finally:
        prov.close()
    if not meta.get("withdrawn"):
        return None
    return {
        "by": meta.get("withdrawn_by"),
        "at": meta.get("withdrawn_at"),
        "items": sorted(meta.get("withdrawn_items") or []),
    }


def _final(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "_id"} for r in records]


def audit_version(
    settings: Settings,
    version: str | None = None,
    out_dir: Path | None = None,
    publish: bool = False,
    expiring_days: int = 90,
) -> dict:
    """Write the report to `out_dir`; with `publish`, also keep it in the store beside the
    version (`audits/<version>/`). Returns the report path and, if published, its URL."""
    from pipeline.audit.report import write_report

    version = resolve_version(settings, version)
    manifest, decisions, parent_manifest, parent_decisions = version_facts(settings, version)
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix=f"audit-{version}-"))
    files = write_report(
        out_dir,
        manifest,
        decisions,
        parent_manifest,
        parent_decisions,
        expiring_days=expiring_days,
        withdrawal=withdrawal_of(settings, version),
    )
    result = {"version": version, "report": str(out_dir / "report.html"), "files": len(files)}
    if publish:
        store = open_store(settings.store)
        for name, path in files.items():
            key = f"audits/{version}/{name}"
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            try:
                store.put(key, path.read_bytes(), content_type=content_type)
            except ObjectExists:
                pass
        result["published"] = store.url(f"audits/{version}/report.html")
    return result
