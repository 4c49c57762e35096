"""Revoke, then take down: the new version lacks the item, older ones are marked withdrawn."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from pymongo import MongoClient

from pipeline.audit.verify import verify
from pipeline.config import Settings
from pipeline.refresh import run_refresh, run_takedown

CORPUS = str(Path(sys.executable).with_name("corpus"))


def corpus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CORPUS, *args],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=600,
    )


def test_revoke_takedown_and_the_story_in_the_event_log(corpus_env, mongo_uri):
    settings = Settings.from_env(shard_target_bytes=1_000_000)
    first = run_refresh(settings, as_of=date(2026, 11, 20), run_id="weekly-1")
    nothing = run_takedown(settings, as_of=date(2026, 11, 20), run_id="daily-0")
    assert nothing["version"] == first["version"] and nothing["withdrawn"] == []

    said = corpus(
        "revoke",
        "--partner",
        "demo-label",
        "--track",
        "DL005",
        "--reason",
        "artist request",
        "--effective",
        "2026-11-21",
        "--actor",
        "rm@demo-label",
    )
    assert "recorded" in said.stdout
    assert (
        "already recorded"
        in corpus(
            "revoke",
            "--partner",
            "demo-label",
            "--track",
            "DL005",
            "--reason",
            "again",
            "--effective",
            "2026-11-21",
            "--actor",
            "rm@demo-label",
        ).stdout
    )
    early = run_takedown(settings, as_of=date(2026, 11, 20), run_id="daily-1", horizon_days=0)
    assert early["version"] == first["version"], "not yet effective, and no horizon"

    taken = json.loads(corpus("takedown", "--as-of", "2026-11-21", "--json").stdout)
    assert taken["parent"] == first["version"]
    assert taken["accepted"] == first["accepted"] - 1
    assert taken["withdrawn"] == [first["version"]]
    assert taken["changes"]["reused_shards"] >= 1 and taken["changes"]["written_shards"] <= 1
    db = MongoClient(mongo_uri).get_default_database()
    gone = db.decisions.find_one({"version": taken["version"], "track_id": "DL005"})
    assert gone["status"] == "rejected" and gone["reasons"] == ["REVOKED"]
    assert "artist request (revoked by rm@demo-label)" in gone["messages"][0]
    old = db.versions.find_one({"_id": first["version"]})
    assert old["withdrawn"] and old["withdrawn_items"] == ["demo-label:DL005"]
    assert old["withdrawn_by"] == taken["version"]
    assert verify(settings, first["version"]) == []
    assert verify(settings, taken["version"]) == []

    history = json.loads(corpus("trace", "demo-label:DL005", "--json").stdout)[0]
    assert history["in_versions"] == [{"version": first["version"], "withdrawn": True}]
    assert history["current"]["version"] == taken["version"]
    assert history["current"]["status"] == "rejected"
    assert history["current"]["reasons"] == ["REVOKED"] and history["current"]["current"]
    [revocation] = history["revocations"]
    assert (revocation["actor"], revocation["reason"]) == ("rm@demo-label", "artist request")
    assert [e["kind"] for e in history["events"]] == ["revoked", "takedown-started"]
    assert history["events"][0]["actor"] == "rm@demo-label"
    told = corpus("trace", "demo-label:DL005").stdout
    assert "revocations" in told and "artist request" in told
    assert f"{first['version']} (withdrawn)" in told
    assert db.items.count_documents({"current": True, "status": "accepted"}) == taken["accepted"]
    listed = {v["version"]: v for v in json.loads(corpus("versions", "--json").stdout)}
    assert listed[first["version"]]["withdrawn_by"] == taken["version"]
    assert listed[taken["version"]]["withdrawn_by"] is None
    report_dir = corpus_env / "audit-first"
    corpus("audit", "--version", first["version"], "--out", str(report_dir))
    report = (report_dir / "report.html").read_text()
    assert "Withdrawn." in report and "demo-label:DL005" in report.split("Do not train")[0]
    corpus("audit", "--version", taken["version"], "--out", str(corpus_env / "audit-taken"))
    assert "Withdrawn." not in (corpus_env / "audit-taken" / "report.html").read_text()

    story = [e["kind"] for e in db.events.find().sort([("at", 1), ("_id", 1)])]
    assert story == [
        "started",
        "committed",
        "takedown-nothing-to-do",
        "revoked",
        "takedown-nothing-to-do",
        "takedown-started",
        "committed",
        "version-withdrawn",
    ]

    def revoke_while_building(_plan) -> None:
        corpus(
            "revoke",
            "--partner",
            "demo-label",
            "--track",
            "DL007",
            "--reason",
            "late request",
            "--effective",
            "2026-11-27",
        )

    later = run_refresh(
        settings, as_of=date(2026, 11, 27), run_id="weekly-2", on_plan=revoke_while_building
    )
    assert later["accepted"] == taken["accepted"] - 1
    again = db.decisions.find_one({"version": later["version"], "track_id": "DL005"})
    assert again["reasons"] == ["REVOKED"]
    late = db.decisions.find_one({"version": later["version"], "track_id": "DL007"})
    assert late["status"] == "rejected" and late["reasons"] == ["REVOKED"]
    assert "revoked while the version was built" in late["messages"][0]
    assert db.versions.find_one({"_id": taken["version"]})["withdrawn_by"] == later["version"]
    assert db.versions.find_one({"_id": first["version"]})["withdrawn_by"] == taken["version"]
    assert verify(settings, later["version"]) == []

    horizon = run_takedown(settings, as_of=date(2026, 11, 28), run_id="daily-2", horizon_days=3000)
    lapsing = db.decisions.find({"version": horizon["version"], "stage": "takedown"})
    assert {d["track_id"] for d in lapsing} == {"DL010", "DL011", "DF02"}
    assert later["version"] in horizon["withdrawn"]

    corpus(
        "revoke",
        "--partner",
        "demo-label",
        "--track",
        "DL006",
        "--reason",
        "contract ends",
        "--effective",
        "2026-12-01",
        "--actor",
        "rm@demo-label",
    )
    soon = run_takedown(settings, as_of=date(2026, 11, 29), run_id="daily-3", horizon_days=7)
    ending = db.decisions.find_one({"version": soon["version"], "track_id": "DL006"})
    assert ending["stage"] == "takedown" and ending["reasons"] == ["REVOKED"]
    assert "revoked from 2026-12-01" in ending["messages"][0]
