"""Corpus versions: all-or-nothing, incremental, verifiable, collectable; on both backends."""

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from corpus_demo.delivery import ensure_demo_delivery
from pipeline.audit.verify import verify
from pipeline.config import Settings
from pipeline.provenance import connect
from pipeline.refresh import analyse_batch, dedup, plan, run_refresh, write_shard
from pipeline.shards.gc import collect_garbage
from pipeline.storage import open_store
from pipeline.versions import list_versions
from tests.oracle import expected_counts

SMALL_SHARDS = 1_000_000


@pytest.fixture(params=["local", "gcs"])
def store_env(request, corpus_env, monkeypatch):
    """The same tests against a local folder and against fake-gcs-server."""
    if request.param == "gcs":
        monkeypatch.setenv("CORPUS_STORE", request.getfixturevalue("gcs_uri"))
    return corpus_env


def settings(**kw) -> Settings:
    return Settings.from_env(shard_target_bytes=SMALL_SHARDS, **kw)


def shard_keys(store) -> set[str]:
    return set(store.list("shards/"))


def test_crash_before_commit_leaves_no_version_and_gc_cleans_up(store_env):
    crashed = settings(batch_size=4)
    day = date(2026, 11, 20)
    planned = plan(crashed, "run-crashed", day)
    for batch in planned.batches:
        analyse_batch(crashed, planned.version, batch)
    for job in dedup(crashed, planned.version):
        write_shard(crashed, planned.version, job)
    store = open_store(crashed.store)
    leftovers = shard_keys(store)
    assert leftovers, "the crashed run uploaded shards"
    assert list_versions(crashed) == []
    assert verify(crashed, planned.version)[0].check == "manifest"

    assert collect_garbage(crashed, dry_run=True) == [], "a recent in-flight run is kept"
    result = run_refresh(Settings.from_env(), as_of=day, run_id="run-rerun")
    assert [v["version"] for v in list_versions(crashed)] == [result["version"]]
    assert result["accepted"] == len(expected_counts()[0])
    manifest = json.loads(store.get(f"versions/{result['version']}/manifest.json"))
    referenced = {s["path"] for s in manifest["shards"]}
    garbage = collect_garbage(crashed, dry_run=True, grace_hours=0)
    assert set(garbage) == leftovers - referenced and garbage
    assert shard_keys(store) == leftovers | referenced, "dry run removes nothing"
    collect_garbage(crashed, grace_hours=0)
    assert shard_keys(store) == referenced
    assert verify(crashed, result["version"]) == []


def _revoke(delivery: Path, track_id: str, on: str) -> None:
    manifest = delivery / "manifest.jsonl"
    lines = []
    for line in manifest.read_text().splitlines():
        record = json.loads(line)
        if record["track_id"] == track_id:
            record["license"]["revoked"] = {"date": on, "reason": "artist request"}
        lines.append(json.dumps(record))
    manifest.write_text("\n".join(lines) + "\n")


def test_revocation_rewrites_only_the_affected_shard(store_env):
    first = run_refresh(settings(), as_of=date(2026, 11, 20), run_id="run-1")
    store = open_store(settings().store)
    v1_bytes = store.get(f"versions/{first['version']}/manifest.json")
    v1 = json.loads(v1_bytes)
    assert len(v1["shards"]) >= 3
    delivery = ensure_demo_delivery(settings().home / "demo").parent / "deliveries/demo-label"
    _revoke(delivery, "DL005", "2026-11-21")

    second = run_refresh(settings(), as_of=date(2026, 11, 22), run_id="run-2")
    v2 = json.loads(store.get(f"versions/{second['version']}/manifest.json"))
    assert v2["parent"] == first["version"]
    old, new = {s["path"] for s in v1["shards"]}, {s["path"] for s in v2["shards"]}
    assert len(old - new) == 1, "exactly one shard replaced"
    assert len(new - old) <= 1
    assert v2["changes"]["reused_shards"] == len(v1["shards"]) - 1
    assert v2["counts"]["accepted"] == v1["counts"]["accepted"] - 1
    assert v2["counts"]["rejected"]["REVOKED"] == 2
    assert store.get(f"versions/{first['version']}/manifest.json") == v1_bytes
    assert verify(settings(), first["version"]) == []
    assert verify(settings(), second["version"]) == []


