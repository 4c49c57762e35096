"""A demo partner delivery: synthesised tracks, one partner per connector, a partners file.

demo-label (JSONL manifest), demo-ddex (DDEX ERN), demo-csv (CSV) and demo-feed (paginated
HTTP JSON feed, served by a small local server, see `corpus_demo.feed`). Together they
show acceptance and every kind of early refusal: licences that do not grant training, an
expired contract, a territory gap, an opt-out, a malformed record, audio on a host the
partner does not allow, a missing file, a checksum mismatch and a truncated file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import yaml

PARTNER_ID = "demo-label"
BARS = 4  # one full I-IV-V-I cadence, so the key is audible
SR = 44100

CONTRACT = {
    "id": "LicenseRef-demolabel-AI2026",
    "uses": ["ai_training", "ai_generative_training", "commercial"],
    "territories": ["Worldwide"],
    "valid_from": "2025-01-01",
    "valid_until": "2030-12-31",
    "attribution": "Demo Label, licensed for AI training under contract AI2026",
    "evidence": {
        "uri": "https://contracts.demo-label.example/AI2026.pdf",
        "sha256": hashlib.sha256(b"demo contract AI2026").hexdigest(),
    },
}
CC0 = {"id": "CC0-1.0", "uses": [], "territories": ["Worldwide"]}


def _cc_by(artist: str) -> dict:
    return {"id": "CC-BY-4.0", "territories": ["Worldwide"], "attribution": f"{artist} (CC BY 4.0)"}


# (track_id, title, artist, key, scale, bpm, format, licence, fault)
TRACKS: list[tuple] = [
    ("DL001", "Morning Tide", "Ana Sol", "C", "major", 120, "flac", CC0, None),
    ("DL002", "Iron Steps", "Ana Sol", "A", "minor", 90, "wav", CC0, None),
    ("DL003", "Lantern", "Kofi Mensah", "G", "major", 100, "ogg", CC0, None),
    ("DL004", "Salt Road", "Kofi Mensah", "E", "minor", 128, "mp3", CC0, None),
    ("DL005", "Paper Moons", "Lea Brandt", "D", "major", 110, "flac", CC0, None),
    ("DL006", "Cinder", "Lea Brandt", "F", "major", 84, "wav", _cc_by("Lea Brandt"), None),
    ("DL007", "Low Orbit", "Ravi Iyer", "B", "minor", 140, "flac", _cc_by("Ravi Iyer"), None),
    ("DL008", "Quiet Engine", "Ravi Iyer", "D", "minor", 96, "ogg", _cc_by("Ravi Iyer"), None),
    ("DL009", "Glasshouse", "Mina Cho", "A", "major", 124, "mp3", _cc_by("Mina Cho"), None),
    ("DL010", "North Window", "Mina Cho", "E", "major", 104, "flac", CONTRACT, None),
    ("DL011", "Kite Season", "Ana Sol", "C#", "minor", 116, "wav", CONTRACT, None),
    (
        "DL012",
        "Fog Bank",
        "Kofi Mensah",
        "F#",
        "minor",
        132,
        "flac",
        {**CONTRACT, "evidence": {"uri": "https://contracts.demo-label.example/AI2026.pdf"}},
        None,
    ),
    (
        "DL013",
        "Borrowed Light",
        "Lea Brandt",
        "F#",
        "major",
        92,
        "flac",
        {"id": "CC-BY-NC-ND-4.0", "attribution": "Lea Brandt (CC BY-NC-ND 4.0)"},
        None,
    ),
    (
        "DL014",
        "Old Contract",
        "Ravi Iyer",
        "A",
        "minor",
        100,
        "wav",
        {
            **CONTRACT,
            "id": "LicenseRef-demolabel-AI2023",
            "valid_from": "2023-01-01",
            "valid_until": "2025-06-30",
        },
        None,
    ),
    (
        "DL015",
        "Commons Share",
        "Mina Cho",
        "Bb",
        "major",
        118,
        "flac",
        {"id": "CC-BY-SA-4.0", "attribution": "Mina Cho (CC BY-SA 4.0)"},
        None,
    ),
    (
        "DL016",
        "Regional Rights",
        "Ana Sol",
        "B",
        "major",
        122,
        "flac",
        {**CONTRACT, "territories": ["US", "CA"]},
        None,
    ),
    (
        "DL017",
        "Opted Out",
        "Kofi Mensah",
        "E",
        "minor",
        108,
        "flac",
        {**_cc_by("Kofi Mensah"), "tdm_opt_out": True},
        None,
    ),
    ("DL018", "Lost Master", "Lea Brandt", "C", "major", 100, "flac", CC0, "missing"),
    ("DL019", "Wrong Sum", "Ravi Iyer", "G", "major", 112, "flac", CC0, "checksum"),
    ("DL020", "Cut Short", "Mina Cho", "A", "minor", 126, "flac", CC0, "truncated"),
    ("DL021", "No Artist", None, "F", "major", 98, "wav", CC0, "malformed"),
    ("DL022", "Sea Glass", "Ana Sol", "Eb", "minor", 88, "ogg", _cc_by("Ana Sol"), None),
    (
        "DL023",
        "Future Deal",
        "Ravi Iyer",
        "G",
        "major",
        120,
        "flac",
        {**CONTRACT, "id": "LicenseRef-demolabel-AI2027", "valid_from": "2027-01-01"},
        None,
    ),
    (
        "DL024",
        "House Rules",
        "Mina Cho",
        "C",
        "major",
        104,
        "flac",
        {"id": "All-Rights-Reserved"},
        None,
    ),
    (
        "DL025",
        "Taken Down",
        "Kofi Mensah",
        "A",
        "minor",
        100,
        "flac",
        {**_cc_by("Kofi Mensah"), "revoked": {"date": "2026-03-01", "reason": "artist request"}},
        None,
    ),
    (
        "DL026",
        "Two Problems",
        "Lea Brandt",
        "E",
        "minor",
        110,
        "flac",
        {
            **CONTRACT,
            "id": "LicenseRef-demolabel-UK2024",
            "territories": ["GB"],
            "valid_from": "2024-01-01",
            "valid_until": "2025-06-30",
        },
        None,
    ),
]

# A research corpus: non-commercial, admits NonCommercial, ShareAlike and NoDerivatives.
RESEARCH_POLICY = {
    "name": "research",
    "purpose": "non_commercial",
    "allow": {"non_commercial": True, "share_alike": True, "no_derivatives": True},
}


def ensure_demo_delivery(root: Path) -> Path:
    """The demo partners file under `root`, generated once (atomically) if absent, with the
    feed partner's server running and the file pointing at its current address."""
    partners_file = root / "partners.yaml"
    if not partners_file.is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=root.parent))
        try:
            write_demo_delivery(staging)
            os.replace(staging, root)
        except OSError:
            if not partners_file.is_file():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    serve_demo_feed(root)
    return partners_file


