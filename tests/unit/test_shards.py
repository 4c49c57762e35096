import io
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.shards.manifest import version_id
from pipeline.shards.rows import split_for
from pipeline.shards.schema import parse_type, shard_schema
from pipeline.shards.writer import shard_key, to_parquet


def test_schema_has_units_and_contract_columns():
    schema = shard_schema()
    for name in (
        "item_key",
        "partner",
        "track_id",
        "isrc",
        "title",
        "artists",
        "license_id",
        "split",
        "audio",
        "loudness_integrated_lufs",
        "bpm",
        "key",
        "scale",
    ):
        assert name in schema.names
    assert schema.field("loudness_integrated_lufs").metadata[b"unit"] == b"LUFS"
    assert schema.field("audio").type == pa.struct(
        [pa.field("bytes", pa.binary()), pa.field("path", pa.string())]
    )


def test_parse_type_rejects_unknown():
    assert parse_type("list<float32>") == pa.list_(pa.float32())
    try:
        parse_type("decimal")
    except ValueError as exc:
        assert "decimal" in str(exc)
    else:
        raise AssertionError("decimal accepted")


def test_split_is_stable_and_roughly_proportional():
    assert split_for("Ana Sol") == split_for("  ana   SOL ")
    counts = Counter(split_for(f"artist {i}") for i in range(5000))
    assert 0.87 < counts["train"] / 5000 < 0.93
    assert counts["validation"] and counts["test"]


def test_version_id_is_stable_per_run():
    from datetime import date

    assert version_id(date(2026, 1, 2), "r1") == version_id(date(2026, 1, 2), "r1")
    assert version_id(date(2026, 1, 2), "r1") != version_id(date(2026, 1, 2), "r2")
    assert version_id(date(2026, 1, 2), "r1").startswith("20260102-")


def test_parquet_round_trip_is_zstd_and_content_named():
    row = {name: None for name in shard_schema().names}
    row.update(
        item_key="p:1",
        partner="p",
        track_id="1",
        title="t",
        artists=["a"],
        license_id="CC0-1.0",
        split="train",
        audio={"bytes": b"RIFF", "path": "1.wav"},
        audio_sha256="0" * 64,
        descriptor_set="x",
        bpm=120.0,
        mfcc_mean=[1.0] * 13,
    )
    data = to_parquet([row])
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(io.BytesIO(data))
    assert table.column("audio")[0].as_py() == {"bytes": b"RIFF", "path": "1.wav"}
    assert shard_key(data) == shard_key(to_parquet([row]))


def test_row_groups_are_sized_by_bytes_and_floats_skip_dictionaries():
    from pipeline.shards.writer import rows_per_group

    row = {name: None for name in shard_schema().names}
    row.update(
        item_key="p:1",
        partner="p",
        track_id="1",
        title="t",
        artists=["a"],
        license_id="CC0-1.0",
        split="train",
        audio_sha256="0" * 64,
        descriptor_set="x",
        bpm=120.0,
        mfcc_mean=[1.0] * 13,
    )
    rows = [
        {**row, "item_key": f"p:{i}", "audio": {"bytes": bytes(200_000), "path": "x.wav"}}
        for i in range(40)
    ]
    table = pa.Table.from_pylist(rows, schema=shard_schema())
    assert rows_per_group(table, target_bytes=1_000_000) == 4
    meta = pq.ParquetFile(io.BytesIO(to_parquet(rows))).metadata
    columns = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i)
        for i in range(meta.num_columns)
    }
    assert "RLE_DICTIONARY" not in str(columns["bpm"].encodings)
    assert "RLE_DICTIONARY" in str(columns["partner"].encodings)


def test_split_ratios_come_from_the_policy():
    from pipeline.licensing.policy import Policy, Splits

    artists = [f"artist {i}" for i in range(4000)]
    half = Policy(splits=Splits(train=50, validation=25, test=25)).splits.model_dump()
    counts = Counter(split_for(a, half) for a in artists)
    assert 0.46 < counts["train"] / 4000 < 0.54
    assert 0.21 < counts["test"] / 4000 < 0.29
    assert all(
        split_for(a, {"train": 100, "validation": 0, "test": 0}) == "train" for a in artists[:200]
    )
    try:
        Splits(train=90, validation=5, test=10)
    except ValueError as exc:
        assert "must be 100" in str(exc)
    else:
        raise AssertionError("ratios that do not sum to 100 accepted")
