"""Rows to Parquet bytes: zstd, no dictionary on floats, audio bytes stored as delivered."""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.shards.schema import shard_schema

ROW_GROUP_BYTES = 64 * 1024 * 1024


def to_parquet(rows: list[dict]) -> bytes:
    return table_to_parquet(pa.Table.from_pylist(rows, schema=shard_schema()))


def rows_per_group(table: pa.Table, target_bytes: int = ROW_GROUP_BYTES) -> int:
    """Row groups of about `target_bytes`, so a streaming reader holds one group at a time."""
    if table.num_rows == 0:
        return 1
    per_row = max(1, table.nbytes // table.num_rows)
    return max(1, target_bytes // per_row)


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Strings and string lists repeat (partner, licence, key); floats and audio do not."""
    return [
        f.name
        for f in schema
        if pa.types.is_string(f.type)
        or (pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type))
    ]


def table_to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=_dictionary_columns(table.schema),
        row_group_size=rows_per_group(table),
    )
    return sink.getvalue()


def shard_key(data: bytes) -> str:
    """Content-addressed name: writing the same shard twice is harmless."""
    return f"shards/{hashlib.sha256(data).hexdigest()}.parquet"
