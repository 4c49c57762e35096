"""The shard row schema, read from `schemas/shard_row.json` so non-Python readers share it."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

import pyarrow as pa

_SCALARS = {
    "string": pa.string(),
    "binary": pa.binary(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date32": pa.date32(),
}


def schema_path() -> Path:
    bundled = resources.files("pipeline").joinpath("schemas/shard_row.json")
    if bundled.is_file():
        return Path(str(bundled))
    return Path(__file__).resolve().parents[2] / "schemas" / "shard_row.json"


def parse_type(text: str) -> pa.DataType:
    """Arrow type from its printed name: scalars, `list<T>` and `struct<a:T,...>`."""
    text = text.replace(" ", "")
    if text in _SCALARS:
        return _SCALARS[text]
    if match := re.fullmatch(r"list<(.+)>", text):
        return pa.list_(parse_type(match[1]))
    if match := re.fullmatch(r"struct<(.+)>", text):
        fields = [part.split(":", 1) for part in match[1].split(",")]
        return pa.struct([pa.field(name, parse_type(kind)) for name, kind in fields])
    raise ValueError(f"unsupported Arrow type {text!r} in {schema_path()}")


@cache
def shard_schema() -> pa.Schema:
    doc = json.loads(schema_path().read_text(encoding="utf-8"))
    fields = []
    for spec in doc["fields"]:
        metadata = {k: str(spec[k]) for k in ("unit", "description") if k in spec}
        fields.append(
            pa.field(
                spec["name"],
                parse_type(spec["type"]),
                nullable=spec.get("nullable", True),
                metadata=metadata or None,
            )
        )
    return pa.schema(fields, metadata={"schema_version": str(doc["schema_version"])})
