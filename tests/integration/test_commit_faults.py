"""The commit protocol when the store changes under a run: a manifest never names a missing
shard, gc keeps what a running refresh may still commit, a damaged manifest is named, and
versions that never committed are cleaned up without touching one whose commit was lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from corpus_demo.synth import chord_progression, write_audio
from pipeline.config import Settings
from pipeline.provenance import StaleAttempt, connect
from pipeline.refresh import IncompleteVersion, analyse_batch, commit, dedup, plan, write_shard
from pipeline.refresh.commit import CommittedFollowUpFailed
from pipeline.refresh.run import run_refresh
from pipeline.shards.gc import collect_garbage, collect_leftovers
from pipeline.shards.manifest import manifest_key
from pipeline.storage import open_store

CORPUS = str(Path(sys.executable).with_name("corpus"))
DAY = date(2026, 11, 20)


@pytest.fixture
def small(corpus_env, tmp_path, monkeypatch):
    """Three licensed tracks of five seconds in a manifest delivery of their own."""
    delivery = tmp_path / "small"
    (delivery / "audio").mkdir(parents=True)
    lines = []
    for n, (key, bpm) in enumerate([("C", 100), ("A", 120), ("E", 90)]):
        name = f"audio/t{n}.flac"
        write_audio(
            chord_progression(key, "major", bpm, 5.0, seed=n), 44100, delivery / name, "flac"
        )
        licence = {"id": "CC0-1.0", "territories": ["Worldwide"]}
        record = {"track_id": f"T{n}", "title": f"Track {n}", "artists": [f"Artist {n}"]}
        lines.append(json.dumps({**record, "audio": name, "license": licence}))
    (delivery / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    partners = tmp_path / "small-partners.yaml"
    partners.write_text(
        json.dumps({"partners": [{"id": "small", "name": "Small", "location": str(delivery)}]})
    )
    monkeypatch.setenv("CORPUS_PARTNERS", str(partners))
    return Settings.from_env(batch_size=3, shard_target_bytes=200_000)


def built_not_committed(settings: Settings, run_id: str) -> tuple[str, list[dict]]:
    """A run that wrote every shard and stopped before commit."""
    planned = plan(settings, run_id, DAY)
    for batch in planned.batches:
        analyse_batch(settings, planned.version, batch)
    results = [
        write_shard(settings, planned.version, job) for job in dedup(settings, planned.version)
    ]
    return planned.version, [r["shard"] for r in results if r["shard"]]


def corpus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CORPUS, *args], capture_output=True, text=True, env=os.environ, timeout=600
    )


def test_a_shard_removed_before_commit_is_written_again_never_named_missing(small):
    version, shards = built_not_committed(small, "run-gc")
    store = open_store(small.store)
    assert collect_garbage(small) == [], "a version being built keeps its shards"
    removed = collect_garbage(small, grace_hours=0)
    assert sorted(removed) == sorted(s["path"] for s in shards) and len(removed) >= 2

    with pytest.raises(IncompleteVersion) as refused:
        commit(small, version)
    message = str(refused.value)
    assert f"version {version} not committed" in message
    assert f"shard {shards[0]['path']} is missing from the store; its job is reset" in message
    assert not store.exists(manifest_key(version))

    result = run_refresh(small, as_of=DAY, run_id="run-gc")
    assert result["version"] == version and result["accepted"] == 3
    assert all(store.exists(s["path"]) for s in shards)
    assert corpus("verify", "--version", version).returncode == 0


def test_a_shard_damaged_before_commit_is_replaced_never_committed_damaged(small):
    version, shards = built_not_committed(small, "run-damaged-shard")
    damaged = Path(small.store) / shards[0]["path"]
    damaged.chmod(0o644)
    damaged.write_bytes(b"PAR1 not the bytes this name promises")

    with pytest.raises(IncompleteVersion) as refused:
        commit(small, version)
    assert f"shard {shards[0]['path']} holds bytes whose sha256 is" in str(refused.value)
    assert "its job is reset" in str(refused.value)

    result = run_refresh(small, as_of=DAY, run_id="run-damaged-shard")
    assert result["version"] == version and result["accepted"] == 3
    assert corpus("verify", "--version", version).returncode == 0


def test_gc_keeps_an_unrecorded_shard_while_it_is_young(small):
    store = open_store(small.store)
    store.put("shards/" + "0" * 64 + ".parquet", b"uploaded, not yet recorded")
    assert collect_garbage(small) == [], "younger than the grace period by its creation time"
    assert collect_garbage(small, grace_hours=0) == ["shards/" + "0" * 64 + ".parquet"]
    assert store.list("shards/") == []


def test_a_damaged_manifest_is_named_by_version_and_object(small):
    result = run_refresh(small, as_of=DAY, run_id="run-damaged")
    version = result["version"]
    path = Path(small.store) / manifest_key(version)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:100])

    verified = corpus("verify")
    assert verified.returncode == 1
    assert "Traceback" not in verified.stderr
    assert f"FAIL {version}: 1 violation(s)" in verified.stdout
    assert f"version {version}: the manifest {path} (100 bytes) is damaged" in verified.stdout

    listed = corpus("versions")
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    assert f"version {version}: the manifest" in " ".join(listed.stderr.split())


def test_gc_discards_versions_that_never_committed_and_keeps_a_lost_commit(small):
    crashed, _ = built_not_committed(small, "run-crashed")
    store = open_store(small.store)
    assert store.list(f"runs/{crashed}/"), "the crashed run published its validation"
    assert collect_leftovers(small).versions == [], "within the grace period"

    lost = run_refresh(small, as_of=date(2026, 11, 21), run_id="run-lost")["version"]
    prov = connect(small)
    try:
        prov.upsert_version(lost, status="building")  # the commit's last write was lost
    finally:
        prov.close()
    kept_runs = store.list(f"runs/{lost}/")

    dry = collect_leftovers(small, dry_run=True, grace_hours=0)
    assert dry.versions == [crashed]
    assert dry.objects == store.list(f"runs/{crashed}/")
    found = collect_leftovers(small, grace_hours=0)
    assert found.versions == [crashed]
    assert store.list(f"runs/{crashed}/") == []
    assert store.list(f"runs/{lost}/") == kept_runs
    prov = connect(small)
    try:
        assert prov.version(crashed) is None
        assert prov.db.decisions.count_documents({"version": crashed}) == 0
        assert prov.db.steps.count_documents({"version": crashed}) == 0
        assert prov.version(lost)["status"] == "building"
        assert (
            prov.db.events.count_documents({"kind": "version-discarded", "subject": crashed}) == 1
        )
    finally:
        prov.close()

    cleaned = corpus("gc", "--grace-hours", "0")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "discarded version" not in cleaned.stdout, "nothing left to discard"
    assert collect_garbage(small, dry_run=True, grace_hours=0) == []
    assert corpus("verify", "--version", lost).returncode == 0

    later = run_refresh(small, as_of=date(2026, 11, 22), run_id="run-after")
    assert later["parent"] == lost, "the lost commit is finished, not built again"
    prov = connect(small)
    try:
        assert prov.version(lost)["status"] == "committed"
        assert prov.db.steps.count_documents({"version": later["version"], "kind": "analyse"}) == 0
    finally:
        prov.close()


def test_a_revocation_recorded_after_layout_never_lands_in_the_version(small):
    version, _ = built_not_committed(small, "run-revoked")
    revoked = corpus(
        "revoke", "--partner", "small", "--track", "T0", "--reason", "artist request",
        "--actor", "rights@label", "--effective", "2026-11-01",
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr

    with pytest.raises(IncompleteVersion) as refused:
        commit(small, version)
    assert f"version {version} not committed: small:T0 revoked while it was built" in str(
        refused.value
    )
    assert not open_store(small.store).exists(manifest_key(version))

    result = run_refresh(small, as_of=DAY, run_id="run-revoked")
    assert result["version"] == version
    assert result["accepted"] == 2 and result["rejected"] == {"REVOKED": 1}
    prov = connect(small)
    try:
        assert set(prov.accepted_items(version)) == {"small:T1", "small:T2"}
    finally:
        prov.close()
    assert corpus("verify", "--version", version).returncode == 0


def test_a_stale_attempt_never_rewrites_a_committed_version(small, monkeypatch):
    """Attempt A pauses inside `analyse` (a zombie task); attempt B of the same run finishes
    and commits; A resumes, and is refused instead of setting items back to analysed."""
    import pipeline.refresh.analyse as analyse_step

    planned = plan(small, "run-stale", DAY)
    analysed, release = threading.Event(), threading.Event()
    original = analyse_step._analyse_all

    def paused(*args, **kwargs):
        result = original(*args, **kwargs)
        if threading.current_thread().name == "attempt-a":
            analysed.set()
            release.wait(600)
        return result

    monkeypatch.setattr(analyse_step, "_analyse_all", paused)
    outcome: dict = {}

    def attempt_a():
        try:
            outcome["a"] = analyse_batch(small, planned.version, 0)
        except Exception as exc:  # what A ended with is the subject of the test
            outcome["a"] = exc

    thread = threading.Thread(target=attempt_a, name="attempt-a")
    thread.start()
    assert analysed.wait(600), "attempt A reached the pause"
    committed = run_refresh(small, as_of=DAY, run_id="run-stale")
    prov = connect(small)
    try:
        before = {d["item_key"]: d for d in prov.decisions(planned.version)}
    finally:
        prov.close()
    release.set()
    thread.join(600)

    assert isinstance(outcome["a"], StaleAttempt), outcome["a"]
    assert f"version {planned.version} is committed" in str(outcome["a"])
    prov = connect(small)
    try:
        after = {d["item_key"]: d for d in prov.decisions(planned.version)}
    finally:
        prov.close()
    assert after == before and {d["status"] for d in after.values()} == {"accepted"}
    assert committed["accepted"] == 3
    assert corpus("verify", "--version", planned.version).returncode == 0


def test_an_overtaken_attempt_leaves_the_newer_records_alone(small):
    planned = plan(small, "run-fenced", DAY)
    prov = connect(small)
    try:
        older, newer = prov.begin_attempt(planned.version), prov.begin_attempt(planned.version)
        doc = prov.decisions(planned.version)[0]
        prov.upsert_decisions([{**doc, "title": "newer"}], newer)
        with pytest.raises(StaleAttempt, match=f"attempt {older} at version {planned.version}"):
            prov.upsert_decisions([{**doc, "title": "older"}], older)
        stored = prov.decisions_by_keys(planned.version, [doc["item_key"]])[0]
        assert (stored["title"], stored["attempt"]) == ("newer", newer)
    finally:
        prov.close()


def fail(prov, times: int, commands: list[str], **data) -> None:
    """MongoDB's `failCommand` fail point: the next `times` of `commands` fail as `data` says."""
    prov.db.client.admin.command(
        "configureFailPoint",
        "failCommand",
        mode={"times": times},
        data={"failCommands": commands, **data},
    )


