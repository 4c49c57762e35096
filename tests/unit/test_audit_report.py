"""The rights-manager audit: tables, exports, HTML page, attribution list and summary.

One synthetic version of 30 decision records (4 partners, every licence family, 11 reason
codes, a parent with items added, removed, updated) and hostile partner strings.
"""

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest

from pipeline.audit.attribution import attribution_csv, attribution_markdown
from pipeline.audit.report import write_report
from pipeline.audit.summary import summary_markdown, training_data_summary
from pipeline.audit.tables import COLUMNS, all_tables
from pipeline.reasons import MEANINGS, Reason

AS_OF = "2026-06-15"
PARTNERS = ["north-label", "south-archive", "east-coop", "west-empty"]
HYPERLINK = '=HYPERLINK("https://evil.example/x","click me")'
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=https://evil.example/p.png onerror=alert(1)>"
EVIDENCE = "https://south.example/contracts/a7.pdf"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def lic(lid, territories=("Worldwide",), excluded=(), until=None, **extra):
    return {
        "id": lid,
        "uses": ["ai_training", "commercial"],
        "territories": list(territories),
        "excluded_territories": list(excluded),
        "valid_from": extra.pop("valid_from", "2025-01-01"),
        "valid_until": until,
        "attribution": extra.pop("attribution", None),
        "evidence": extra.pop("evidence", None),
        "tdm_opt_out": extra.pop("tdm_opt_out", False),
        "revoked": extra.pop("revoked", None),
    }


def rec(key, licence, status="accepted", reasons=(), title=None, artists=("Some Artist",), **kw):
    partner = key.split(":")[0]
    record = {
        "item_key": key,
        "partner": partner,
        "track_id": key.split(":")[1],
        "isrc": None,
        "title": title if title is not None else f"Song {key}",
        "artists": list(artists),
        "license": licence,
        "status": status,
        "stage": kw.pop("stage", "shard" if status == "accepted" else "licence"),
        "reasons": list(reasons),
        "messages": [f"{r}: detail of {key}" for r in reasons],
        "shard": "shards/abc.parquet" if status == "accepted" else None,
        "audio_sha256": f"sha-{key}",
        "descriptors": {"duration_s": kw.pop("duration", None)} if status == "accepted" else None,
        "as_of": AS_OF,
        "policy_hash": "p0",
    }
    record.update(kw)
    return record


def R(key, licence, *reasons, **kw):
    return rec(key, licence, "rejected", reasons, **kw)


