import json

from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.manifest import read
from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.partners import Partner

GOOD = {
    "track_id": "T1",
    "isrc": "us-abc-26-00001",
    "title": "Song",
    "artists": ["A"],
    "audio": "audio/t1.flac",
    "license": {"id": "CC0-1.0"},
}


def deliver(tmp_path, lines):
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    partner = Partner(id="p1", name="P1", location=str(tmp_path))
    return read_delivery(partner)


def test_connector_reads_raw_records(tmp_path):
    (tmp_path / "manifest.jsonl").write_text(json.dumps(GOOD) + "\n\n[1]\n")
    first, second = read("p1", str(tmp_path))
    assert isinstance(first, RawRecord) and first.data == GOOD and first.line == 1
    assert isinstance(second, InvalidRecord) and second.key == "p1:#line-3"


def test_good_record_becomes_item_with_absolute_audio(tmp_path):
    (item,), report = deliver(tmp_path, [json.dumps(GOOD)])
    assert report.success
    assert isinstance(item, CatalogItem)
    assert item.key == "p1:T1"
    assert item.isrc == "USABC2600001"
    assert item.audio == str(tmp_path / "audio/t1.flac")


def test_bad_records_are_kept_with_a_reason(tmp_path):
    items, report = deliver(
        tmp_path,
        [
            "{not json",
            json.dumps([1, 2]),
            json.dumps({**GOOD, "track_id": "T2", "artists": []}),
            json.dumps({**GOOD, "track_id": "T3", "audio": "../../etc/passwd"}),
            json.dumps({**GOOD, "track_id": "T4", "audio": "/etc/passwd"}),
            json.dumps({**GOOD, "track_id": "T5", "license": {"id": "CC0-1.0", "uses": ["x"]}}),
            json.dumps({**GOOD, "track_id": "T6", "$where": "1", "isrc": "NOPE"}),
            json.dumps(GOOD),
            json.dumps(GOOD),
        ],
    )
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["InvalidRecord"] * 9
    assert len({i.key for i in items}) == len(items)
    by_key = {i.key: i for i in items}
    assert by_key["p1:#line-1"].message.startswith("not JSON")
    assert "artists_count" in by_key["p1:T2"].message
    assert "escapes" in by_key["p1:T3"].message
    assert "relative" in by_key["p1:T4"].message
    assert "license.uses" in by_key["p1:T5"].message
    assert "isrc" in by_key["p1:T6"].message
    assert "unique" in by_key["p1:T1"].message
    assert "p1:T1#line-9" in by_key
    assert not report.success and report.evaluated == 7
