"""Keep a delivery's validation result and Data Docs with the run, in the object store."""

from __future__ import annotations

import json
import mimetypes

from pipeline.storage import ObjectExists, ObjectStore, StoreError


def failures_key(version: str, partner: str) -> str:
    return f"runs/{version}/validation/{partner}/failures.json"


def publish_report(
    store: ObjectStore,
    version: str,
    partner: str,
    report,
    records_digest: str,
    suite: str,
) -> dict:
    """Write `runs/<version>/validation/<partner>/…`; returns where an auditor opens it.
    `failures.json` keeps the failed expectations per record with the digest of the records
    and the suite they held for, so a later run over the same records can reuse them."""
    published = publish_part(store, version, partner, report)
    failures = publish_failures(store, version, partner, report.failures, records_digest, suite)
    return {**published, "failures": failures}


def publish_part(store: ObjectStore, version: str, partner: str, report, part=None) -> dict:
    """The result and Data Docs of one validation run: of the whole delivery, or of one
    part of a delivery too large to validate at once (`part-0001/`, …)."""
    prefix = f"runs/{version}/validation/{partner}" + (f"/part-{part:04d}" if part else "")
    files = {f"{prefix}/result.json": json.dumps(report.result, indent=2).encode()}
    files.update({f"{prefix}/docs/{path}": data for path, data in report.docs.items()})
    _put(store, files)
    pages = [p for p in report.docs if p.startswith("validations/") and p.endswith(".html")]
    return {
        "success": report.success,
        "evaluated": report.evaluated,
        "failed_records": len(report.failures),
        "result": store.url(f"{prefix}/result.json"),
        "docs": store.url(f"{prefix}/docs/index.html"),
        "page": store.url(f"{prefix}/docs/{pages[0]}") if pages else None,
    }


def publish_parts(
    store: ObjectStore,
    version: str,
    partner: str,
    parts: list[dict],
    failures: dict[int, list[str]],
    records_digest: str,
    suite: str,
) -> dict:
    """The summary of a delivery validated in parts: `result.json` lists the parts; the
    docs and page links are the first part's."""
    prefix = f"runs/{version}/validation/{partner}"
    summary = {
        "success": all(part["success"] for part in parts),
        "evaluated": sum(part["evaluated"] for part in parts),
        "failed_records": sum(part["failed_records"] for part in parts),
    }
    _put(store, {f"{prefix}/result.json": json.dumps({**summary, "parts": parts}).encode()})
    return {
        **summary,
        "result": store.url(f"{prefix}/result.json"),
        "failures": publish_failures(store, version, partner, failures, records_digest, suite),
        "docs": parts[0]["docs"],
        "page": parts[0]["page"],
        "parts": len(parts),
    }


def publish_failures(
    store: ObjectStore,
    version: str,
    partner: str,
    failures: dict[int, list[str]],
    records_digest: str,
    suite: str,
) -> str:
    kept = {
        "records_digest": records_digest,
        "suite_hash": suite,
        "failures": {str(index): names for index, names in sorted(failures.items())},
    }
    _put(store, {failures_key(version, partner): json.dumps(kept).encode()})
    return store.url(failures_key(version, partner))


def _put(store: ObjectStore, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        try:
            store.put(key, data, content_type=content_type)
        except ObjectExists:
            pass


def earlier_failures(
    store: ObjectStore, version: str, partner: str, records_digest: str, suite: str
) -> dict[int, list[str]] | None:
    """The failed expectations per record that `version` recorded for `partner`, when it
    validated the same records with the same suite; None when there is nothing to reuse."""
    try:
        kept = json.loads(store.get(failures_key(version, partner)))
    except (StoreError, ValueError, KeyError, AttributeError):
        return None
    if kept.get("records_digest") != records_digest or kept.get("suite_hash") != suite:
        return None
    return {int(index): names for index, names in kept["failures"].items()}