REVOCATION = {"date": "2026-06-01", "reason": "artist request (revoked by rights@north)"}
ACCEPTED = [
    rec(
        "north-label:n1",
        lic("CC-BY-4.0", until="2026-07-10", attribution="Music by N1"),
        title=HYPERLINK,
        duration=180,
    ),
    rec("north-label:n2", lic("CC-BY-3.0-DE", excluded=["RU"]), duration=240),
    rec("north-label:n3", lic("CC0-1.0"), duration=200),
    rec(
        "north-label:n4",
        lic("LicenseRef-north-label-C1", ["DE", "FR"], until="2027-01-31", attribution="@SUM(1)"),
        duration=300,
    ),
    rec("north-label:n5", lic("LicenseRef-PDM"), duration=150),
    rec(
        "north-label:n6",
        lic("CC-BY-4.0", until="2026-09-01"),
        artists=["-minus artist"],
        duration=210,
    ),
    rec("south-archive:s1", lic("CC0-1.0"), title=SCRIPT, duration=100),
    rec(
        "south-archive:s2",
        lic("CC-BY-2.0", excluded=["US", "CN"], until="2026-12-31"),
        duration=260,
    ),
    rec(
        "south-archive:s3",
        lic(
            "LicenseRef-south-archive-A7",
            ["FR"],
            until="2026-08-01",
            evidence={"uri": EVIDENCE, "sha256": None},
        ),
        duration=320,
    ),
    rec("south-archive:s4", lic("CC-BY-4.0", attribution=IMG), duration=190),
    rec("south-archive:s5", lic("CC0-1.0"), duration=170),
    rec("east-coop:e1", lic("CC-BY-4.0", until="2026-09-30"), duration=230),
    rec("east-coop:e2", lic("LicenseRef-east-coop-2026", until="2028-12-31"), duration=280),
    rec("east-coop:e3", lic("CC0-1.0"), title="+cmd|' /C calc'!A0", duration=140),
    rec("east-coop:e4", lic("CC-BY-1.0"), duration=220),
    rec("east-coop:e5", lic("CC0-1.0"), title="\tTabbed", duration=160),
    rec("east-coop:e6", lic("LicenseRef-east-coop-2026", ["DE"], until="2027-01-15"), duration=250),
]
REFUSED = [
    R("north-label:nc", lic("CC-BY-NC-4.0"), "USE_NOT_GRANTED"),
    R("north-label:optout", lic("CC-BY-4.0", tdm_opt_out=True), "TDM_OPT_OUT"),
    R("north-label:revoked", lic("LicenseRef-north-label-C1", revoked=REVOCATION), "REVOKED"),
    R(
        "north-label:both",
        lic("CC-BY-4.0", tdm_opt_out=True, revoked=REVOCATION),
        "REVOKED",
        "TDM_OPT_OUT",
        "REVOKED",  # named twice, still one refused item
    ),
    R(
        "south-archive:old",
        lic("CC-BY-4.0", ["DE"], until="2025-01-01"),
        "EXPIRED",
        "TERRITORY_EXCLUDED",
    ),
    R("south-archive:weird", lic("<b>weird</b>"), "LICENSE_UNKNOWN", title="@SUM(1)+2"),
    R("south-archive:broken", None, "METADATA_INVALID", title="", artists=(), stage="catalog"),
    R("south-archive:noise", lic("CC0-1.0"), "AUDIO_UNDECODABLE", stage="audio"),
    R("east-coop:dup", lic("CC0-1.0"), "DUPLICATE", stage="dedup"),
    R("east-coop:future", lic("CC-BY-4.0", valid_from="2027-01-01"), "NOT_YET_VALID"),
    R("east-coop:sa", lic("CC-BY-SA-4.0"), "USE_NOT_GRANTED"),
    R("east-coop:short", lic("CC0-1.0"), "AUDIO_TOO_SHORT", stage="audio"),
    R("east-coop:optout", lic("CC-BY-4.0", tdm_opt_out=True), "TDM_OPT_OUT"),
]
DECISIONS = ACCEPTED + REFUSED
BY_KEY = {d["item_key"]: d for d in DECISIONS}


def _parent_decisions():
    carried = [
        "north-label:n1",
        "north-label:n2",
        "north-label:n3",
        "north-label:n4",
        "north-label:n5",
        "south-archive:s1",
        "south-archive:s3",
        "south-archive:s4",
        "east-coop:e1",
        "east-coop:e2",
        "east-coop:e3",
    ]
    parent = [dict(BY_KEY[k]) for k in carried]
    parent.append(
        {
            **BY_KEY["south-archive:s2"],
            "license": lic("CC-BY-2.0", excluded=["US", "CN"], until="2026-10-31"),
        }
    )
    for key in ("north-label:revoked", "south-archive:noise", "east-coop:dup"):
        parent.append(
            {
                **BY_KEY[key],
                "status": "accepted",
                "reasons": [],
                "messages": [],
                "license": lic(BY_KEY[key]["license"]["id"]),
            }
        )
    parent.append(rec("north-label:gone", lic("CC0-1.0"), title="Gone Song", duration=90))
    parent.append(
        {
            **BY_KEY["east-coop:e4"],
            "status": "rejected",
            "reasons": ["NOT_YET_VALID"],
            "messages": ["NOT_YET_VALID: x"],
        }
    )
    parent.append(dict(BY_KEY["north-label:optout"]))
    return parent


