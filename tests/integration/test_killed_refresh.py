"""A refresh killed while it analyses or writes shards (SIGKILL, or SIGTERM as Airflow sends
it) and run again with the same run id commits what an undisturbed run commits: the same
accepted items, the same shards byte for byte, and `corpus verify` passes.

Each case runs the refresh in a process of its own, watches provenance for the step to be
reached, and kills the whole process group (the analysis workers with it) right after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

from corpus_demo.synth import chord_progression, write_audio

pytestmark = pytest.mark.slow

DAY = "2026-11-20"
RUN = (
    "import sys; from datetime import date; from pipeline.config import Settings;"
    "from pipeline.refresh.run import run_refresh;"
    "day, run_id = date.fromisoformat(sys.argv[1]), sys.argv[2];"
    "print(run_refresh(Settings.from_env(), as_of=day, run_id=run_id)['version'])"
)


@pytest.fixture(scope="module")
def delivery(tmp_path_factory) -> Path:
    """Three licensed tracks, analysed in two batches, packed one per shard."""
    root = tmp_path_factory.mktemp("killed") / "delivery"
    (root / "audio").mkdir(parents=True)
    lines = []
    for n, (key, bpm) in enumerate([("C", 100), ("A", 120), ("E", 90)]):
        name = f"audio/k{n}.flac"
        write_audio(chord_progression(key, "minor", bpm, 5.0, seed=n), 44100, root / name, "flac")
        licence = {"id": "CC0-1.0", "territories": ["Worldwide"]}
        record = {"track_id": f"K{n}", "title": f"Killed {n}", "artists": [f"Artist {n}"]}
        lines.append(json.dumps({**record, "audio": name, "license": licence}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    partners = root.parent / "partners.yaml"
    partners.write_text(
        json.dumps({"partners": [{"id": "killed", "name": "Killed", "location": str(root)}]})
    )
    return partners


def environment(home: Path, mongo_uri: str, partners: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPUS_")}
    return env | {
        "CORPUS_HOME": str(home),
        "CORPUS_STORE": str(home / "store"),
        "CORPUS_MONGO_URI": mongo_uri,
        "CORPUS_PARTNERS": str(partners),
        "CORPUS_BATCH_SIZE": "2",
        "CORPUS_SHARD_TARGET_BYTES": "1",
    }


def refresh(env: dict, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, DAY, run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def committed(env: dict, version: str) -> tuple[set[str], set[str]]:
    """(accepted item keys, shard sha256s) of a committed version, from its manifest."""
    store = Path(env["CORPUS_STORE"])
    manifest = json.loads((store / "versions" / version / "manifest.json").read_text())
    client = MongoClient(env["CORPUS_MONGO_URI"])
    try:
        db = client.get_default_database()
        accepted = set(
            db.decisions.distinct("item_key", {"version": version, "status": "accepted"})
        )
    finally:
        client.close()
    return accepted, {shard["sha256"] for shard in manifest["shards"]}


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    return out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def undisturbed(delivery, mongo_server_uri, tmp_path_factory):
    uri = f"{mongo_server_uri}/t_{uuid.uuid4().hex[:12]}?directConnection=true"
    env = environment(tmp_path_factory.mktemp("undisturbed"), uri, delivery)
    version = finished(refresh(env, "undisturbed"))
    return committed(env, version)


def reached(db, version_prefix: str, step: str) -> bool:
    version = db.versions.find_one({"_id": {"$regex": f"^{version_prefix}"}})
    if version is None:
        return False
    if step == "plan":
        return bool(version.get("planned"))
    if step == "analyse":
        return db.steps.count_documents({"version": version["_id"], "kind": "analyse"}) >= 1
    if step == "dedup":
        return bool(version.get("jobs_planned"))
    return db.steps.count_documents({"version": version["_id"], "kind": "write"}) >= 1


@pytest.mark.parametrize(
    ("step", "sig"),
    [
        ("analyse", signal.SIGKILL),
        ("analyse", signal.SIGTERM),
        ("write", signal.SIGKILL),
    ],
    ids=["mid-analyse-KILL", "mid-analyse-TERM", "mid-write-KILL"],
)
def test_a_killed_refresh_run_again_commits_what_an_undisturbed_one_does(
    step, sig, delivery, undisturbed, mongo_uri, tmp_path
):
    env = environment(tmp_path / "home", mongo_uri, delivery)
    client = MongoClient(mongo_uri)
    db = client.get_default_database()
    process = refresh(env, "killed")
    try:
        deadline = time.monotonic() + 600
        while not reached(db, DAY.replace("-", ""), step):
            assert process.poll() is None, (
                f"the refresh ended before {step}: {process.stderr.read()}"
            )
            assert time.monotonic() < deadline, f"{step} was not reached"
            time.sleep(0.02)
        os.killpg(process.pid, sig)
        process.wait(timeout=120)
    finally:
        client.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == -sig, "the fault landed while the refresh was running"

    version = finished(refresh(env, "killed"))
    assert committed(env, version) == undisturbed
    check = subprocess.run(
        [str(Path(sys.executable).with_name("corpus")), "verify", "--version", version],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert check.returncode == 0, check.stdout + check.stderr