def test_verify_reports_tampering(corpus_env):
    result = run_refresh(settings(), as_of=date(2026, 11, 20), run_id="run-t")
    store_root = corpus_env / "store"
    manifest = json.loads((store_root / f"versions/{result['version']}/manifest.json").read_text())
    victim = store_root / manifest["shards"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    from pymongo import MongoClient

    db = MongoClient(os.environ["CORPUS_MONGO_URI"]).get_default_database()
    db.decisions.update_one(
        {"version": result["version"], "item_key": "demo-label:DL001"},
        {"$set": {"license.valid_until": "2026-01-01"}},
    )
    violations = verify(settings(), result["version"])
    checks = {(v.check, v.subject) for v in violations}
    assert ("shards", manifest["shards"][0]["path"]) in checks
    assert ("licences", "demo-label:DL001") in checks
    run = subprocess.run(
        [str(Path(sys.executable).with_name("corpus")), "verify"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert run.returncode == 1
    assert "FAIL" in run.stdout and "EXPIRED" in run.stdout


def test_training_code_loads_a_version_with_datasets(corpus_env, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(corpus_env / "hf"))
    import datasets
    import pyarrow.dataset as ds

    result = run_refresh(settings(), as_of=date(2026, 11, 20), run_id="run-d")
    root = corpus_env / "store"
    manifest = json.loads((root / f"versions/{result['version']}/manifest.json").read_text())
    files = [str(root / s["path"]) for s in manifest["shards"]]
    assert ds.dataset(files, format="parquet").count_rows() == result["accepted"]
    corpus = datasets.load_dataset("parquet", data_files=files, split="train")
    corpus = corpus.cast_column("audio", datasets.Audio())
    assert len(corpus) == result["accepted"]
    for row in corpus:
        audio = row["audio"]
        assert audio["sampling_rate"] == 44100
        assert abs(len(audio["array"]) / 44100 - row["duration_s"]) < 0.1, row["item_key"]
    splits = {}
    for row in corpus:
        splits.setdefault(row["artists"][0], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values()), "no artist crosses splits"


def test_unchanged_delivery_does_no_audio_work(corpus_env, mongo_uri):
    from pymongo import MongoClient

    first = run_refresh(settings(), as_of=date(2026, 11, 20), run_id="same-1")
    probe = (
        "import json, sys\n"
        "from datetime import date\n"
        "from pipeline.config import Settings\n"
        "from pipeline.refresh import run_refresh\n"
        f"settings = Settings.from_env(shard_target_bytes={SMALL_SHARDS})\n"
        "import pipeline.catalogs.csv_manifest as csv, pipeline.catalogs.manifest as manifest\n"
        "def unread(*args, **kwargs):\n"
        "    raise AssertionError('an unchanged manifest or CSV file is not read again')\n"
        "csv.read = manifest.read = unread\n"
        "result = run_refresh(settings, as_of=date(2026, 11, 21), run_id='same-2')\n"
        "print(json.dumps([result, 'great_expectations' in sys.modules], default=str))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ.copy()
    )
    assert run.returncode == 0, run.stderr[-3000:]
    second, imported_gx = json.loads(run.stdout.strip().splitlines()[-1])
    assert not imported_gx, "an unchanged delivery is not validated again"
    db = MongoClient(mongo_uri).get_default_database()
    meta = db.versions.find_one({"_id": second["version"]})
    first_meta = db.versions.find_one({"_id": first["version"]})
    for partner, report in meta["validation"].items():
        assert report == {**first_meta["validation"][partner], "reused_from": first["version"]}
    assert meta["decisions_from"] == first["version"]
    assert db.decisions.count_documents({"version": second["version"]}) == 0, (
        "an unchanged refresh writes no record per item"
    )
    assert meta["licensed"] == 0 and meta["batch_count"] == 0
    assert meta["carried"] == first["accepted"]
    assert db.steps.count_documents({"version": second["version"], "kind": "analyse"}) == 0
    assert second["changes"]["written_shards"] == 0
    assert second["accepted"] == first["accepted"]
    assert second["rejected"] == first["rejected"]
    prov = connect(settings(), write=False)
    try:
        shared = {d["item_key"]: d for d in prov.decisions(second["version"])}
        own = {d["item_key"]: d for d in prov.decisions(first["version"])}
        assert shared.keys() == own.keys()
        assert all(d["version"] == second["version"] for d in shared.values())
        assert {k: (d["status"], d["reasons"]) for k, d in shared.items()} == {
            k: (d["status"], d["reasons"]) for k, d in own.items()
        }
        csv_item = shared["demo-csv:CSV-01"]
        assert csv_item["status"] == "accepted" and csv_item["stage"] == "carried"
        assert prov.versions_holding(["demo-csv:CSV-01"], besides="") == sorted(
            [first["version"], second["version"]]
        )
    finally:
        prov.close()
    assert verify(settings(), second["version"]) == []
    traced = subprocess.run(
        [str(Path(sys.executable).with_name("corpus")), "trace", "demo-csv:CSV-01", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    (history,) = json.loads(traced.stdout)
    assert [v["version"] for v in history["in_versions"]] == [first["version"], second["version"]]

    listed = subprocess.run(
        [str(Path(sys.executable).with_name("corpus")), "deliveries", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    rows = json.loads(listed.stdout)
    partners = {"demo-label", "demo-ddex", "demo-csv", "demo-feed"}
    assert [r["version"] for r in rows] == [first["version"]] * 4 + [second["version"]] * 4
    assert {r["partner"] for r in rows[4:]} == partners
    assert all(r["same_as"] == first["version"] for r in rows[4:])
    assert all(r["same_as"] is None for r in rows[:4])


def test_decisions_are_shared_only_while_nothing_they_rest_on_changed(corpus_env, mongo_uri):
    """A date past the point where a licence starts or runs out, or one changed delivery
    among unchanged ones, makes the refresh judge every record again."""
    from pymongo import MongoClient

    first = run_refresh(settings(), as_of=date(2026, 11, 20), run_id="share-1")
    db = MongoClient(mongo_uri).get_default_database()
    holds = db.versions.find_one({"_id": first["version"]})["holds_until"]
    assert holds is not None, "the demo has licences that start or end"
    later = date.fromisoformat(holds) + timedelta(days=1)
    moved = plan(settings(), "share-2", later)
    meta = db.versions.find_one({"_id": moved.version})
    assert "decisions_from" not in meta
    assert db.decisions.count_documents({"version": moved.version}) == meta["items"]

    demo = ensure_demo_delivery(settings().home / "demo").parent / "deliveries"
    catalog = demo / "demo-csv" / "catalog.csv"
    catalog.write_text(
        "".join(
            line for line in catalog.read_text().splitlines(keepends=True) if "CSV-02" not in line
        )
    )
    changed = plan(settings(), "share-3", date(2026, 11, 21))
    meta = db.versions.find_one({"_id": changed.version})
    assert "decisions_from" not in meta
    partners = {d["partner"] for d in db.decisions.find({"version": changed.version})}
    assert partners == {"demo-label", "demo-ddex", "demo-csv", "demo-feed"}
    assert db.decisions.count_documents({"version": changed.version}) == meta["items"]


def test_items_gone_from_a_delivery_follow_the_partner_setting(corpus_env, mongo_uri):
    from pymongo import MongoClient

    first = run_refresh(settings(), as_of=date(2026, 11, 20), run_id="gone-1")
    demo = ensure_demo_delivery(settings().home / "demo").parent / "deliveries"
    manifest = demo / "demo-label" / "manifest.jsonl"
    manifest.write_text(
        "".join(
            line for line in manifest.read_text().splitlines(keepends=True) if '"DL003"' not in line
        )
    )
    catalog = demo / "demo-csv" / "catalog.csv"
    catalog.write_text(
        "".join(
            line for line in catalog.read_text().splitlines(keepends=True) if "CSV-01" not in line
        )
    )
    second = run_refresh(settings(), as_of=date(2026, 11, 21), run_id="gone-2")
    db = MongoClient(mongo_uri).get_default_database()
    validation = db.versions.find_one({"_id": second["version"]})["validation"]
    assert "reused_from" not in validation["demo-label"]
    assert "reused_from" not in validation["demo-csv"]
    assert validation["demo-ddex"]["reused_from"] == first["version"]
    version = {"version": second["version"]}
    assert db.decisions.find_one({**version, "item_key": "demo-label:DL003"}) is None
    kept = db.decisions.find_one({**version, "item_key": "demo-csv:CSV-01"})
    assert kept["status"] == "accepted" and kept["kept_undelivered"]
    assert second["accepted"] == first["accepted"] - 1
    assert verify(settings(), second["version"]) == []


def test_dedup_rerun_after_a_crash_keeps_reused_shards(corpus_env, mongo_uri):
    from pymongo import MongoClient

    run_refresh(settings(), as_of=date(2026, 11, 20), run_id="re-1")
    second = plan(settings(), "re-2", date(2026, 11, 21))
    first_layout = dedup(settings(), second.version)
    db = MongoClient(mongo_uri).get_default_database()
    reused = db.versions.find_one({"_id": second.version})["reused_shards"]
    assert reused
    db.versions.update_one({"_id": second.version}, {"$set": {"jobs_planned": False}})
    assert dedup(settings(), second.version) == first_layout
    assert db.versions.find_one({"_id": second.version})["reused_shards"] == reused


def test_a_delivery_read_in_chunks_is_judged_as_one_read_whole(corpus_env, mongo_uri, monkeypatch):
    """Chunks bound the records held in memory; the decisions, the failed expectations of
    each record and the counts stay those of a whole read, and the validation is published
    in parts."""
    from pymongo import MongoClient

    import pipeline.catalogs.delivery as delivery

    whole = plan(settings(), "whole-read", date(2026, 11, 20))
    monkeypatch.setattr(delivery, "CHUNK", 4)
    chunked = plan(settings(), "chunked-read", date(2026, 11, 20))
    db = MongoClient(mongo_uri).get_default_database()

    def judged(version: str) -> dict:
        found = db.decisions.find({"version": version})
        return {d["item_key"]: (d["status"], d["reasons"], d["messages"]) for d in found}

    assert judged(chunked.version) == judged(whole.version)
    assert chunked.licensed == whole.licensed
    report = db.versions.find_one({"_id": chunked.version})["validation"]["demo-label"]
    first = db.versions.find_one({"_id": whole.version})["validation"]["demo-label"]
    assert report["parts"] > 1 and "parts" not in first
    assert (report["evaluated"], report["failed_records"]) == (
        first["evaluated"],
        first["failed_records"],
    )
    store = open_store(settings().store)
    prefix = f"runs/{chunked.version}/validation/demo-label"
    assert store.exists(f"{prefix}/part-0001/result.json")
    assert json.loads(store.get(f"{prefix}/result.json"))["parts"][0]["evaluated"] == 4