def feed_folder(root: Path) -> Path:
    """The feed partner's folder (catalog.json, audio/, server state) in the demo under `root`."""
    return root / "deliveries" / FEED_PARTNER_ID


def serve_demo_feed(root: Path) -> str | None:
    """The feed partner's location in the demo under `root`: starts the feed server if it is
    down, and rewrites that location in the partners file if the server's address changed
    (a restart, `corpus services stop`). None for a demo delivery written before the feed
    partner existed (no feed folder), which is left as it is."""
    from corpus_demo.feed import CATALOG, FEED_PATH, ensure_feed_server
    from pipeline.detached import file_lock

    partners_file = root / "partners.yaml"
    folder = feed_folder(root)
    if not (folder / CATALOG).is_file():
        return None
    location = ensure_feed_server(folder) + FEED_PATH
    if _feed_location(partners_file) == location:
        return location
    with file_lock(root / ".partners.lock"):
        data = yaml.safe_load(partners_file.read_text(encoding="utf-8"))
        for entry in data["partners"]:
            if entry.get("id") == FEED_PARTNER_ID:
                entry["location"] = location
        staging = partners_file.with_name(f".{partners_file.name}.{os.getpid()}")
        staging.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        os.replace(staging, partners_file)
    return location


def _feed_location(partners_file: Path) -> str | None:
    data = yaml.safe_load(partners_file.read_text(encoding="utf-8"))
    for entry in data.get("partners") or []:
        if entry.get("id") == FEED_PARTNER_ID:
            return entry.get("location")
    return None


