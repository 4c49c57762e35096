"""Keep a delivery's validation result and Data Docs with the run, in the object store."""

from __future__ import annotations

import json
import mimetypes

from pipeline.storage import ObjectExists, ObjectStore, StoreError


def failures_key(version: str, partner: str) -> str:
    return f"runs/{version}/validation/{partner}/failures.json"


def publish_report(
    store: ObjectStore, version: str, partner: str, report, records_digest: str, suite: str
) -> dict:
    """Write `runs/<version>/validation/<partner>/…`; returns where an auditor opens it.
    `failures.json` keeps the failed expectations per record with the digest of the records
    and the suite they held for, so a later run over the same records can reuse them."""
    prefix = f"runs/{version}/validation/{partner}"
    failures = {
        "records_digest": records_digest,
        "suite_hash": suite,
        "failures": {str(index): names for index, names in sorted(report.failures.items())},
    }
    files = {
        f"{prefix}/result.json": json.dumps(report.result, indent=2).encode(),
        failures_key(version, partner): json.dumps(failures).encode(),
    }
    files.update({f"{prefix}/docs/{path}": data for path, data in report.docs.items()})
    for key, data in files.items():
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        try:
            store.put(key, data, content_type=content_type)
        except ObjectExists:
            pass
    pages = [p for p in report.docs if p.startswith("validations/") and p.endswith(".html")]
    return {
        "success": report.success,
        "evaluated": report.evaluated,
        "failed_records": len(report.failures),
        "result": store.url(f"{prefix}/result.json"),
        "failures": store.url(failures_key(version, partner)),
        "docs": store.url(f"{prefix}/docs/index.html"),
        "page": store.url(f"{prefix}/docs/{pages[0]}") if pages else None,
    }


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
