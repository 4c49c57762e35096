"""End to end through the `corpus` console script on the demo delivery."""

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pymongo import MongoClient

from corpus_demo.delivery import FEED_TRACKS, TRACKS
from tests.oracle import expected_counts, expected_outcomes

CORPUS = str(Path(sys.executable).with_name("corpus"))


def corpus(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CORPUS, *args],
        capture_output=True,
        text=True,
        check=check,
        env=os.environ.copy(),
        timeout=600,
    )


@pytest.fixture(scope="module")
def expected():
    return expected_outcomes(), *expected_counts()


def test_demo_refresh_end_to_end(corpus_env, mongo_uri, expected, monkeypatch):
    outcomes, accepted, rejected = expected
    monkeypatch.setenv("CORPUS_SHARD_TARGET_BYTES", "1000000")
    run = corpus("refresh", "--json", "--as-of", "2026-11-20", "--batch-size", "5")
    result = json.loads(run.stdout)
    assert set(result) >= {"version", "accepted", "rejected", "shards", "seconds"}
    assert result["accepted"] == len(accepted)
    assert result["rejected"] == rejected
    assert result["shards"] >= 2
    shown = corpus("show").stdout.splitlines()
    for partner, connector in [
        ("demo-label", "manifest"),
        ("demo-ddex", "ddex"),
        ("demo-csv", "csv"),
        ("demo-feed", "http"),
    ]:
        [line] = [line for line in shown if f"partner {partner} ({connector})" in line]
        keys = [k for k in outcomes if k.startswith(f"{partner}:")]
        taken = sum(k in accepted for k in keys)
        assert f"{taken} accepted, {len(keys) - taken} rejected" in line

    store = corpus_env / "store"
    manifest = json.loads((store / "versions" / result["version"] / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-20"
    assert manifest["counts"]["rows"] == len(accepted)
    files = [str(store / s["path"]) for s in manifest["shards"]]
    for shard, path in zip(manifest["shards"], files, strict=True):
        assert os.path.getsize(path) == shard["bytes"]
    table = ds.dataset(files, format="parquet").to_table()
    assert sorted(table.column("item_key").to_pylist()) == sorted(accepted)
    assert table.num_rows == len(accepted)
    intended = {t[0]: t for t in TRACKS + FEED_TRACKS}
    for row in table.filter(ds.field("partner").isin(["demo-label", "demo-feed"])).to_pylist():
        _, _, _, key, scale, bpm, fmt, licence, _ = intended[row["track_id"]]
        assert (row["key"], row["scale"]) == (key, scale), row["track_id"]
        assert abs(row["bpm"] - bpm) < 2, row["track_id"]
        assert row["license_id"] == licence["id"]
        assert row["audio"]["path"].endswith(f".{fmt}")
        assert hashlib.sha256(row["audio"]["bytes"]).hexdigest() == row["audio_sha256"]

    db = MongoClient(mongo_uri).get_default_database()
    decisions = list(db.decisions.find({"version": result["version"]}))
    assert len(decisions) == len(outcomes)
    assert len({d["item_key"] for d in decisions}) == len(outcomes)
    for doc in decisions:
        want = outcomes[doc["item_key"]]
        assert doc["status"] == ("rejected" if want else "accepted"), doc["item_key"]
        assert doc["reasons"] == want, doc["item_key"]
        if not want:
            assert doc["shard"] in {s["path"] for s in manifest["shards"]}
    per_reason = Counter(r for d in decisions for r in d["reasons"])
    assert dict(per_reason) == rejected
    assert db.versions.find_one({"_id": result["version"]})["status"] == "committed"
    assert db.shards.count_documents({}) == result["shards"]
    assert db.events.count_documents({"kind": "committed"}) == 1

    version_doc = db.versions.find_one({"_id": result["version"]})
    report = version_doc["validation"]["demo-label"]
    assert report["evaluated"] == 26 and report["failed_records"] == 1
    page = Path(report["page"])
    assert page.is_file() and "catalog_metadata" in page.read_text()
    assert json.loads(Path(report["result"]).read_text())["success"] is False
    assert manifest["validation"]["demo-label"]["page"] == report["page"]
    malformed = db.decisions.find_one({"version": result["version"], "track_id": "DL021"})
    assert "expect_column_values_to_be_between(artists_count)" in malformed["messages"][0]

    traced = corpus("trace", "demo-label:DL013")
    assert "USE_NOT_GRANTED" in traced.stdout
    by_isrc = json.loads(corpus("trace", "XX-DLB-26-00014", "--json").stdout)
    assert by_isrc[0]["item_key"] == "demo-label:DL014"
    assert by_isrc[0]["decisions"][0]["reasons"] == ["EXPIRED"]
    held = json.loads(corpus("trace", "demo-label:DL001", "--json").stdout)[0]
    [delivery] = held["deliveries"]
    assert (delivery["partner"], delivery["connector"]) == ("demo-label", "manifest")
    assert delivery["records"] == 26 and delivery["source"].endswith("manifest.jsonl:1")
    [shard] = held["shards"]
    row = pq.read_table(store / shard["path"]).slice(shard["row"], 1).to_pylist()[0]
    assert row["item_key"] == "demo-label:DL001"
    assert row["audio_sha256"] == held["audio"]["sha256"] == held["current"]["audio_sha256"]
    assert held["audio"]["descriptor_set"] == manifest["descriptor_set"]
    assert held["in_versions"] == [{"version": result["version"], "withdrawn": False}]
    assert held["licences"][0]["license"]["id"] == held["current"]["license"]["id"]
    told = corpus("trace", "demo-label:DL001").stdout
    assert f"row {shard['row']}" in told and "deliveries" in told and "(manifest)" in told
    partners = {p["_id"]: p for p in db.partners.find()}
    assert (
        partners["demo-csv"]["connector"] == "csv"
        and "mapping" in partners["demo-csv"]["config_json"]
    )
    listed = json.loads(corpus("versions", "--json").stdout)
    assert [v["version"] for v in listed] == [result["version"]]


def test_refresh_steps_are_idempotent(corpus_env, expected):
    from datetime import date

    from pipeline.config import Settings
    from pipeline.refresh import analyse_batch, commit, dedup, plan, write_shard

    settings = Settings.from_env(batch_size=6, shard_target_bytes=1_000_000)
    day = date(2026, 11, 20)
    first = plan(settings, "run-1", day)
    for batch in first.batches:
        analyse_batch(settings, first.version, batch)
    assert plan(settings, "run-1", day) == first
    assert analyse_batch(settings, first.version, 0) == analyse_batch(settings, first.version, 0)
    jobs = dedup(settings, first.version)
    assert dedup(settings, first.version) == jobs and len(jobs) >= 2
    db = MongoClient(os.environ["CORPUS_MONGO_URI"]).get_default_database()
    laid_out = db.versions.find_one({"_id": first.version})
    # a crash after dedup wrote its refusals but before it marked the layout done
    db.versions.update_one({"_id": first.version}, {"$unset": {"jobs_planned": ""}})
    assert dedup(settings, first.version) == jobs
    again = db.versions.find_one({"_id": first.version})
    assert again["duplicates"] == laid_out["duplicates"] == 1
    assert again["reused_shards"] == laid_out["reused_shards"]
    duplicate = db.decisions.find_one({"version": first.version, "item_key": "demo-csv:CSV-02"})
    assert duplicate["reasons"] == ["DUPLICATE"]
    results = [write_shard(settings, first.version, j) for j in jobs]
    shards_before = sorted((corpus_env / "store" / "shards").iterdir())
    assert [write_shard(settings, first.version, j) for j in jobs] == results
    summary = commit(settings, first.version)
    assert commit(settings, first.version) == summary
    assert plan(settings, "run-1", day).committed
    assert sorted((corpus_env / "store" / "shards").iterdir()) == shards_before
    assert summary["accepted"] == len(expected[1])
    assert summary["shards"] == len(jobs)


def test_commit_refuses_unfinished_version(corpus_env):
    from datetime import date

    from pipeline.config import Settings
    from pipeline.refresh import IncompleteVersion, commit, dedup, plan

    settings = Settings.from_env(batch_size=50)
    planned = plan(settings, "run-x", date(2026, 11, 20))
    with pytest.raises(IncompleteVersion, match="not done"):
        commit(settings, planned.version)
    with pytest.raises(IncompleteVersion, match="analysis batches"):
        dedup(settings, planned.version)
    assert not (corpus_env / "store" / "versions").exists()


def test_bad_partners_file_is_a_clear_error(corpus_env, tmp_path):
    bad = tmp_path / "partners.yaml"
    bad.write_text("partners: []\n")
    run = corpus("refresh", "--partners", str(bad), check=False)
    assert run.returncode == 1
    assert "partners.yaml" in run.stderr and "non-empty" in run.stderr


def test_policy_file_changes_what_is_admitted(corpus_env):
    partners = Path(corpus("demo-data").stdout.strip())
    research = partners.parent / "policy-research.yaml"
    run = corpus("refresh", "--json", "--as-of", "2026-11-20", "--policy", str(research))
    result = json.loads(run.stdout)
    accepted, rejected = expected_counts("research")
    strict_accepted, _ = expected_counts("strict")
    assert accepted - strict_accepted == {"demo-label:DL013", "demo-label:DL015"}
    assert result["accepted"] == len(accepted)
    assert result["rejected"] == rejected
    traced = corpus("trace", "demo-label:DL026").stdout
    assert "EXPIRED: valid until 2025-06-30" in traced
    assert "TERRITORY_EXCLUDED: grant does not cover Worldwide" in traced
    assert "policy " in traced


_OPENED: list[str] | None = None


def _record_opens(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | bytes | Path):
        _OPENED.append(os.fsdecode(args[0]))


def test_rejected_items_are_never_read(corpus_env):
    """An audit hook sees every file Python opens during the refresh."""
    global _OPENED
    from datetime import date

    from corpus_demo.delivery import ensure_demo_delivery
    from pipeline.config import Settings
    from pipeline.refresh import run_refresh

    settings = Settings.from_env()
    deliveries = ensure_demo_delivery(settings.home / "demo").parent / "deliveries"
    delivery = deliveries / "demo-label"
    licence_rejected = {
        key.split(":")[1].lower()
        for key, reasons in expected_outcomes().items()
        if key.startswith("demo-label:")
        and reasons
        and not reasons[0].startswith(("AUDIO_", "METADATA_"))
    }
    assert len(licence_rejected) >= 8
    ddex_refused = {
        key.split(":")[1]
        for key, reasons in expected_outcomes().items()
        if key.startswith("demo-ddex:")
        and reasons
        and not reasons[0].startswith(("AUDIO_", "METADATA_"))
    }
    ddex_admitted = {
        key.split(":")[1]
        for key, reasons in expected_outcomes().items()
        if key.startswith("demo-ddex:") and not reasons
    }
    assert len(ddex_refused) == 2 and len(ddex_admitted) == 2
    sys.addaudithook(_record_opens)
    _OPENED = []
    try:
        run_refresh(settings, as_of=date(2026, 11, 20))
        opened = {Path(p).resolve() for p in _OPENED}
    finally:
        _OPENED = None
    audio = {p for p in opened if p.is_relative_to(delivery / "audio")}
    assert {p.stem for p in audio} == {
        key.split(":")[1].lower() for key in expected_counts()[0] if key.startswith("demo-label:")
    } | {"dl019", "dl020"}
    assert not {p.stem for p in audio} & licence_rejected
    # DDEX: the connector carries each recording's MD5 HashSum; only the fetch stage, which
    # runs for licence-admitted recordings, reads (and checks) the audio.
    ddex = deliveries / "demo-ddex"
    ddex_audio = {p.stem for p in opened if p.is_relative_to(ddex) and p.parent.name == "resources"}
    assert ddex_audio == ddex_admitted
    assert not ddex_audio & ddex_refused
