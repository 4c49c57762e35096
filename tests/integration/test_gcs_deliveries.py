"""Partner deliveries on gs:// (fake-gcs-server): the file connectors read them as local ones."""

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml
from pymongo import MongoClient

from pipeline.catalogs import csv_manifest, ddex, manifest
from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.location import open_delivery
from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.normalise import resolve_audio
from pipeline.catalogs.partners import CsvMapping, Partner
from pipeline.refresh.share import audio_stamp
from pipeline.storage.gcs import client_from_env
from tests.unit.test_ddex import (
    MAPPING,
    audio,
    ern4_deal,
    ern4_message,
    ern4_recording,
    ern4_release,
    records_by_id,
)

GOOD = {
    "track_id": "T1",
    "title": "Song",
    "artists": ["A"],
    "audio": "audio/t1.flac",
    "license": {"id": "CC0-1.0"},
}


def _bucket(uri: str):
    name, _, prefix = uri.removeprefix("gs://").partition("/")
    return client_from_env().bucket(name), prefix


def upload(folder: Path, uri: str) -> None:
    """Every file under `folder` to `uri/<relative path>`."""
    bucket, prefix = _bucket(uri)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            bucket.blob(key).upload_from_filename(str(path))


def put(uri: str, data: bytes) -> None:
    bucket, key = _bucket(uri)
    bucket.blob(key).upload_from_string(data)


def parent(uri: str) -> str:
    return uri.rsplit("/", 1)[0]


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("../x.wav", "escapes"),
        ("a/../../x.wav", "escapes"),
        ("..", "escapes"),
        ("/etc/passwd", "relative"),
        ("file:///etc/passwd", "relative"),
        ("a\\..\\..\\x.wav", "relative"),
        ("a\x00.wav", "relative"),
        (".", "names no file"),
    ],
)
def test_gs_references_that_escape_are_refused(reference, problem):
    with pytest.raises(ValueError, match=problem):
        resolve_audio("gs://bucket/drop/p1", reference)


def test_gs_references_resolve_under_the_root():
    root = "gs://bucket/drop/p1"
    assert resolve_audio(root, "audio/./a.flac") == f"{root}/audio/a.flac"
    assert resolve_audio(root, "x/../audio/a b#1.flac") == f"{root}/audio/a b#1.flac"
    assert resolve_audio("gs://bucket", "a.flac") == "gs://bucket/a.flac"
    assert resolve_audio(root, "https://cdn.example/a.flac") == "https://cdn.example/a.flac"


