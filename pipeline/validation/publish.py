"""Keep a delivery's validation result and Data Docs with the run, in the object store."""

from __future__ import annotations

import json
import mimetypes

from pipeline.storage import ObjectExists, ObjectStore


def publish_report(store: ObjectStore, version: str, partner: str, report) -> dict:
    """Write `runs/<version>/validation/<partner>/…`; returns where an auditor opens it."""
    prefix = f"runs/{version}/validation/{partner}"
    files = {f"{prefix}/result.json": json.dumps(report.result, indent=2).encode()}
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
        "docs": store.url(f"{prefix}/docs/index.html"),
        "page": store.url(f"{prefix}/docs/{pages[0]}") if pages else None,
    }