@contextmanager
def _native_stderr_to(log: Path):
    """FFmpeg inside Essentia chatters on fd 2 while encoding; keep it in a log file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with log.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def write_demo_delivery(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with _native_stderr_to(root / "encode.log"):
        return _write_demo_delivery(root)


def _write_demo_delivery(root: Path) -> Path:
    from corpus_demo.synth import chord_progression, write_audio

    delivery = root / "deliveries" / PARTNER_ID
    (delivery / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for number, (track_id, title, artist, key, scale, bpm, fmt, licence, fault) in enumerate(
        TRACKS
    ):
        relative = f"audio/{track_id.lower()}.{fmt}"
        path = delivery / relative
        record: dict = {
            "track_id": track_id,
            "isrc": f"XXDLB26{number + 1:05d}",
            "title": title,
            "artists": [artist] if artist else [],
            "audio": relative,
            "license": licence,
        }
        if fault != "missing":
            seconds = BARS * 4 * 60 / bpm + 0.5
            samples = chord_progression(key, scale, bpm, seconds, sr=SR, seed=number)
            write_audio(samples, SR, path, fmt)
            record["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        if fault == "checksum":
            record["sha256"] = hashlib.sha256(b"another file").hexdigest()
        if fault == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 50])
            record["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(json.dumps(record))
    (delivery / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    partners = {
        "partners": [
            {
                "id": PARTNER_ID,
                "name": "Demo Label",
                "connector": "manifest",
                "location": f"deliveries/{PARTNER_ID}",
            }
        ]
    }
    for extra in _other_connectors(root, delivery):
        partners["partners"].append(extra.partner)
    partners["partners"].append(_feed_delivery(feed_folder(root)))
    partners_file = root / "partners.yaml"
    partners_file.write_text(yaml.safe_dump(partners, sort_keys=False), encoding="utf-8")
    (root / "policy-research.yaml").write_text(
        yaml.safe_dump(RESEARCH_POLICY, sort_keys=False), encoding="utf-8"
    )
    return partners_file


# (track_id, title, artist, key, scale, bpm) of the DDEX and CSV partners' recordings.
DDEX_TRACKS = [
    ("QZDEM2600101", "Harbour Lights", "Nadia Okafor", "F", "major", 112),
    ("QZDEM2600102", "Tin Roof Rain", "Nadia Okafor", "Bb", "minor", 96),
    ("QZDEM2600103", "Border Song", "Jonas Weber", "G", "minor", 104),
    ("QZDEM2600104", "Next Century", "Jonas Weber", "D", "major", 128),
]
CSV_TRACKS = [
    ("CSV-01", "Copper Field", "Lina Haddad", "Ab", "major", 100),
    ("CSV-02", "Morning Tide (label copy)", "Ana Sol", None, None, None),
    ("CSV-03", "Inference Only", "Lina Haddad", "B", "minor", 118),
    ("CSV-04", "Quiet Please", "Omar Diaz", "A", "major", 92),
]


def _other_connectors(root: Path, manifest_delivery: Path):
    """A DDEX (ERN 4.3) partner and a CSV partner. The CSV label re-delivers Morning Tide,
    byte for byte, to show DUPLICATE across partners."""
    from corpus_demo.connectors import write_csv_delivery, write_ddex_delivery
    from corpus_demo.synth import chord_progression, write_audio

    sources = root / ".sources"
    sources.mkdir(exist_ok=True)

    def tracks(spec, seed):
        out = []
        for number, (track_id, title, artist, key, scale, bpm) in enumerate(spec):
            if key is None:
                path = manifest_delivery / "audio" / "dl001.flac"
            else:
                path = sources / f"{track_id.lower()}.flac"
                seconds = BARS * 4 * 60 / bpm + 0.5
                samples = chord_progression(key, scale, bpm, seconds, sr=SR, seed=seed + number)
                write_audio(samples, SR, path, "flac")
            out.append((track_id, title, artist, path))
        return out

    made = []
    for writer, spec, partner_id, seed in (
        (write_ddex_delivery, DDEX_TRACKS, "demo-ddex", 100),
        (write_csv_delivery, CSV_TRACKS, "demo-csv", 200),
    ):
        delivery = writer(root / "deliveries" / partner_id, tracks(spec, seed), partner_id)
        delivery.partner["location"] = f"deliveries/{partner_id}"
        if partner_id == "demo-csv":
            delivery.partner["missing_items"] = "keep"
        made.append(delivery)
    shutil.rmtree(sources)
    return made


FEED_PARTNER_ID = "demo-feed"
FEED_CONTRACT = {
    "id": "LicenseRef-demofeed-AI2026",
    "uses": ["ai_training", "commercial"],
    "territories": ["Worldwide"],
    "valid_from": "2025-01-01",
    "valid_until": "2030-12-31",
    "attribution": "Demo Feed Label, licensed for AI training under contract AI2026",
    "evidence": {
        "uri": "https://contracts.demo-feed.example/AI2026.pdf",
        "sha256": hashlib.sha256(b"demo feed contract AI2026").hexdigest(),
    },
}
# (track_id, title, artist, key, scale, bpm, format, licence, fault) of the feed partner.
# A shared tonic at a nearby tempo can fingerprint as the same recording (C minor at 106
# bpm came out at a bit error rate of 0.175 against DL001's C major at 120, under the 0.2
# threshold), so each (key, scale, bpm) here was measured against every track admitted
# under either policy and against each other: all at 0.35 or more.
FEED_TRACKS: list[tuple] = [
    ("DF01", "Signal Fire", "Tomas Ruiz", "Eb", "major", 114, "flac", _cc_by("Tomas Ruiz"), None),
    ("DF02", "Night Ferry", "Aiko Tanaka", "B", "major", 102, "mp3", FEED_CONTRACT, None),
    ("DF03", "Elsewhere", "Tomas Ruiz", "A", "minor", 150, "flac", FEED_CONTRACT, "foreign"),
    (
        "DF04",
        "Last Season",
        "Aiko Tanaka",
        "D",
        "major",
        76,
        "flac",
        {
            **FEED_CONTRACT,
            "id": "LicenseRef-demofeed-AI2024",
            "valid_from": "2024-01-01",
            "valid_until": "2025-12-31",
        },
        None,
    ),
    (
        "DF05",
        "Home Ground",
        "Tomas Ruiz",
        "G",
        "major",
        146,
        "flac",
        {**FEED_CONTRACT, "excluded_territories": ["US"]},
        None,
    ),
]
# Feed items in the partner's own shape; the mapping turns them into manifest records.
FEED_MAPPING = {
    "items_field": "data.tracks",
    "fields": {
        "track_id": "id",
        "title": "name",
        "artists": "performers",
        "audio": "media.url",
        "sha256": "media.sha256",
        "license": "rights",
    },
    "pagination": {"style": "cursor", "next_field": "next_cursor"},
}


def _feed_delivery(folder: Path) -> dict:
    """The feed partner's catalog.json and audio, served by `corpus_demo.feed`; returns its
    partners-file entry. Its location is a placeholder until `ensure_demo_delivery` starts
    the server. Audio URLs are relative, so they follow the server to any port; one track's
    audio is on a host the partner does not allow."""
    from corpus_demo.feed import CATALOG
    from corpus_demo.synth import chord_progression, write_audio

    (folder / "audio").mkdir(parents=True, exist_ok=True)
    tracks = []
    for number, (track_id, title, artist, key, scale, bpm, fmt, licence, fault) in enumerate(
        FEED_TRACKS
    ):
        name = f"{track_id.lower()}.{fmt}"
        media: dict = {"url": f"https://cdn.elsewhere.example/audio/{name}"}
        if fault != "foreign":
            path = folder / "audio" / name
            seconds = BARS * 4 * 60 / bpm + 0.5
            samples = chord_progression(key, scale, bpm, seconds, sr=SR, seed=300 + number)
            write_audio(samples, SR, path, fmt)
            media = {
                "url": f"/audio/{name}",
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        tracks.append(
            {
                "id": track_id,
                "isrc": f"QZFED26{number + 1:05d}",
                "name": title,
                "performers": [artist],
                "media": media,
                "rights": licence,
            }
        )
    (folder / CATALOG).write_text(json.dumps({"tracks": tracks}, indent=1), encoding="utf-8")
    return {
        "id": FEED_PARTNER_ID,
        "name": "Demo Feed Label",
        "connector": "http",
        "location": "http://127.0.0.1/v1/tracks",
        "allowed_audio_hosts": ["127.0.0.1"],
        "mapping": FEED_MAPPING,
    }