def test_manifest_connector_reads_a_gs_delivery(gcs_uri, tmp_path):
    local = tmp_path / "d"
    (local / "audio").mkdir(parents=True)
    (local / "audio" / "t1.flac").write_bytes(b"one")
    lines = [
        json.dumps(GOOD),
        json.dumps({**GOOD, "track_id": "T2", "audio": "../x.flac"}),
        "{not json",
    ]
    (local / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    upload(local, gcs_uri)
    put(f"{parent(gcs_uri)}/x.flac", b"someone else's")  # exists, and still out of bounds

    items, report = read_delivery(Partner(id="p1", name="P1", location=gcs_uri))
    by_key = {i.key: i for i in items}
    one = by_key["p1:T1"]
    assert isinstance(one, CatalogItem) and one.audio == f"{gcs_uri}/audio/t1.flac"
    escaped = by_key["p1:T2"]
    assert isinstance(escaped, InvalidRecord) and "escapes the delivery root" in escaped.message
    assert escaped.source == f"{gcs_uri}/manifest.jsonl:2"
    assert by_key["p1:#line-3"].source == f"{gcs_uri}/manifest.jsonl:3"

    first, *_ = manifest.read("p1", f"{gcs_uri}/manifest.jsonl")  # the object itself
    assert isinstance(first, RawRecord) and first.root == gcs_uri and first.data == GOOD
    with pytest.raises(FileNotFoundError, match="does not exist"):
        manifest.read("p1", f"{gcs_uri}/absent").__next__()


def test_csv_connector_reads_a_gs_delivery(gcs_uri, tmp_path):
    local = tmp_path / "d"
    (local / "sub").mkdir(parents=True)
    header = "track_id,title,artists,audio,license_id"
    (local / "a.csv").write_text(
        f"{header}\nT1,Song,A,audio/t1.flac,CC0-1.0\nT2,Out,A,../x.flac,CC0-1.0\n"
    )
    (local / "b.csv").write_text(f"{header}\nT3,Short row\n")
    (local / "sub" / "c.csv").write_text(f"{header}\nT9,Deeper,A,t9.flac,CC0-1.0\n")
    upload(local, gcs_uri)

    mapping = CsvMapping(files="*.csv")
    records = list(csv_manifest.read("p", gcs_uri, mapping))
    assert [
        r.track_id if isinstance(r, InvalidRecord) else r.data["track_id"] for r in records
    ] == [
        "T1",
        "T2",
        "T3",
    ], "a.csv then b.csv; `*` does not descend into sub/"
    assert records[0].root == gcs_uri and records[0].source == f"{gcs_uri}/a.csv:2"
    assert isinstance(records[2], InvalidRecord) and records[2].source == f"{gcs_uri}/b.csv:2"

    partner = Partner(id="p", name="P", connector="csv", location=gcs_uri, mapping=mapping)
    items, _ = read_delivery(partner)
    by_key = {i.key: i for i in items}
    assert by_key["p:T1"].audio == f"{gcs_uri}/audio/t1.flac"
    assert "escapes the delivery root" in by_key["p:T2"].message
    everything = CsvMapping(files="**/*.csv")
    assert [r.source for r in csv_manifest.read("p", gcs_uri, everything)][-1] == (
        f"{gcs_uri}/sub/c.csv:2"
    )


def test_ddex_connector_reads_a_gs_delivery_and_carries_hashsums(gcs_uri, tmp_path, monkeypatch):
    from pipeline.audio.fetch import FetchError, fetch
    from pipeline.catalogs.location import GcsDelivery
    from pipeline.reasons import Reason

    opened = []
    original = GcsDelivery.open

    def spy(self, location):
        opened.append(location)
        return original(self, location)

    monkeypatch.setattr(GcsDelivery, "open", spy)
    root = tmp_path / "ddex"
    batch = root / "20260301100000000"
    md5_1, _ = audio(batch, "A1.flac")
    _, sha_2 = audio(batch, "A2.flac")
    audio(batch, "A3.flac")
    recordings = [
        ern4_recording("A1", "USAB12600001", "One", "P1", "resources/A1.flac", md5_1),
        ern4_recording("A2", "USAB12600002", "Two", "P1", "resources/A2.flac", sha_2).replace(
            "<Algorithm>MD5</Algorithm>", "<Algorithm>SHA256</Algorithm>"
        ),
        ern4_recording("A3", "USAB12600003", "Three", "P1", "resources/A3.flac", "0" * 32),
        ern4_recording("A4", "USAB12600004", "Four", "P1", "../../x.flac", md5_1),
    ]
    releases = [ern4_release("Release", "R0", "0123456789012", ["A1", "A2", "A3", "A4"])]
    deals = [("R0", [ern4_deal("AI", ["AIUse"], territories=["Worldwide"])])]
    (batch / "release.xml").write_text(
        ern4_message("43", recordings, releases, deals, {"P1": "Ada"})
    )
    (root / "0-broken.xml").write_text(
        '<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"><Oops>'
    )
    upload(root, gcs_uri)
    put(f"{parent(gcs_uri)}/x.flac", (batch / "resources" / "A1.flac").read_bytes())

    by_id = records_by_id(ddex.read("lx", gcs_uri, MAPPING))
    assert sorted(opened) == [
        f"{gcs_uri}/0-broken.xml",
        f"{gcs_uri}/20260301100000000/release.xml",
    ], "only messages are read, never audio"
    one = by_id["USAB12600001"]
    assert isinstance(one, RawRecord) and one.root == gcs_uri
    assert one.data["audio"] == "20260301100000000/resources/A1.flac"
    assert "sha256" not in one.data
    assert one.data["hash_sum"] == {"algorithm": "md5", "value": md5_1}
    assert by_id["USAB12600002"].data["sha256"] == sha_2, "a SHA-256 HashSum is the sha256"
    three = by_id["USAB12600003"]
    assert isinstance(three, RawRecord), "a wrong HashSum is found by the fetch stage"
    assert three.data["hash_sum"] == {"algorithm": "md5", "value": "0" * 32}
    assert three.source == (
        f"{gcs_uri}/20260301100000000/release.xml#/NewReleaseMessage/ResourceList/SoundRecording[3]"
    )
    broken = by_id["#0-broken.xml"]
    assert broken.source.startswith(f"{gcs_uri}/0-broken.xml#/NewReleaseMessage")

    partner = Partner(id="lx", name="X", connector="ddex", location=gcs_uri, mapping=MAPPING)
    items, _ = read_delivery(partner)
    by_key = {i.key: i for i in items}
    assert by_key["lx:USAB12600001"].audio == (f"{gcs_uri}/20260301100000000/resources/A1.flac")
    four = by_key["lx:USAB12600004"]
    assert isinstance(four, InvalidRecord) and "escapes the delivery root" in four.message

    bucket = gcs_uri.removeprefix("gs://").split("/")[0]
    for key in ("lx:USAB12600001", "lx:USAB12600003"):
        item = by_key[key]
        try:
            fetch(item.audio, item.sha256, 10**6, [bucket], hash_sum=item.hash_sum.model_dump())
        except FetchError as exc:
            assert key == "lx:USAB12600003", exc
            assert exc.reason == Reason.AUDIO_CHECKSUM_MISMATCH and "md5" in str(exc)
        else:
            assert key == "lx:USAB12600001"


def test_a_large_gs_message_is_streamed(gcs_uri):
    """Read in ranged chunks: peak memory does not grow with the message."""
    count = 3000
    padding = "<CourtesyLine>" + "c" * 4000 + "</CourtesyLine>"
    recordings = [
        ern4_recording(
            f"A{i}", f"USAB1260{i:04d}", "S", "P1", f"r/{i}.flac", "0" * 32, padding=padding
        )
        for i in range(count)
    ]
    releases = [ern4_release("Release", "R0", "0123456789012", [f"A{i}" for i in range(count)])]
    deals = [("R0", [ern4_deal("AI", ["AIUse"], territories=["Worldwide"])])]
    body = ern4_message("43", recordings, releases, deals, {"P1": "A"}).encode()
    put(f"{gcs_uri}/big.xml", body)
    delivery = open_delivery(gcs_uri, "ddex")
    (file,) = delivery.files("**/*.xml")
    tracemalloc.start()
    with delivery.open(file.location) as handle:
        message = ddex.parse_message(handle)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(message.recordings) == count
    # a few 1 MiB read chunks (and the client's copies of them), not the 16 MB message
    assert len(body) > 15_000_000
    assert peak < 8_000_000, (peak, len(body))


def test_gs_audio_stamp_comes_from_object_metadata(gcs_uri):
    location = f"{gcs_uri}/audio/a.flac"
    bucket = [gcs_uri.removeprefix("gs://").split("/")[0]]
    put(location, b"first")
    stamp = audio_stamp(location, bucket)
    assert stamp.startswith("gs:") and stamp.endswith(":5")
    assert audio_stamp(location, bucket) == stamp
    assert audio_stamp(location) is None, "a bucket the partner may not use is not even asked"
    put(location, b"again")
    assert audio_stamp(location, bucket) != stamp, "a new generation, though the size is the same"
    assert audio_stamp(f"{gcs_uri}/audio/absent.flac", bucket) == "missing"


CORPUS = str(Path(sys.executable).with_name("corpus"))


def corpus(*args: str) -> dict:
    run = subprocess.run(
        [CORPUS, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_refresh_of_a_gs_delivery_then_an_unchanged_rerun(corpus_env, gcs_uri, mongo_uri):
    from corpus_demo.connectors import write_ddex_delivery
    from corpus_demo.synth import chord_progression, write_audio

    sources = []
    for i, (key, scale) in enumerate(
        [("C", "major"), ("A", "minor"), ("E", "major"), ("D", "minor")]
    ):
        path = corpus_env / f"src{i}.flac"
        write_audio(chord_progression(key, scale, 120, 3.0, sr=44100, seed=i), 44100, path, "flac")
        sources.append((f"gs-{i}", f"Title {i}", f"Artist {i}", path))
    delivery = write_ddex_delivery(corpus_env / "ddex", sources, partner_id="gs-ddex")
    upload(corpus_env / "ddex", gcs_uri)
    bucket = gcs_uri.removeprefix("gs://").split("/")[0]
    partner = {**delivery.partner, "location": gcs_uri, "allowed_audio_hosts": [bucket]}
    partners = corpus_env / "partners.yaml"
    partners.write_text(yaml.safe_dump({"partners": [partner]}))
    accepted = sorted(k for k, reasons in delivery.expected.items() if not reasons)
    assert len(accepted) == 2

    first = corpus("refresh", "--partners", str(partners), "--json", "--as-of", "2026-11-20")
    assert first["accepted"] == 2
    assert first["rejected"] == {"TERRITORY_EXCLUDED": 1, "NOT_YET_VALID": 1}
    db = MongoClient(mongo_uri).get_default_database()
    admitted = list(db.decisions.find({"version": first["version"], "status": "accepted"}))
    assert sorted(d["item_key"] for d in admitted) == accepted
    for doc in admitted:
        assert doc["audio_location"].startswith(f"{gcs_uri}/20260101000000000/resources/")
        assert doc["audio_stamp"].startswith("gs:")
    assert db.versions.find_one({"_id": first["version"]})["licensed"] == 2

    second = corpus("refresh", "--partners", str(partners), "--json", "--as-of", "2026-11-21")
    meta = db.versions.find_one({"_id": second["version"]})
    assert meta["licensed"] == 0 and meta["batch_count"] == 0
    assert meta["carried"] == 2
    assert db.steps.count_documents({"version": second["version"], "kind": "analyse"}) == 0
    assert second["changes"]["written_shards"] == 0
    assert second["accepted"] == 2