PARENT_DECISIONS = _parent_decisions()
REASON_COUNTS = {
    "TDM_OPT_OUT": 3,
    "USE_NOT_GRANTED": 2,
    "REVOKED": 2,
    "EXPIRED": 1,
    "TERRITORY_EXCLUDED": 1,
    "LICENSE_UNKNOWN": 1,
    "METADATA_INVALID": 1,
    "AUDIO_UNDECODABLE": 1,
    "DUPLICATE": 1,
    "NOT_YET_VALID": 1,
    "AUDIO_TOO_SHORT": 1,
}
CC_DEEDS = {
    "https://creativecommons.org/licenses/by/4.0/",
    "https://creativecommons.org/licenses/by/3.0/de/",
    "https://creativecommons.org/licenses/by/2.0/",
    "https://creativecommons.org/licenses/by/1.0/",
    "https://creativecommons.org/publicdomain/zero/1.0/",
    "https://creativecommons.org/publicdomain/mark/1.0/",
}


def _partner_strings():
    found = []
    for d in DECISIONS:
        licence = d["license"] or {}
        found += [
            d["title"],
            licence.get("attribution"),
            (licence.get("evidence") or {}).get("uri"),
        ]
    return [s for s in found if s]


PARTNER_STRINGS = _partner_strings()


def manifest(parent="20260601-parent"):
    return {
        "format": 1,
        "version": "20260615-abcdef0123",
        "run_id": "scheduled__2026-06-15",
        "as_of": AS_OF,
        "created_at": "2026-06-15T02:00:00+00:00",
        "parent": parent,
        "policy_hash": "p0" * 32,
        "policy": {
            "name": "strict-default",
            "purpose": "commercial",
            "required_uses": ["ai_training"],
            "territories": ["Worldwide"],
        },
        "descriptor_set": "essentia-1",
        "partners": PARTNERS,
        "counts": {"accepted": 17, "rejected": REASON_COUNTS, "rejected_items": 13, "rows": 17},
        "changes": {"reused_shards": 2, "written_shards": 1, "dropped_shards": 1, "duplicates": 1},
        "validation": {},
        "shards": [
            {
                "path": "shards/abc.parquet",
                "rows": 17,
                "bytes": 123456,
                "sha256": "ab" * 32,
                "crc32c": "AAAAAA==",
            },
        ],
    }


PARENT_MANIFEST = {**manifest(parent=None), "version": "20260601-parent"}


@pytest.fixture(scope="module")
def tables():
    return all_tables(manifest(), DECISIONS, PARENT_MANIFEST, PARENT_DECISIONS)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    directory = tmp_path_factory.mktemp("audit")
    files = write_report(directory, manifest(), DECISIONS, PARENT_MANIFEST, PARENT_DECISIONS)
    return directory, files


@pytest.fixture(scope="module")
def html(out):
    return out[1]["report.html"].read_text(encoding="utf-8")


def _hours(keys):
    return round(sum(BY_KEY[k]["descriptors"]["duration_s"] for k in keys) / 3600, 3)


def _keys(prefix, records=ACCEPTED):
    return [d["item_key"] for d in records if d["partner"] == prefix]


def test_composition_by_partner(tables):
    rows = {r["partner"]: r for r in tables["by_partner"]}
    assert list(rows) == PARTNERS
    assert {p: (r["accepted"], r["refused"], r["items"]) for p, r in rows.items()} == {
        "north-label": (6, 4, 10),
        "south-archive": (5, 4, 9),
        "east-coop": (6, 5, 11),
        "west-empty": (0, 0, 0),
    }
    for partner in PARTNERS[:3]:
        assert rows[partner]["hours"] == _hours(_keys(partner))


def test_composition_by_licence(tables):
    families = {r["family"]: (r["accepted"], r["refused"]) for r in tables["by_licence_family"]}
    assert families == {
        "public-domain": (6, 3),
        "cc": (7, 7),
        "contract": (4, 1),
        "unknown": (0, 1),
        "none": (0, 1),
    }
    licences = {r["licence_id"]: (r["accepted"], r["refused"]) for r in tables["by_licence"]}
    assert licences["CC-BY-4.0"] == (4, 5)
    assert licences["LicenseRef-east-coop-2026"] == (2, 0)
    assert licences["<b>weird</b>"] == (0, 1)
    assert sum(a for a, _ in licences.values()) == len(ACCEPTED)
    assert sum(r for _, r in licences.values()) == len(REFUSED)


