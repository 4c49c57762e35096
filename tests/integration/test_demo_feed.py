"""The demo's HTTP feed partner: its detached server survives a restart on another port."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from corpus_demo.delivery import FEED_PARTNER_ID, _feed_delivery, ensure_demo_delivery, feed_folder
from corpus_demo.feed import health, stop_feed_server
from pipeline.audio.fetch import fetch
from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.models import CatalogItem, InvalidRecord
from pipeline.catalogs.partners import load_partners

CORPUS = str(Path(sys.executable).with_name("corpus"))


@pytest.fixture
def feed_demo(tmp_path):
    """A demo folder holding only the feed partner (the others are not needed here); its
    server is stopped afterwards whatever the test did."""
    root = tmp_path / "home" / "demo"
    entry = _feed_delivery(feed_folder(root))
    (root / "partners.yaml").write_text(yaml.safe_dump({"partners": [entry]}, sort_keys=False))
    yield root
    stop_feed_server(feed_folder(root))


def feed_partner(partners_file: Path):
    (partner,) = [p for p in load_partners(partners_file) if p.id == FEED_PARTNER_ID]
    return partner


def read_feed(partners_file: Path) -> dict[str, object]:
    items, _ = read_delivery(feed_partner(partners_file))
    return {item.key: item for item in items}


def test_feed_partner_reads_over_http_and_refuses_foreign_audio(feed_demo):
    partners_file = ensure_demo_delivery(feed_demo)
    location = feed_partner(partners_file).location
    assert location.startswith("http://127.0.0.1:") and location.endswith("/v1/tracks")
    items = read_feed(partners_file)
    assert sorted(items) == [f"demo-feed:DF0{i}" for i in range(1, 6)]
    foreign = items["demo-feed:DF03"]
    assert isinstance(foreign, InvalidRecord) and "cdn.elsewhere.example" in foreign.message
    good = items["demo-feed:DF01"]
    assert isinstance(good, CatalogItem) and good.audio.startswith(location.split("/v1/")[0])
    with fetch(good.audio, good.sha256, 10**8, allowed_hosts=["127.0.0.1"]) as fetched:
        assert fetched.data[:4] == b"fLaC"


def test_ensure_demo_delivery_restarts_a_dead_feed_server_and_rewrites_its_location(feed_demo):
    partners_file = ensure_demo_delivery(feed_demo)
    before = feed_partner(partners_file).location
    base = before.removesuffix("/v1/tracks")
    pid = health(base)["pid"]
    os.kill(pid, signal.SIGKILL)  # as after a machine restart: the state file is stale
    while health(base, timeout_s=0.2):
        time.sleep(0.05)
    with socket.socket() as squatter:  # the old port is taken by something else now
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        squatter.listen()
        assert ensure_demo_delivery(feed_demo) == partners_file
    after = feed_partner(partners_file).location
    assert after != before and health(after.removesuffix("/v1/tracks"))["pid"] != pid
    items = read_feed(partners_file)
    assert [k for k, v in items.items() if isinstance(v, CatalogItem)] == [
        "demo-feed:DF01",
        "demo-feed:DF02",
        "demo-feed:DF04",
        "demo-feed:DF05",
    ]
    assert all(
        v.audio.startswith(after.removesuffix("/v1/tracks"))
        for v in items.values()
        if isinstance(v, CatalogItem)
    )
    assert ensure_demo_delivery(feed_demo) == partners_file
    assert feed_partner(partners_file).location == after, "a running server keeps its address"


def test_services_stop_stops_the_feed_server(feed_demo):
    partners_file = ensure_demo_delivery(feed_demo)
    base = feed_partner(partners_file).location.removesuffix("/v1/tracks")
    env = {**os.environ, "CORPUS_HOME": str(feed_demo.parent)}
    stop = subprocess.run(
        [CORPUS, "services", "stop"], env=env, capture_output=True, text=True, timeout=120
    )
    assert stop.returncode == 0, stop.stderr
    assert "demo feed server: stopped" in stop.stdout
    assert health(base) is None
    assert not stop_feed_server(feed_folder(feed_demo))
