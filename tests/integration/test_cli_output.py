"""Identifiers are never cut: piped into another program or shown in a narrow terminal, every
version id, partner id and item key printed by the `corpus` command stays whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = str(Path(sys.executable).with_name("corpus"))
PARTNER = "a-partner-with-a-rather-long-identifier"


def corpus(*args: str, **env: str) -> str:
    run = subprocess.run(
        [CORPUS, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run.stdout


@pytest.fixture
def two_versions(corpus_env, tmp_path):
    """Two committed versions of a delivery whose licences are all refused (no audio work)."""
    delivery = tmp_path / "delivery"
    delivery.mkdir()
    records = [
        {"track_id": f"TRACK-{n}", "title": "Song", "artists": ["A"], "audio": "a.flac",
         "license": {"id": "All-Rights-Reserved"}}
        for n in range(3)
    ]  # fmt: skip
    (delivery / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    partners = tmp_path / "partners.yaml"
    partners.write_text(
        json.dumps({"partners": [{"id": PARTNER, "name": "P", "location": str(delivery)}]})
    )
    versions = []
    for day in ("2026-11-01", "2026-11-08"):
        result = corpus("refresh", "--json", "--partners", str(partners), "--as-of", day)
        versions.append(json.loads(result)["version"])
    return versions


@pytest.mark.parametrize(
    "terminal",
    [{}, {"TTY_COMPATIBLE": "1", "COLUMNS": "40"}],
    ids=["piped", "narrow-terminal"],
)
def test_identifiers_are_never_cut(two_versions, terminal):
    first, second = two_versions
    listed = corpus("versions", **terminal)
    assert first in listed and second in listed, listed
    assert "…" not in listed
    delivered = corpus("deliveries", **terminal)
    assert PARTNER in delivered and second in delivered, delivered
    assert "…" not in delivered
    shown = corpus("show", **terminal)
    assert second in shown and f"partner {PARTNER}" in shown, shown
    assert first in shown, "the parent version"
    assert "…" not in shown
