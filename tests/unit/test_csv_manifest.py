"""The CSV manifest connector: mapped columns, list cells, bad rows kept with file:line."""

import pytest

from pipeline.catalogs.csv_manifest import read
from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.partners import CsvMapping, Partner

MAPPING = CsvMapping(
    columns={
        "track_id": "Track ID",
        "title": "Title",
        "artists": "Artists",
        "audio": "File",
        "license_id": "Licence",
        "uses": "Uses",
        "territories": "Territories",
        "excluded_territories": "Excluded",
        "valid_until": "Until",
        "tdm_opt_out": "TDM opt-out",
    }
)
HEADER = "Track ID,Title,Artists,File,Licence,Uses,Territories,Excluded,Until,TDM opt-out,Notes"


def write(tmp_path, *rows, name="manifest.csv", header=HEADER):
    (tmp_path / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return tmp_path


def test_rows_become_manifest_records(tmp_path):
    write(
        tmp_path,
        'T1,"Song, with comma",Ada; Bo ,audio/t1.flac,LicenseRef-p-AI1,ai_training;commercial,'
        "Worldwide,US;CN,2027-12-31,no,ignored",
        "T2,Other,Cy,audio/t2.wav,CC0-1.0,,,,,,",
    )
    first, second = read("p", str(tmp_path), MAPPING)
    assert isinstance(first, RawRecord) and first.line == 1
    assert first.source == f"{tmp_path / 'manifest.csv'}:2"
    assert first.data == {
        "track_id": "T1",
        "title": "Song, with comma",
        "artists": ["Ada", "Bo"],
        "audio": "audio/t1.flac",
        "license": {
            "id": "LicenseRef-p-AI1",
            "uses": ["ai_training", "commercial"],
            "territories": ["Worldwide"],
            "excluded_territories": ["US", "CN"],
            "valid_until": "2027-12-31",
            "tdm_opt_out": False,
        },
    }
    assert second.data == {
        "track_id": "T2",
        "title": "Other",
        "artists": ["Cy"],
        "audio": "audio/t2.wav",
        "license": {"id": "CC0-1.0"},
    }


def test_default_columns_delimiter_and_evidence(tmp_path):
    header = "track_id;title;artists;audio;license_id;evidence_uri;evidence_sha256;isrc"
    (tmp_path / "manifest.csv").write_text(
        header
        + "\nT1;T;A|B;a.flac;CC-BY-4.0;https://x.example/l.pdf;"
        + "a" * 64
        + ";US-ABC-26-00001\n"
    )
    (record,) = read("p", str(tmp_path), CsvMapping(delimiter=";", list_separator="|"))
    assert record.data["artists"] == ["A", "B"]
    assert record.data["isrc"] == "US-ABC-26-00001"
    assert record.data["license"] == {
        "id": "CC-BY-4.0",
        "evidence": {"uri": "https://x.example/l.pdf", "sha256": "a" * 64},
    }


def test_bad_rows_are_kept_with_file_and_line_and_the_rest_go_on(tmp_path):
    write(
        tmp_path,
        "T1,One,A,a/1.flac,CC0-1.0,,,,,,",
        "T2,Two,A,a/2.flac,CC0-1.0,,,,,",
        "",
        '"T3,"Broken quote,A,a/3.flac,CC0-1.0,,,,,,',
        "T4,Four,A,a/4.flac,CC0-1.0,,,,not-a-date,maybe,",
        "T5,Five,A,../../etc/passwd,CC0-1.0,,,,,,",
    )
    partner = Partner(id="p", name="P", connector="csv", location=str(tmp_path), mapping=MAPPING)
    items, report = read_delivery(partner)
    by_key = {i.key: i for i in items}
    path = tmp_path / "manifest.csv"
    assert isinstance(by_key["p:T1"], CatalogItem)
    short = by_key["p:T2"]
    assert isinstance(short, InvalidRecord) and short.source == f"{path}:3"
    assert "10 cells, the header has 11" in short.message
    broken = next(i for i in items if getattr(i, "source", None) == f"{path}:5")
    assert isinstance(broken, InvalidRecord) and "cells" in broken.message
    four = by_key["p:T4"]
    assert isinstance(four, InvalidRecord) and four.source == f"{path}:6"
    assert "valid_until" in four.message and "tdm_opt_out" in four.message
    five = by_key["p:T5"]
    assert isinstance(five, InvalidRecord) and "escapes the delivery root" in five.message


def test_missing_mapped_column_names_the_file(tmp_path):
    write(tmp_path, "T1,One", header="Track ID,Title")
    (record,) = read("p", str(tmp_path), MAPPING)
    assert isinstance(record, InvalidRecord)
    assert record.source == f"{tmp_path / 'manifest.csv'}:1"
    assert "'Artists'" in record.message and "'File'" in record.message


def test_several_files_in_name_order_with_running_numbers(tmp_path):
    write(tmp_path, "T2,Two,A,b.flac,CC0-1.0,,,,,,", name="b.csv")
    write(tmp_path, "T1,One,A,a.flac,CC0-1.0,,,,,,", "T0,Zero,A,z.flac,CC0-1.0,,,,,,", name="a.csv")
    mapping = MAPPING.model_copy(update={"files": "*.csv"})
    records = list(read("p", str(tmp_path), mapping))
    assert [(r.data["track_id"], r.line) for r in records] == [("T1", 1), ("T0", 2), ("T2", 3)]
    assert records[2].source.endswith("b.csv:2")


def test_an_empty_or_absent_or_remote_delivery_stops_the_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches"):
        list(read("p", str(tmp_path), MAPPING))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(read("p", f"file://{tmp_path}/absent", MAPPING))
    with pytest.raises(ValueError, match="local \\(file://\\) and gs:// deliveries only"):
        list(read("p", "https://host.example/prefix", MAPPING))


def test_demo_csv_delivery_gives_the_promised_decisions(tmp_path):
    from datetime import date

    from corpus_demo.connectors import write_csv_delivery
    from pipeline.licensing import decide
    from pipeline.licensing.policy import Policy

    sources = []
    for i in range(4):
        source = tmp_path / f"src{i}.wav"
        source.write_bytes(bytes([i]) * 100)
        sources.append((f"c{i}", f"Title {i}, live", f"Artist {i}", source))
    delivery = write_csv_delivery(tmp_path / "csv", sources, partner_id="demo-csv")
    items, report = read_delivery(Partner.model_validate(delivery.partner))
    assert report.success
    found = {
        i.key: [r.value for r in decide(i.license, Policy(), date(2026, 6, 1)).reasons]
        for i in items
    }
    assert found == delivery.expected
    assert sorted(map(sorted, found.values())) == [[], [], ["TDM_OPT_OUT"], ["USE_NOT_GRANTED"]]