def test_composition_by_territory(tables):
    assert tables["by_territory"] == [
        {"territory": "Worldwide", "granted": 14, "excluded": 0},
        {"territory": "CN", "granted": 0, "excluded": 1},
        {"territory": "DE", "granted": 2, "excluded": 0},
        {"territory": "FR", "granted": 2, "excluded": 0},
        {"territory": "RU", "granted": 0, "excluded": 1},
        {"territory": "US", "granted": 0, "excluded": 1},
    ]


def test_expiry_timeline_and_expiring_soon(tables):
    assert [(r["month"], r["items"]) for r in tables["expiry_by_month"]] == [
        ("2026-07", 1),
        ("2026-08", 1),
        ("2026-09", 2),
        ("2026-12", 1),
        ("2027-01", 2),
        ("2028-12", 1),
        ("open-ended", 9),
    ]
    soon = [(r["item_key"], r["days_left"]) for r in tables["expiring_soon"]]
    assert soon == [("north-label:n1", 25), ("south-archive:s3", 47), ("north-label:n6", 78)]
    shorter = all_tables(manifest(), DECISIONS, expiring_days=30)["expiring_soon"]
    assert [r["item_key"] for r in shorter] == ["north-label:n1"]


def test_refusals_by_reason_lists_every_reason_with_meaning(tables):
    rows = tables["refusals_by_reason"]
    assert {r["reason"]: r["items"] for r in rows} == REASON_COUNTS
    assert len(rows) == len(REASON_COUNTS)
    for row in rows:
        assert row["meaning"] == MEANINGS[Reason(row["reason"])]
    assert rows[0]["reason"] == "TDM_OPT_OUT"
    by_partner = {(r["partner"], r["reason"]): r["items"] for r in tables["refusals_by_partner"]}
    assert by_partner[("north-label", "TDM_OPT_OUT")] == 2
    assert by_partner[("east-coop", "TDM_OPT_OUT")] == 1
    assert sum(by_partner.values()) == sum(REASON_COUNTS.values())


def test_item_lists(tables):
    refused = {r["item_key"]: r for r in tables["refused_items"]}
    assert set(refused) == {d["item_key"] for d in REFUSED}
    assert refused["south-archive:old"]["reasons"] == "EXPIRED; TERRITORY_EXCLUDED"
    assert "EXPIRED: detail of south-archive:old" in refused["south-archive:old"]["messages"]
    assert refused["south-archive:broken"]["licence_id"] == "(none)"
    accepted = {r["item_key"]: r for r in tables["accepted_items"]}
    assert set(accepted) == {d["item_key"] for d in ACCEPTED}
    assert accepted["north-label:n2"]["territories"] == "Worldwide except RU"
    assert accepted["south-archive:s3"]["evidence_uri"] == EVIDENCE
    assert {r["shard"] for r in accepted.values()} == {"shards/abc.parquet"}


def test_changes_since_parent(tables):
    rows = {r["item_key"]: r for r in tables["changes"]}
    by_change = {
        c: {k for k, r in rows.items() if r["change"] == c} for c in ("added", "removed", "updated")
    }
    assert by_change["added"] == {
        "north-label:n6",
        "south-archive:s5",
        "east-coop:e4",
        "east-coop:e5",
        "east-coop:e6",
    }
    assert by_change["removed"] == {
        "north-label:revoked",
        "south-archive:noise",
        "east-coop:dup",
        "north-label:gone",
    }
    assert by_change["updated"] == {"south-archive:s2"}
    assert rows["north-label:revoked"]["reasons"] == "REVOKED"
    assert rows["east-coop:dup"]["reasons"] == "DUPLICATE"
    assert rows["north-label:gone"]["detail"] == "no longer delivered"
    assert rows["east-coop:e4"]["detail"] == "refused in the parent: NOT_YET_VALID"
    summary = {(r["subject"], r["change"]): r["count"] for r in tables["changes_summary"]}
    assert summary == {
        ("items", "added"): 5,
        ("items", "removed"): 4,
        ("items", "updated"): 1,
        ("items", "unchanged"): 11,
        ("shards", "reused"): 2,
        ("shards", "written"): 1,
        ("shards", "dropped"): 1,
        ("items", "duplicates"): 1,
    }


