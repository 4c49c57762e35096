import json

from pipeline.catalogs.manifest import read
from pipeline.catalogs.models import CatalogItem, InvalidRecord

GOOD = {
    "track_id": "T1",
    "isrc": "us-abc-26-00001",
    "title": "Song",
    "artists": ["A"],
    "audio": "audio/t1.flac",
    "license": {"id": "CC0-1.0"},
}


def write(tmp_path, lines):
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return list(read("p1", str(tmp_path)))


def test_good_record_becomes_item_with_absolute_audio(tmp_path):
    (item,) = write(tmp_path, [json.dumps(GOOD)])
    assert isinstance(item, CatalogItem)
    assert item.key == "p1:T1"
    assert item.isrc == "USABC2600001"
    assert item.audio == str(tmp_path / "audio/t1.flac")


def test_bad_records_are_kept_with_a_reason(tmp_path):
    items = write(
        tmp_path,
        [
            "{not json",
            json.dumps([1, 2]),
            json.dumps({**GOOD, "track_id": "T2", "artists": []}),
            json.dumps({**GOOD, "track_id": "T3", "audio": "../../etc/passwd"}),
            json.dumps({**GOOD, "track_id": "T4", "audio": "/etc/passwd"}),
            json.dumps(GOOD),
            json.dumps(GOOD),
        ],
    )
    assert [type(i).__name__ for i in items] == [
        "InvalidRecord",
        "InvalidRecord",
        "InvalidRecord",
        "InvalidRecord",
        "InvalidRecord",
        "CatalogItem",
        "InvalidRecord",
    ]
    invalid = [i for i in items if isinstance(i, InvalidRecord)]
    assert invalid[0].key == "p1:#line-1"
    assert "artists" in invalid[2].message
    assert "escapes" in invalid[3].message
    assert "relative" in invalid[4].message
    assert "more than once" in invalid[5].message
    assert len({i.key for i in items}) == len(items)
