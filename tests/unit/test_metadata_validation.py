"""The metadata suite flags each malformed record on its own index, and only there."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import string
import subprocess
import sys
from importlib import resources

import pytest

from pipeline.validation import COLUMNS, SUITE_NAME, default_suite_path, flatten, validate_records
from pipeline.validation.metadata import failures_by_record

HEX = "0123456789abcdef" * 4


def good_record(track_id: str = "DL001") -> dict:
    return {
        "track_id": track_id,
        "isrc": "XXDLB2600001",
        "title": "Morning Tide",
        "artists": ["Ana Sol"],
        "audio": "audio/dl001.flac",
        "sha256": HEX,
        "license": {
            "id": "CC0-1.0",
            "uses": ["ai_training"],
            "territories": ["Worldwide"],
            "excluded_territories": [],
            "valid_from": "2025-01-01",
            "valid_until": "2030-12-31",
            "attribution": "Ana Sol, CC0",
            "evidence": {"uri": "https://example.org/l.pdf", "sha256": HEX},
            "tdm_opt_out": False,
        },
    }


def with_licence(**changes) -> dict:
    record = good_record()
    record["license"].update(changes)
    return record


def with_fields(**changes) -> dict:
    return {**good_record(), **changes}


def without(field: str) -> dict:
    record = good_record()
    del record[field]
    return record


# Variants that are fine, so they must not be flagged.
GOOD_VARIANTS = [
    good_record(),
    with_fields(isrc="xx-dlb-26-00002"),
    with_fields(isrc=None, sha256=None),
    with_licence(id="LicenseRef-demo-label.contract-7", territories=["DE", "FR", "JP"]),
    with_licence(territories=["Worldwide"], excluded_territories=["US", "CN"]),
    with_licence(valid_from="2024-02-29", valid_until="2024-02-29", tdm_opt_out=True),
    with_licence(valid_from=None, valid_until=None, evidence=None, tdm_opt_out=None),
    with_fields(artists=["Ana Sol", "Rio Mar"]),
]

# (case, record, column the failure must name)
BAD = [
    ("missing title", without("title"), "title"),
    ("title not text", with_fields(title=42), "title"),
    ("blank title", with_fields(title="  "), "title"),
    ("empty artists", with_fields(artists=[]), "artists_count"),
    ("artists not a list", with_fields(artists="Ana Sol"), "artists_count"),
    ("missing audio", without("audio"), "audio"),
    ("track_id with a slash", with_fields(track_id="a/b"), "track_id"),
    ("track_id not text", with_fields(track_id=7), "track_id"),
    ("ISRC too short", with_fields(isrc="XX-DLB-26-0001"), "isrc"),
    ("ISRC as a list", with_fields(isrc=["XXDLB2600001"]), "isrc"),
    ("month 13", with_licence(valid_from="2025-13-40"), "valid_from"),
    ("30 February", with_licence(valid_until="2025-02-30"), "valid_until"),
    ("date not zero-padded", with_licence(valid_from="2025-1-1"), "valid_from"),
    ("from after until", with_licence(valid_from="2031-01-01"), "valid_until"),
    ("licence id with spaces", with_licence(id="CC BY 4.0"), "license_id"),
    ("licence id a number", with_licence(id=42), "license_id"),
    ("territory XX", with_licence(territories=["DE", "XX"]), "territories"),
    ("territory Europe", with_licence(excluded_territories=["Europe"]), "excluded_territories"),
    ("territories not a list", with_licence(territories="Worldwide"), "territories"),
    ("sha256 not hex", with_fields(sha256="z" * 64), "sha256"),
    ("sha256 upper case", with_fields(sha256=HEX.upper()), "sha256"),
    (
        "evidence sha256 short",
        with_licence(evidence={"uri": "u", "sha256": "abc"}),
        "evidence_sha256",
    ),
    ("tdm_opt_out yes", with_licence(tdm_opt_out="yes"), "tdm_opt_out"),
    ("tdm_opt_out 1", with_licence(tdm_opt_out=1), "tdm_opt_out"),
    ("wrong shape", {"license": "CC0"}, "license_id"),
]
DUPLICATE_ID = "DUP-1"


def mentions(name: str, column: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(column)}(?!\w)", name) is not None


def build_batch() -> tuple[list[dict], dict[str, int], tuple[int, int]]:
    """Good variants interleaved with the bad cases, each with its own track_id."""
    records, index_of = [], {}
    ids = (f"T{n:03d}" for n in itertools.count())
    for variant in GOOD_VARIANTS:
        records.append({**copy.deepcopy(variant), "track_id": next(ids)})
    for case, record, _ in BAD:
        record = copy.deepcopy(record)
        if record.get("track_id") == "DL001":
            record["track_id"] = next(ids)
        index_of[case] = len(records)
        records.append(record)
        records.append({**good_record(), "track_id": next(ids)})
    duplicates = (len(records), len(records) + 2)
    records.append({**good_record(), "track_id": DUPLICATE_ID})
    records.append({**good_record(), "track_id": next(ids)})
    records.append({**good_record(), "track_id": DUPLICATE_ID})
    return records, index_of, duplicates


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    records, index_of, duplicates = build_batch()
    cwd, workdir = os.getcwd(), tmp_path_factory.mktemp("cwd")
    os.chdir(workdir)
    try:
        report = validate_records(records)
    finally:
        os.chdir(cwd)
    return report, index_of, duplicates, workdir


def test_importing_the_package_leaves_great_expectations_unloaded():
    code = (
        "import sys, pipeline.validation;"
        "print(sorted({'great_expectations', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_flatten_a_good_record():
    assert flatten(good_record()) == {
        "track_id": "DL001",
        "isrc": "XXDLB2600001",
        "title": "Morning Tide",
        "artists_count": 1,
        "audio": "audio/dl001.flac",
        "sha256": HEX,
        "license_id": "CC0-1.0",
        "valid_from": "2025-01-01",
        "valid_until": "2030-12-31",
        "territories": '["Worldwide"]',
        "excluded_territories": "[]",
        "evidence_sha256": HEX,
        "tdm_opt_out": False,
    }


def test_flatten_normalises_isrc_and_marks_wrong_types_as_empty_text():
    row = flatten(
        {
            "track_id": 7,
            "isrc": " xx-dlb-26-00001 ",
            "title": ["Morning"],
            "artists": ["Ana", 3],
            "license": {"id": {"spdx": "CC0-1.0"}, "evidence": "https://x", "tdm_opt_out": "no"},
        }
    )
    assert row["isrc"] == "XXDLB2600001"
    assert row["track_id"] == row["title"] == row["license_id"] == ""
    assert row["evidence_sha256"] == row["tdm_opt_out"] == ""
    assert row["artists_count"] == 0
    assert row["audio"] is None and row["valid_from"] is None and row["territories"] is None


@pytest.mark.parametrize(
    "record",
    [
        None,
        "a line",
        [1, 2],
        {},
        {"license": "CC0"},
        {"license": None, "artists": None, "isrc": ""},
        {"license": {"territories": {"DE"}, "evidence": [], "valid_from": 20250101}},
        {"license": {"territories": [{(1, 2): "key json cannot encode"}]}},
        {"artists": [None], "sha256": b"\x00", "isrc": float("nan")},
    ],
)
def test_flatten_never_raises_and_always_gives_every_column(record):
    row = flatten(record)
    assert tuple(row) == COLUMNS
    assert all(value is None or isinstance(value, str | bool | int) for value in row.values())


def test_suite_file_is_a_gx_suite_over_the_flattened_columns():
    import great_expectations as gx

    raw = json.loads(default_suite_path().read_text())
    suite = gx.ExpectationSuite(**raw)
    assert suite.name == SUITE_NAME
    assert len(suite.expectations) == len(raw["expectations"]) >= 20
    for expectation in raw["expectations"]:
        kwargs = expectation["kwargs"]
        columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        assert columns and set(columns) <= set(COLUMNS), expectation
        assert expectation.get("description"), expectation["type"]


def territory_regex(column: str) -> str:
    raw = json.loads(default_suite_path().read_text())
    (regex,) = [
        e["kwargs"]["regex"]
        for e in raw["expectations"]
        if e["kwargs"].get("column") == column and "regex" in e["kwargs"]
    ]
    return regex


def iso_3166_alpha2_from_tzdata() -> set[str]:
    table = resources.files("tzdata").joinpath("zoneinfo/iso3166.tab").read_text("utf-8")
    return {line.split("\t")[0] for line in table.splitlines() if line and line[0] != "#"}


@pytest.mark.parametrize("column", ["territories", "excluded_territories"])
def test_territory_pattern_accepts_exactly_iso_3166_alpha2_and_worldwide(column):
    pattern = re.compile(territory_regex(column))
    iso = iso_3166_alpha2_from_tzdata()
    assert len(iso) == 249
    pairs = {a + b for a, b in itertools.product(string.ascii_uppercase, repeat=2)}
    accepted = {
        code
        for code in pairs | {"Worldwide", "worldwide", "EU"}
        if pattern.search(json.dumps([code]))
    }
    assert accepted == iso | {"Worldwide"}
    assert pattern.search(json.dumps(["DE", "Worldwide", "FR"]))
    assert pattern.search("[]")
    for bad in (["DE", "XX"], ["DE "], "DE", {"DE": 1}, [["DE"]], ["DE", 1]):
        assert not pattern.search(json.dumps(bad)), bad


def test_territory_codes_match_the_licence_engines_list():
    from pipeline.licensing.territories import iso_codes

    assert iso_3166_alpha2_from_tzdata() == set(iso_codes())


def test_good_records_pass():
    records = [{**copy.deepcopy(v), "track_id": f"G{i}"} for i, v in enumerate(GOOD_VARIANTS)]
    report = validate_records(records)
    assert report.failures == {}
    assert report.success is True
    assert report.evaluated == len(GOOD_VARIANTS)


@pytest.mark.parametrize("case, column", [(case, column) for case, _, column in BAD])
def test_each_bad_field_is_flagged_on_its_own_index(mixed, case, column):
    report, index_of, _, _ = mixed
    names = report.failures.get(index_of[case], [])
    assert any(mentions(name, column) for name in names), names


def test_only_the_bad_records_are_flagged(mixed):
    report, index_of, duplicates, _ = mixed
    assert set(report.failures) == set(index_of.values()) | set(duplicates)
    assert report.success is False
    assert report.evaluated == len(build_batch()[0])


def test_from_after_until_names_the_pair(mixed):
    report, index_of, _, _ = mixed
    (name,) = report.failures[index_of["from after until"]]
    assert mentions(name, "valid_from") and mentions(name, "valid_until")
    assert "expect_column_pair_values_a_to_be_greater_than_b" in name


def test_duplicate_track_id_flags_every_copy(mixed):
    report, _, duplicates, _ = mixed
    for index in duplicates:
        assert report.failures[index] == [
            "track_id is unique within the delivery (every copy is flagged) "
            "[expect_column_values_to_be_unique(track_id)]"
        ]


def test_result_is_json_serialisable(mixed):
    report = mixed[0]
    again = json.loads(json.dumps(report.result))
    assert again["success"] is False
    assert again["suite_name"] == SUITE_NAME
    suite = json.loads(default_suite_path().read_text())
    assert len(again["results"]) == len(suite["expectations"])


def test_data_docs_have_an_index_naming_the_suite_and_a_validation_page(mixed):
    report, _, _, workdir = mixed
    index = report.docs["index.html"].decode()
    assert SUITE_NAME in index
    pages = [p for p in report.docs if p.startswith(f"validations/{SUITE_NAME}/")]
    assert len(pages) == 1 and pages[0].endswith(".html")
    assert "license_id is a well-formed SPDX id" in report.docs[pages[0]].decode()
    assert list(workdir.iterdir()) == []


def test_empty_batch():
    report = validate_records([])
    assert (report.success, report.evaluated, report.failures) == (True, 0, {})
    assert "index.html" in report.docs


def test_a_rule_that_cannot_run_is_charged_to_every_record(tmp_path):
    suite = {
        "name": "probe",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}}
        ],
    }
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(suite))
    report = validate_records([good_record(), good_record("DL002")], suite_path=path)
    assert report.success is False
    expected = "expect_column_values_to_not_be_null(no_such_column) (could not be evaluated)"
    assert report.failures == {0: [expected], 1: [expected]}


def test_failures_by_record_reads_indices_and_skips_successes():
    result = {
        "results": [
            {
                "success": False,
                "expectation_config": {
                    "type": "expect_column_values_to_match_regex",
                    "kwargs": {"column": "isrc", "regex": "x"},
                    "description": "isrc is an ISRC",
                },
                "result": {"unexpected_index_list": [2, 0]},
                "exception_info": {"raised_exception": False},
            },
            {
                "success": True,
                "expectation_config": {"type": "t", "kwargs": {"column": "title"}},
                "result": {},
                "exception_info": {},
            },
        ]
    }
    name = "isrc is an ISRC [expect_column_values_to_match_regex(isrc)]"
    assert failures_by_record(result, 3) == {2: [name], 0: [name]}
