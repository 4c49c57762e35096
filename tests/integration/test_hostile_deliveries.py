"""Nothing a partner sends stops a refresh: every bad record becomes METADATA_INVALID naming
where it is, and the good records beside it are admitted. Driven through `corpus refresh`
on a delivery folder, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from pymongo import MongoClient

from corpus_demo import synth

CORPUS = str(Path(sys.executable).with_name("corpus"))
CC0 = {"id": "CC0-1.0"}
CONTRACT_WITHOUT_DOCUMENT = {"id": "LicenseRef-hostile-C1", "uses": ["ai_training", "commercial"]}
KEYS = [("C", "major", 96), ("E", "minor", 128), ("G", "major", 110), ("D", "minor", 140)]


def corpus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CORPUS, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=900
    )


def tune(folder: Path, name: str, index: int) -> str:
    key, scale, bpm = KEYS[index % len(KEYS)]
    signal = synth.chord_progression(key, scale, bpm, 3.0, seed=index)
    synth.write_audio(signal, 44100, folder / "audio" / name, "flac")
    return f"audio/{name}"


def record(folder: Path, track_id: str, index: int, **extra) -> dict:
    return {
        "track_id": track_id,
        "title": f"Tune {index}",
        "artists": [f"Artist {index}"],
        "audio": tune(folder, f"{track_id}.flac", index),
        "license": CC0,
        **extra,
    }


def hot_float_wav(folder: Path) -> dict:
    """A float WAV whose samples sit near 1e30: finite, decodable, and no audio at all."""
    import numpy as np
    import soundfile

    samples = synth.chord_progression("A", "minor", 120, 3.0) * 1e30
    soundfile.write(folder / "audio" / "hot.wav", samples.astype(np.float32), 44100, "FLOAT")
    return {"track_id": "HOT", "title": "Hot", "artists": ["Hot"], "audio": "audio/hot.wav",
            "license": CC0}  # fmt: skip


def manifest_delivery(folder: Path) -> tuple[set[str], dict[str, str]]:
    """(good track ids, bad track id or line -> what its message must say)."""
    (folder / "audio").mkdir(parents=True)
    good = [record(folder, f"M{i}", i) for i in range(2)]
    line = json.dumps
    base = json.dumps(record(folder, "BASE", 9))[1:-1]
    lines: list[bytes] = [
        b"\xef\xbb\xbf" + line(good[0]).encode(),  # a spreadsheet's byte-order mark: fine
        ("{" + base + ', "deep": ' + "[" * 50_000 + "]" * 50_000 + "}").encode(),
        ("{" + base + ', "n": ' + "7" * 5000 + "}").encode(),
        ("{" + base + ', "title": "Other"}').encode(),  # the title twice
        ("{" + base + ', "gain": NaN}').encode(),
        ("{" + base + ', "peak": -Infinity}').encode(),
        line(record(folder, "BAD\x00ID", 3)).encode(),
        line(record(folder, "CTRL\x1bID", 3)).encode(),
        line(record(folder, "LONG", 3, title="x" * 5000)).encode(),
        ("{" + base + ', "notes": "caf\xe9"}').encode("latin-1"),  # not UTF-8
        ("{" + base + ', "pad": "' + "x" * (1 << 20) + '"}').encode(),
        line(good[1]).encode(),
        line(hot_float_wav(folder)).encode(),
        line(record(folder, "NOEV", 3, license=CONTRACT_WITHOUT_DOCUMENT)).encode(),
    ]
    (folder / "manifest.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    bad = {
        "#line-2": "nested more than",
        "#line-3": "integer of 5000 digits",
        "BASE": "appears twice",  # readable leniently: the refusal names its track
        "BASE#record-5": "NaN",
        "BASE#record-6": "-Infinity",
        "#line-7": "control characters",
        "#line-8": "control characters",
        "LONG": "title",
        "#line-10": "not UTF-8",
        "#line-11": "exceeds",
    }
    return {"M0", "M1"}, bad


def csv_delivery(folder: Path) -> tuple[set[str], dict[str, str]]:
    (folder / "audio").mkdir(parents=True)
    rows = [b"track_id,title,artists,audio,license_id"]
    for i, track in enumerate(["C0", "C1"]):
        rows.append(f"{track},Song {i},Singer {i},{tune(folder, track + '.flac', i + 2)},CC0-1.0"
                    .encode())  # fmt: skip
    audio = tune(folder, "x.flac", 3)
    rows += [
        f"BAD\x00C,Song,Singer,{audio},CC0-1.0".encode(),
        f"LATIN,Caf\xe9,Singer,{audio},CC0-1.0".encode("latin-1"),
        f"HUGE,{'y' * 20_000},Singer,{audio},CC0-1.0".encode(),
    ]
    (folder / "manifest.csv").write_bytes(b"\r\n".join(rows) + b"\r\n")
    bad = {
        "#line-3": "control characters",
        "LATIN": "not UTF-8",  # the refusal keeps its readable track id
        "HUGE": "20000 characters",
    }
    return {"C0", "C1"}, bad


def ddex_delivery(folder: Path) -> tuple[set[str], dict[str, str]]:
    """A label's ERN 4.3 message: one recording granted through a deal per country (GB among
    them) plus one deal over many, and a DJ mix whose two recordings share an identifier."""
    import hashlib

    from tests.unit.test_ddex import ern4_deal, ern4_message, ern4_recording, ern4_release

    (folder / "resources").mkdir(parents=True)
    signal = synth.chord_progression("B", "minor", 150, 3.0, seed=7)
    flac = synth.write_audio(signal, 44100, folder / "resources" / "x1.flac", "flac")
    md5 = hashlib.md5(flac.read_bytes()).hexdigest()
    mix = '<ResourceId><ProprietaryId Namespace="DPID:X">MIX-1</ProprietaryId></ResourceId>'
    recordings = [
        ern4_recording("A1", "GBXYZ2600001", "Granted", "P1", "resources/x1.flac", md5),
        *(
            ern4_recording(
                ref, None, ref, "P1", "resources/x1.flac", md5, edition=False, padding=mix
            )  # fmt: skip
            for ref in ("A2", "A3")
        ),
    ]
    releases = [ern4_release("Release", "R0", "5012345678900", ["A1", "A2", "A3"])]
    countries = ["AE", "AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "NL"]
    deals = [ern4_deal(None, ["AIUse"], territories=[c], start="2026-01-01") for c in countries]
    deals.append(ern4_deal(None, ["AIUse"], territories=["NO", "SE", "PL"], start="2026-01-01"))
    (folder / "m.xml").write_text(
        ern4_message("43", recordings, releases, [("R0", deals)], {"P1": "Ana"})
    )
    path = "#m.xml/NewReleaseMessage/ResourceList/SoundRecording"
    return {"GBXYZ2600001"}, {"MIX-1": "ambiguous", f"{path}[3]": "ambiguous"}


DDEX_MAPPING = {
    "use_types": {"AIUse": ["ai_training", "ai_generative_training"]},
    "commercial_models": {"PayAsYouGoModel": ["commercial"]},
}
BUILDERS = {
    "hostile-jsonl": ("manifest", manifest_delivery),
    "hostile-csv": ("csv", csv_delivery),
    "hostile-ddex": ("ddex", ddex_delivery),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    expected, partners = {}, []
    for partner, (connector, build) in BUILDERS.items():
        expected[partner] = build(root / partner)
        entry = {"id": partner, "name": partner, "connector": connector, "location": partner}
        if connector == "ddex":
            entry["mapping"] = DDEX_MAPPING
        partners.append(entry)
    (root / "partners.yaml").write_text(json.dumps({"partners": partners}))
    # Training in GB only: a DDEX grant that kept only its first country would be refused.
    (root / "policy.yaml").write_text(json.dumps({"territories": ["GB"]}))
    return root, expected


def test_every_bad_record_is_refused_and_every_good_one_admitted(hostile, corpus_env, mongo_uri):
    root, expected = hostile
    run = corpus(
        "refresh", "--json", "--as-of", "2026-06-01",
        "--partners", str(root / "partners.yaml"), "--policy", str(root / "policy.yaml"),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)
    good = {f"{p}:{t}" for p, (ids, _) in expected.items() for t in ids}
    bad = {f"{p}:{t}": why for p, (_, wrong) in expected.items() for t, why in wrong.items()}
    assert result["accepted"] == len(good)
    assert result["rejected"] == {
        "METADATA_INVALID": len(bad),
        "AUDIO_OUT_OF_RANGE": 1,
        "NO_EVIDENCE": 1,
    }

    store = corpus_env / "store"
    manifest = json.loads((store / "versions" / result["version"] / "manifest.json").read_text())
    files = [str(store / s["path"]) for s in manifest["shards"]]
    keys = ds.dataset(files, format="parquet").to_table(columns=["item_key"]).column(0)
    assert sorted(keys.to_pylist()) == sorted(good)

    db = MongoClient(mongo_uri).get_default_database()
    query = {"version": result["version"], "status": "rejected"}
    refused = {d["item_key"]: d for d in db.decisions.find(query)}
    hot = refused.pop("hostile-jsonl:HOT")
    assert hot["reasons"] == ["AUDIO_OUT_OF_RANGE"] and hot["quality"]["peak_dbfs"] > 500
    unproved = refused.pop("hostile-jsonl:NOEV")
    assert unproved["reasons"] == ["NO_EVIDENCE"] and unproved["stage"] == "licence"
    assert set(refused) == set(bad)
    for key, fragment in bad.items():
        decision = refused[key]
        assert decision["reasons"] == ["METADATA_INVALID"], key
        assert fragment in " ".join(decision["messages"]), (key, decision["messages"])
        where = decision["source"]
        assert where.rsplit(":", 1)[-1].isdigit() or "#/NewReleaseMessage/" in where, where
