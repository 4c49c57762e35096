"""The HTTP feed connector and remote audio fetch against a real local HTTP server."""

import hashlib
import http.server
import json
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlparse

import pytest

from pipeline.audio.fetch import FetchError, fetch
from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.http_feed import FeedError, read
from pipeline.catalogs.models import CatalogItem, InvalidRecord, RawRecord
from pipeline.catalogs.partners import EnvCredential, HttpMapping, Partner
from pipeline.reasons import Reason

TOKEN = "feed-token-s3cret"
AUDIO = {f"t{i}.flac": hashlib.sha512(f"t{i}".encode()).digest() * 64 for i in range(6)}


class Feed:
    """Serves /feed (paged by ?cursor= or ?page=) and /audio/<name>; logs every request."""

    def __init__(self):
        self.pages: list[list[dict]] = []
        self.raw: dict[int, str] = {}
        self.failures: dict[int, list[tuple[int, dict]]] = {}
        self.ok = Counter()
        self.log: list[tuple[str, str, float]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def _handler(self):
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = self.headers.get("Host", "")
                feed.log.append((host, self.path, time.monotonic()))
                url = urlparse(self.path)
                if url.path == "/feed":
                    return feed.page(self, parse_qs(url.query))
                if url.path.startswith("/audio/"):
                    return feed.audio(self, url.path.removeprefix("/audio/"))
                if url.path == "/redirect-away":
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{feed.port}/audio/t0.flac")
                    self.end_headers()
                    return None
                self.send_error(404)

            def log_message(self, *args):
                pass

        return Handler

    def page(self, handler, query):
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.send(handler, 401, {"error": "unauthorised"})
        if "page" in query:
            index = int(query["page"][0]) - 1
        else:
            index = int(query.get("cursor", ["0"])[0])
        if index in self.raw:
            return self.send(handler, 200, self.raw[index])
        pending = self.failures.get(index)
        if pending:
            status, headers = pending.pop(0)
            return self.send(handler, status, {"error": "later"}, headers)
        if index >= len(self.pages):
            return self.send(handler, 200, {"items": []})
        self.ok[index] += 1
        body = {"items": self.pages[index]}
        if "page" not in query:
            body["next_cursor"] = str(index + 1) if index + 1 < len(self.pages) else None
        return self.send(handler, 200, body)

    def audio(self, handler, name):
        data = AUDIO.get(name.removesuffix("-chunked"))
        if data is None:
            return self.send(handler, 404, {})
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/flac")
        if not name.endswith("-chunked"):
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        return None

    @staticmethod
    def send(handler, status, body, headers=None):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def item(self, i, host=None):
        return {
            "id": f"T{i}",
            "name": f"Song {i}",
            "who": [f"Artist {i}"],
            "media": {"url": f"http://{host or '127.0.0.1'}:{self.port}/audio/t{i}.flac"},
            "sha256": hashlib.sha256(AUDIO[f"t{i}.flac"]).hexdigest(),
            "rights": {"licence": "LicenseRef-feed-AI1", "grants": ["ai_training", "commercial"]},
        }


@pytest.fixture
def feed():
    server = Feed()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


FIELDS = {
    "track_id": "id",
    "title": "name",
    "artists": "who",
    "audio": "media.url",
    "license.id": "rights.licence",
    "license.uses": "rights.grants",
}


def feed_partner(feed: Feed, **mapping) -> Partner:
    """The test feed as a partners-file entry, its token in FEED_TOKEN."""
    return Partner(
        id="feed",
        name="Feed",
        connector="http",
        location=f"{feed.base}/feed",
        credentials={"env": "FEED_TOKEN"},
        allowed_audio_hosts=["127.0.0.1"],
        mapping={"fields": FIELDS, **mapping},
    )


@pytest.mark.parametrize("style", ["cursor", "page"])
def test_paginated_feed_survives_429_and_503_and_reads_each_page_once(feed, monkeypatch, style):
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    feed.pages = [[feed.item(0), feed.item(1)], [feed.item(2), feed.item(3)], [feed.item(4)]]
    feed.failures = {1: [(429, {"Retry-After": "1"})], 2: [(503, {})]}
    mapping = HttpMapping(
        fields=FIELDS,
        pagination={"style": style, "page_size": 2 if style == "page" else None},
        backoff_s=0.05,
    )
    started = time.monotonic()
    records = list(
        read(
            "feed",
            f"{feed.base}/feed",
            mapping,
            EnvCredential(env="FEED_TOKEN"),
            allowed_audio_hosts=["127.0.0.1"],
        )
    )
    assert [r.data["track_id"] for r in records] == ["T0", "T1", "T2", "T3", "T4"]
    assert all(isinstance(r, RawRecord) for r in records)
    assert [r.line for r in records] == [1, 2, 3, 4, 5]
    assert dict(feed.ok) == {0: 1, 1: 1, 2: 1}
    assert feed.failures == {1: [], 2: []}
    retried = [t for host, path, t in feed.log if "cursor=1" in path or "page=2" in path]
    assert len(retried) == 2 and retried[1] - retried[0] >= 1.0
    assert time.monotonic() - started < 10
    first = records[0]
    assert first.root == f"{feed.base}/feed"
    assert first.source.endswith("#/items/0")
    assert first.data["license"] == {
        "id": "LicenseRef-feed-AI1",
        "uses": ["ai_training", "commercial"],
    }


def test_feed_items_become_catalog_items_and_foreign_audio_is_refused(feed, monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    feed.pages = [[feed.item(0), feed.item(1, host="localhost")]]
    items, report = read_delivery(feed_partner(feed))
    good, foreign = items
    assert isinstance(good, CatalogItem)
    assert good.audio == f"{feed.base}/audio/t0.flac"
    assert isinstance(foreign, InvalidRecord) and foreign.key == "feed:T1"
    assert "localhost" in foreign.message and "allowed_audio_hosts" in foreign.message
    assert report.evaluated == 1


def test_wrong_or_missing_token_fails_the_feed_without_leaking_it(feed, monkeypatch):
    feed.pages = [[feed.item(0)]]
    monkeypatch.setenv("FEED_TOKEN", "wrong-token-value")
    with pytest.raises(FeedError) as failed:
        list(read("feed", f"{feed.base}/feed", HttpMapping(), EnvCredential(env="FEED_TOKEN")))
    assert "HTTP 401" in str(failed.value) and "wrong-token-value" not in str(failed.value)
    monkeypatch.delenv("FEED_TOKEN")
    with pytest.raises(Exception, match="env:FEED_TOKEN"):
        list(read("feed", f"{feed.base}/feed", HttpMapping(), EnvCredential(env="FEED_TOKEN")))


def test_feed_gives_up_after_max_attempts(feed, monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    feed.pages = [[feed.item(0)]]
    feed.failures = {0: [(503, {})] * 5}
    mapping = HttpMapping(max_attempts=3, backoff_s=0.01)
    with pytest.raises(FeedError, match="after 3 attempts"):
        list(read("feed", f"{feed.base}/feed", mapping, EnvCredential(env="FEED_TOKEN")))
    assert len(feed.failures[0]) == 2


def test_feed_must_be_https_unless_loopback():
    with pytest.raises(FeedError, match="https"):
        list(read("feed", "http://feeds.example.com/x"))


def audio_hits(feed, host_prefix):
    return [path for host, path, _ in feed.log if host.startswith(host_prefix)]


def test_fetch_downloads_only_from_allowed_hosts(feed):
    data = AUDIO["t2.flac"]
    digest = hashlib.sha256(data).hexdigest()
    with fetch(f"{feed.base}/audio/t2.flac", digest, 10_000, ["127.0.0.1"]) as fetched:
        assert fetched.temporary and fetched.path.suffix == ".flac"
        assert fetched.path.read_bytes() == data and fetched.sha256 == digest
    assert not fetched.path.exists()

    with pytest.raises(FetchError) as refused:
        fetch(f"http://localhost:{feed.port}/audio/t2.flac", None, 10_000, ["127.0.0.1"])
    assert refused.value.reason == Reason.AUDIO_MISSING
    assert "allowed_audio_hosts" in str(refused.value)
    with pytest.raises(FetchError):
        fetch(f"{feed.base}/audio/t2.flac", None, 10_000)
    with pytest.raises(FetchError, match="redirect"):
        fetch(f"{feed.base}/redirect-away", None, 10_000, ["127.0.0.1"])
    assert audio_hits(feed, "localhost") == []

    with pytest.raises(FetchError) as mismatch:
        fetch(f"{feed.base}/audio/t2.flac", "0" * 64, 10_000, [f"127.0.0.1:{feed.port}"])
    assert mismatch.value.reason == Reason.AUDIO_CHECKSUM_MISMATCH


@pytest.mark.parametrize("name", ["t3.flac", "t3.flac-chunked"])
def test_fetch_enforces_the_size_limit_while_streaming(feed, name):
    with pytest.raises(FetchError, match="bytes") as too_big:
        fetch(f"{feed.base}/audio/{name}", None, 1000, ["127.0.0.1"])
    assert too_big.value.reason == Reason.AUDIO_UNDECODABLE
    fetched = fetch(f"{feed.base}/audio/{name}", None, 10_000, ["127.0.0.1"])
    assert fetched.data == AUDIO["t3.flac"]
    fetched.release()


def test_fetch_reads_gs_audio_through_the_object_store(gcs_uri):
    from pipeline.storage import open_store

    store = open_store(gcs_uri)
    store.put("deliveries/a b/t4.flac", AUDIO["t4.flac"])
    location = f"{gcs_uri}/deliveries/a b/t4.flac"
    bucket = urlparse(gcs_uri).hostname
    digest = hashlib.sha256(AUDIO["t4.flac"]).hexdigest()
    with fetch(location, digest, 10_000, [bucket]) as fetched:
        assert fetched.path.read_bytes() == AUDIO["t4.flac"]
    with pytest.raises(FetchError) as missing:
        fetch(f"{gcs_uri}/deliveries/none.flac", None, 10_000, [bucket])
    assert missing.value.reason == Reason.AUDIO_MISSING
    with pytest.raises(FetchError, match="allowed_audio_hosts"):
        fetch(location, digest, 10_000, ["another-bucket"])
    with pytest.raises(FetchError) as too_big:
        fetch(location, None, 100, [bucket])
    assert too_big.value.reason == Reason.AUDIO_UNDECODABLE


def test_an_unreadable_item_is_invalid_and_the_rest_of_the_page_is_read(feed, monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", TOKEN)

    def item(i: int, extra: str) -> str:
        return json.dumps(feed.item(i))[:-1] + ", " + extra + "}"

    bad = [
        item(1, '"id": "T1-again"'),
        item(2, '"gain": NaN'),
        item(3, '"plays": ' + "9" * 40),
        item(4, '"deep": ' + "[" * 40 + "]" * 40),
    ]
    items = [json.dumps(feed.item(0)), *bad, json.dumps(feed.item(5))]
    feed.raw = {0: '{"items": [' + ", ".join(items) + '], "next_cursor": null}'}
    records, _ = read_delivery(feed_partner(feed, pagination={"style": "cursor"}))
    assert [r.track_id for r in records if isinstance(r, CatalogItem)] == ["T0", "T5"]
    invalid = [r for r in records if isinstance(r, InvalidRecord)]
    assert [r.source.rsplit("#", 1)[1] for r in invalid] == [f"/items/{i}" for i in range(1, 5)]
    messages = [r.message for r in invalid]
    for message, fragment in zip(
        messages, ["appears twice", "NaN", "40 digits", "nested more than"], strict=True
    ):
        assert fragment in message, messages
