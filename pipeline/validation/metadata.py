"""Record-level metadata checks: flatten each manifest record, run the GX suite, map failures back.

The suite (`schemas/metadata_suite.json`) is plain Great Expectations 1.x JSON so that people can
read and edit the rules, and Data Docs show them. Everything here is tolerant of malformed
records: bad input becomes failed expectations on that record's index, never an exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

SUITE_NAME = "catalog_metadata"
SUITE_FILE = "metadata_suite.json"

COLUMNS = (
    "track_id",
    "isrc",
    "title",
    "artists_count",
    "audio",
    "sha256",
    "license_id",
    "valid_from",
    "valid_until",
    "territories",
    "excluded_territories",
    "evidence_sha256",
    "tdm_opt_out",
)

WRONG_TYPE = ""
"""What a present value of the wrong type flattens to: no text check accepts empty text."""

# GX keeps a process-wide "current context"; one validation at a time keeps runs apart.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class MetadataReport:
    """Outcome of one batch.

    `failures` maps a record's index to the names of the expectations it failed; `result` is GX's
    validation result as JSON-ready dict; `docs` is the Data Docs site (relative path -> bytes).
    """

    success: bool
    evaluated: int
    failures: dict[int, list[str]]
    result: dict
    docs: dict[str, bytes]


def default_suite_path() -> Path:
    bundled = resources.files("pipeline").joinpath(f"schemas/{SUITE_FILE}")
    if bundled.is_file():
        return Path(str(bundled))
    return Path(__file__).resolve().parents[2] / "schemas" / SUITE_FILE


def suite_hash(suite_path: Path | None = None) -> str:
    """sha256 of the suite's text: a validation result holds only for the suite it ran."""
    text = (suite_path or default_suite_path()).read_bytes()
    return hashlib.sha256(text).hexdigest()


def flatten(record: dict) -> dict:
    """One row of `COLUMNS` from a raw manifest record; pure and never raises.

    Missing or null fields become None (optional fields then pass). A present value of the wrong
    type becomes empty text, which fails that field's format expectation instead of passing as
    absent. Lists are kept as JSON text so one row per record suffices.
    """
    record = record if isinstance(record, dict) else {}
    licence = record.get("license")
    licence = licence if isinstance(licence, dict) else {}
    evidence = licence.get("evidence")
    if isinstance(evidence, dict):
        evidence_sha256 = _text(evidence.get("sha256"))
    else:
        evidence_sha256 = None if evidence is None else WRONG_TYPE
    return {
        "track_id": _text(record.get("track_id")),
        "isrc": _isrc(record.get("isrc")),
        "title": _text(record.get("title")),
        "artists_count": _artists_count(record.get("artists")),
        "audio": _text(record.get("audio")),
        "sha256": _text(record.get("sha256")),
        "license_id": _text(licence.get("id")),
        "valid_from": _text(licence.get("valid_from")),
        "valid_until": _text(licence.get("valid_until")),
        "territories": _json_text(licence.get("territories")),
        "excluded_territories": _json_text(licence.get("excluded_territories")),
        "evidence_sha256": evidence_sha256,
        "tdm_opt_out": _flag(licence.get("tdm_opt_out")),
    }


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return WRONG_TYPE


def _isrc(value: Any) -> str | None:
    if isinstance(value, str):
        return value.replace("-", "").strip().upper() or None
    return _text(value)


def _artists_count(value: Any) -> int:
    """Number of artist names; 0 unless `artists` is a list of non-blank texts."""
    if isinstance(value, list) and all(isinstance(a, str) and a.strip() for a in value):
        return len(value)
    return 0


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, default=lambda o: f"<{type(o).__name__}>")
    except (TypeError, ValueError, RecursionError):
        return WRONG_TYPE


def _flag(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    return WRONG_TYPE


def validate_records(records: list[dict], suite_path: Path | None = None) -> MetadataReport:
    """Run the suite on `records` (in memory, nothing written outside a temporary folder)."""
    rows = [flatten(record) for record in records]
    suite = json.loads((suite_path or default_suite_path()).read_text(encoding="utf-8"))
    with _LOCK, tempfile.TemporaryDirectory(prefix="gx-docs-") as docs_dir:
        result = _run_suite(rows, suite, Path(docs_dir))
        docs = {
            path.relative_to(docs_dir).as_posix(): path.read_bytes()
            for path in sorted(Path(docs_dir).rglob("*"))
            if path.is_file()
        }
    return MetadataReport(
        success=bool(result["success"]),
        evaluated=len(rows),
        failures=failures_by_record(result, len(rows)),
        result=result,
        docs=docs,
    )


def _run_suite(rows: list[dict], suite: dict, docs_dir: Path) -> dict:
    """Validate `rows` with a fresh ephemeral GX context whose Data Docs site is `docs_dir`."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import pandas as pd
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={
            "metadata": {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    suite = context.suites.add(gx.ExpectationSuite(**suite))
    batch = (
        context.data_sources.add_pandas("partner_manifest")
        .add_dataframe_asset("records")
        .add_batch_definition_whole_dataframe("batch")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=suite.name,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
        )
    )
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    (validation,) = outcome.run_results.values()
    return validation.to_json_dict()


def failures_by_record(result: dict, count: int) -> dict[int, list[str]]:
    """Record index -> names of its failed expectations, from a GX validation result dict.

    An expectation that failed without row indices (it raised, or is not a per-row check) is
    charged to every record: an unchecked rule must not let records through.
    """
    failures: dict[int, list[str]] = {}
    for outcome in result.get("results", []):
        if outcome.get("success"):
            continue
        name = expectation_name(outcome.get("expectation_config") or {})
        indices = (outcome.get("result") or {}).get("unexpected_index_list")
        if _raised(outcome.get("exception_info")) or indices is None:
            name, indices = f"{name} (could not be evaluated)", range(count)
        for index in indices:
            failures.setdefault(int(index), []).append(name)
    return failures


def expectation_name(config: dict) -> str:
    """'<description> [<expectation type>(<columns>)]', e.g. for isrc's regex check."""
    kwargs = config.get("kwargs") or {}
    columns = [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]
    columns += kwargs.get("column_list") or []
    technical = f"{config.get('type', 'expectation')}({', '.join(map(str, columns))})"
    description = config.get("description")
    return f"{description} [{technical}]" if description else technical


def _raised(info: Any) -> bool:
    if not isinstance(info, dict):
        return False
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())
