"""Audits on the demo corpus: report, attribution and summary, opened in headless Chromium."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from PIL import Image

from pipeline.config import Settings
from pipeline.refresh import run_refresh
from tests.fixtures.browser import ARTIFACTS, CHROMIUM_FLAGS
from tests.fixtures.browser import chromium as browser
from tests.oracle import expected_counts

CORPUS = str(Path(sys.executable).with_name("corpus"))


def corpus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CORPUS, *args], capture_output=True, text=True, check=True,
                          env=os.environ.copy(), timeout=600)


def test_audit_report_attribution_and_summary(corpus_env, tmp_path):
    settings = Settings.from_env()
    first = run_refresh(settings, as_of=date(2026, 11, 20), run_id="audit-1")
    corpus("revoke", "--partner", "demo-label", "--track", "DL005", "--reason", "artist request",
           "--effective", "2026-11-21", "--actor", "rm")
    second = json.loads(corpus("takedown", "--as-of", "2026-11-21", "--json").stdout)

    out = tmp_path / "audit"
    said = corpus("audit", "--out", str(out))
    assert str(out / "report.html") in said.stdout
    html = (out / "report.html").read_text()
    assert second["version"] in html and first["version"] in html
    assert html.count("<svg") >= 6
    for reason in second["rejected"]:
        assert reason in html
    with (out / "refusals_by_reason.csv").open() as handle:
        refusals = {row["reason"]: int(row["items"]) for row in csv.DictReader(handle)}
    assert refusals == second["rejected"]
    partners = json.loads((out / "by_partner.json").read_text())
    assert {p["partner"]: p["accepted"] for p in partners} == {
        p: c["accepted"] for p, c in second["by_partner"].items()
    }
    changes = json.loads((out / "changes.json").read_text())
    removed = [c for c in changes if c["change"] == "removed"]
    assert [c["item_key"] for c in removed] == ["demo-label:DL005"]
    assert "REVOKED" in json.dumps(removed)
    summary = json.loads((out / "summary.json").read_text())
    assert json.dumps(summary).count("demo-ddex") >= 1

    attribution = corpus("attribution").stdout
    assert "Cinder" in attribution and "Lea Brandt (CC BY 4.0)" in attribution
    assert "Paper Moons" not in attribution.split("## Required")[1].split("##")[0]
    rows = list(csv.DictReader(io.StringIO(corpus("attribution", "--csv").stdout)))
    accepted, _ = expected_counts()
    assert {r["licence_id"] for r in rows} >= {"CC-BY-4.0", "LicenseRef-demolabel-AI2026"}
    assert {r["item_key"] for r in rows if r["required"] == "yes"} <= accepted
    assert len(rows) <= len(accepted)

    chromium = browser()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "audit-report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}",
         "--window-size=1200,2000", f"--screenshot={shot}", (out / "report.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    colours = image.getcolors(maxcolors=1_000_000)
    greens = sum(n for n, (r, g, b) in colours if g > 100 and g > r + 40 and g > b + 40)
    reds = sum(n for n, (r, g, b) in colours if r > 150 and r > g + 60 and r > b + 60)
    assert greens > 2000 and reds > 2000, "the accepted/refused bars were drawn"
