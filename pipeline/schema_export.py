"""Writes the schemas in `schemas/` from the models and column definitions, so files and code
cannot drift.

Run `python -m pipeline.schema_export` after changing a model; a test fails until you do.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.catalogs.models import CatalogItem
from pipeline.licensing.policy import policy_json_schema

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def manifest_record_schema() -> dict:
    """A manifest line: a CatalogItem without the partner, which the partners file supplies,
    and without the source, which the reader records."""
    schema = CatalogItem.model_json_schema()
    for ours in ("partner", "source"):
        schema["properties"].pop(ours)
    schema["required"] = [r for r in schema["required"] if r != "partner"]
    schema["title"] = "Manifest record"
    schema["description"] = "One line of a partner's manifest.jsonl: one track."
    return {"$schema": DRAFT, **schema}


def generated() -> dict[str, dict]:
    from pipeline.catalogs.partners import partners_json_schema
    from pipeline.shards.columns import shard_row_document

    return {
        "policy.schema.json": policy_json_schema(),
        "manifest_record.schema.json": manifest_record_schema(),
        "partners.schema.json": partners_json_schema(),
        "shard_row.json": shard_row_document(),
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main() -> None:
    for name, schema in generated().items():
        (SCHEMAS / name).write_text(render(schema), encoding="utf-8")
        print(SCHEMAS / name)


if __name__ == "__main__":
    main()
