"""Rows to Parquet bytes: zstd, no dictionary on floats, audio bytes stored as delivered."""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.shards.schema import shard_schema


def to_parquet(rows: list[dict]) -> bytes:
    return table_to_parquet(pa.Table.from_pylist(rows, schema=shard_schema()))


def table_to_parquet(table: pa.Table) -> bytes:
    schema = table.schema
    dictionary_columns = [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_list(f.type)
    ]
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=[c for c in dictionary_columns if c != "mfcc_mean"],
        row_group_size=256,
    )
    return sink.getvalue()


def shard_key(data: bytes) -> str:
    """Content-addressed name: writing the same shard twice is harmless."""
    return f"shards/{hashlib.sha256(data).hexdigest()}.parquet"