def test_transient_mongodb_failures_are_retried_and_others_are_one_line(corpus_env):
    prov = connect(Settings.from_env())
    try:
        fail(prov, 3, ["update"], errorCode=10107)  # NotWritablePrimary, without a retry label
        prov.upsert_version("v-retry", status="building")
        fail(prov, 2, ["update"], closeConnection=True)  # the connection dropped, twice
        prov.upsert_version("v-retry", status="committed")
        assert prov.version("v-retry")["status"] == "committed"

        fail(prov, 1, ["update"], writeConcernError={"code": 64, "errmsg": "replication timed out"})
        with pytest.raises(Exception) as refused:
            prov.upsert_version("v-retry", note="x")
        assert "replication timed out" in str(refused.value)
    finally:
        prov.db.client.admin.command("configureFailPoint", "failCommand", mode="off")
        prov.close()

    env = {**os.environ, "CORPUS_MONGO_RETRY_SECONDS": "2"}
    prov = connect(Settings.from_env())
    try:
        fail(prov, 1000, ["find", "aggregate", "distinct"], errorCode=91)  # ShutdownInProgress
        run = subprocess.run(
            [CORPUS, "versions"], capture_output=True, text=True, env=env, timeout=600
        )
    finally:
        prov.db.client.admin.command("configureFailPoint", "failCommand", mode="off")
        prov.close()
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert " ".join(run.stderr.split()).startswith("error: MongoDB failed (")


def test_a_commit_whose_follow_up_failed_is_reported_committed_and_finished_next_run(small):
    version, _ = built_not_committed(small, "run-follow-up")
    prov = connect(small)
    try:
        fail(prov, 1, ["insert"], errorCode=2)  # the items' first insert, after the manifest
        with pytest.raises(CommittedFollowUpFailed) as failed:
            commit(small, version)
        assert prov.version(version)["follow_up"] == "pending"
    finally:
        prov.db.client.admin.command("configureFailPoint", "failCommand", mode="off")
        prov.close()
    assert f"version {version} is committed (its manifest" in str(failed.value)
    assert "the next refresh or takedown finishes it" in str(failed.value)
    assert open_store(small.store).exists(manifest_key(version))

    later = run_refresh(small, as_of=date(2026, 11, 21), run_id="run-next")
    assert later["parent"] == version
    prov = connect(small)
    try:
        assert prov.version(version)["follow_up"] == "done"
        assert prov.item("small:T0")["in_versions"] == [version, later["version"]]
    finally:
        prov.close()