def _csv_rows(text):
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _as_csv_cell(value):
    if value is None:
        return ""
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_START) else text


def test_exports_json_equals_tables_and_csv(out, tables):
    directory, files = out
    for name, rows in tables.items():
        from_json = json.loads(files[f"{name}.json"].read_text(encoding="utf-8"))
        assert from_json == rows, name
        from_csv = _csv_rows(files[f"{name}.csv"].read_text(encoding="utf-8"))
        expected = [{c: _as_csv_cell(r[c]) for c in COLUMNS[name]} for r in from_json]
        assert from_csv == expected, name
        header = next(csv.reader(io.StringIO(files[f"{name}.csv"].read_text())))
        assert header == list(COLUMNS[name])


def test_csv_cells_are_neutralised(out):
    files = out[1]
    titles = {r["item_key"]: r["title"] for r in _csv_rows(files["accepted_items.csv"].read_text())}
    assert titles["north-label:n1"] == "'" + HYPERLINK
    assert titles["east-coop:e3"] == "'+cmd|' /C calc'!A0"
    assert titles["east-coop:e5"] == "'\tTabbed"
    artists = {
        r["item_key"]: r["artists"] for r in _csv_rows(files["accepted_items.csv"].read_text())
    }
    assert artists["north-label:n6"] == "'-minus artist"
    refused = {r["item_key"]: r["title"] for r in _csv_rows(files["refused_items.csv"].read_text())}
    assert refused["south-archive:weird"] == "'@SUM(1)+2"
    attribution = {
        r["item_key"]: r["attribution"] for r in _csv_rows(files["attribution.csv"].read_text())
    }
    assert attribution["north-label:n4"] == "'@SUM(1)"
    for path in files.values():
        if path.suffix == ".csv":
            for row in csv.reader(io.StringIO(path.read_text(), newline="")):
                assert not [c for c in row if c.startswith(FORMULA_START)], path.name


def test_html_escapes_partner_strings(html):
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html.lower()
    assert "&lt;img src=https://evil.example/p.png onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;weird&lt;/b&gt;" in html
    assert "<b>weird" not in html


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.style = [], [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style.append(data)


def test_html_has_one_svg_per_chart_and_loads_nothing(html, out):
    charts = ("partners", "families", "territories", "expiry", "refusals", "changes")
    assert html.count("<svg") == len(charts)
    for name in charts:
        assert re.search(rf'<figure id="c-{name}">\s*<figcaption>[^<]*</figcaption>\s*<svg', html)
    page = _Page()
    page.feed(html)
    assert not {"script", "link", "img", "iframe", "object", "embed", "image"} & set(page.tags)
    for tag, name, value in page.attrs:
        assert not name.startswith("on"), (tag, name)
        assert name not in ("src", "srcset", "action"), (tag, name)
        if name in ("href", "xlink:href"):
            assert value.startswith("#") or value in out[1] or value in CC_DEEDS, value
        assert "url(" not in value or re.fullmatch(r"url\(#[\w-]+\)", value), value
    assert all("url(" not in s and "@import" not in s for s in page.style)
    urls = set(re.findall(r"https?://[^\s\"'<>&)]+", html))
    deeds = {u for u in urls if u in CC_DEEDS}
    assert deeds == CC_DEEDS
    for url in urls - deeds:
        assert any(url in s for s in PARTNER_STRINGS), url
    attribution = html[html.index('<section id="attribution">') :]
    attribution = attribution[: attribution.index("</section>")]
    for deed in CC_DEEDS:
        assert html.count(f'href="{deed}"') == attribution.count(f'href="{deed}"') > 0


def test_first_version_has_no_change_chart(tmp_path):
    files = write_report(tmp_path, manifest(parent=None), DECISIONS)
    page = files["report.html"].read_text()
    assert page.count("<svg") == 5
    assert 'id="c-changes"' not in page
    assert "it has no parent" in page
    assert json.loads(files["changes.json"].read_text()) == []


def test_report_is_reproducible(out, tmp_path, html):
    again = write_report(tmp_path, manifest(), DECISIONS, PARENT_MANIFEST, PARENT_DECISIONS)
    assert again["report.html"].read_text(encoding="utf-8") == html


def test_attribution_lists_cc_by_and_contract_items(out):
    rows = _csv_rows(attribution_csv(DECISIONS))
    required = {r["item_key"] for r in rows if r["required"] == "True"}
    courtesy = {r["item_key"] for r in rows if r["required"] == "False"}
    licences = {d["item_key"]: d["license"]["id"] for d in ACCEPTED}
    assert required == {
        k
        for k, lid in licences.items()
        if lid.startswith(("CC-BY", "LicenseRef-")) and lid != "LicenseRef-PDM"
    }
    assert len(required) == 11
    assert courtesy == {k for k, lid in licences.items() if lid in ("CC0-1.0", "LicenseRef-PDM")}
    by_key = {r["item_key"]: r for r in rows}
    assert by_key["north-label:n1"]["licence_url"] == "https://creativecommons.org/licenses/by/4.0/"
    assert by_key["north-label:n2"]["licence_url"] == (
        "https://creativecommons.org/licenses/by/3.0/de/"
    )
    assert by_key["north-label:n4"]["licence_url"] == ""
    assert by_key["north-label:n1"]["attribution"] == "Music by N1"
    assert by_key["north-label:n2"]["attribution"] == (
        '"Song north-label:n2" by Some Artist, from north-label, licensed under CC BY 3.0 DE'
    )
    assert by_key["north-label:n2"]["attribution_given"] == "False"
    assert attribution_csv(DECISIONS) == out[1]["attribution.csv"].read_bytes().decode()

    text = attribution_markdown(DECISIONS, "v1")
    required_part, courtesy_part = text.split("## Courtesy")
    assert required_part.count("\n- **") == 11
    assert courtesy_part.count("\n- **") == 6
    assert "[CC BY 3.0 DE](https://creativecommons.org/licenses/by/3.0/de/)" in text
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in courtesy_part
    assert "Song east-coop:e2" in required_part


def test_training_data_summary_volumes(out):
    summary = training_data_summary(manifest(), DECISIONS)
    general = summary["general_information"]
    assert general["modality"] == "audio"
    assert general["tracks"] == 17
    assert general["hours"] == _hours([d["item_key"] for d in ACCEPTED])
    assert general["bytes"] == 123456
    partners = {p["partner"]: p for p in summary["data_sources"]["partners"]}
    assert {p: v["tracks"] for p, v in partners.items()} == {
        "north-label": 6,
        "south-archive": 5,
        "east-coop": 6,
        "west-empty": 0,
    }
    assert partners["south-archive"]["licence_families"] == {
        "cc": 2,
        "contract": 1,
        "public-domain": 2,
    }
    opt = summary["data_processing"]["opt_out_handling"]
    assert (opt["refused_tdm_opt_out"], opt["refused_revoked"]) == (3, 2)
    assert (opt["accepted_with_opt_out"], opt["accepted_with_revocation"]) == (0, 0)
    assert summary["data_processing"]["refused_by_reason"] == REASON_COUNTS
    span = summary["time_span"]
    assert span["licence_valid_until_earliest"] == "2026-07-10"
    assert span["licence_valid_until_latest"] == "2028-12-31"
    assert span["licences_without_end_date"] == 9
    assert summary["other_information"]["attribution_required_items"] == 11
    assert json.loads(out[1]["summary.json"].read_text()) == summary

    text = summary_markdown(summary)
    for heading in (
        "General information",
        "List of data sources",
        "Data processing",
        "Time span of the data",
        "Other information",
    ):
        assert f". {heading}\n" in text
    assert "- tracks: 17\n" in text
    assert "refused for TDM_OPT_OUT: 3; refused for REVOKED: 2" in text
    assert text == out[1]["summary.md"].read_text()
