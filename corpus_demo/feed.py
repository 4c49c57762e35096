"""The demo's HTTP feed partner: a small detached JSON feed server, one per delivery folder.

`python -m corpus_demo.feed --root FOLDER --port PORT` serves, on 127.0.0.1 only:

  /v1/tracks?cursor=N  the tracks of FOLDER/catalog.json, PAGE_SIZE a page, as
                       {"data": {"tracks": [...]}, "next_cursor": "N+PAGE_SIZE" or null}
  /audio/NAME          the file FOLDER/audio/NAME
  /health              {"service": ..., "root": FOLDER, "pid": ...}, so a client can tell
                       this server from anything else that took the port

`ensure_feed_server(folder)` is called by `corpus demo-data` and `corpus services start`
(and by tests): the first starts a detached server and records its address in
FOLDER/server.json under a file lock; the others find it there. A server that stopped (a
machine restart, `corpus services stop`) is started again, possibly on another port.
Standard library only (with `pipeline.detached`): the server process imports nothing else.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from pipeline.detached import DetachedServer, ServerError

SERVICE = "corpus-demo-feed"
FEED_PATH = "/v1/tracks"
CATALOG = "catalog.json"
PAGE_SIZE = 2
START_TIMEOUT_S = 30.0
_AUDIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class FeedServerError(RuntimeError):
    """The demo feed server could not be started; the message names its log."""


def _handler(root: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == FEED_PATH:
                self._page(parse_qs(url.query).get("cursor", ["0"])[0])
            elif url.path.startswith("/audio/"):
                self._audio(url.path.removeprefix("/audio/"))
            elif url.path == "/health":
                self._json(200, {"service": SERVICE, "root": str(root), "pid": os.getpid()})
            else:
                self._json(404, {"error": "not found"})

        def _page(self, cursor: str) -> None:
            if not cursor.isdigit():
                return self._json(400, {"error": "bad cursor"})
            tracks = json.loads((root / CATALOG).read_text(encoding="utf-8"))["tracks"]
            start = int(cursor)
            end = start + PAGE_SIZE
            following = str(end) if end < len(tracks) else None
            return self._json(
                200, {"data": {"tracks": tracks[start:end]}, "next_cursor": following}
            )

        def _audio(self, name: str) -> None:
            path = root / "audio" / name
            if not _AUDIO_NAME.match(name) or not path.is_file():
                return self._json(404, {"error": "no such audio"})
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", mimetypes.guess_type(name)[0] or "audio/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def serve(root: Path, port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(root.resolve()))
    server.daemon_threads = True
    server.serve_forever()


def health(url: str, timeout_s: float = 1.0) -> dict | None:
    """The /health answer of a demo feed server at `url`, or None (no proxy: loopback only)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/health", timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) and answer.get("service") == SERVICE else None


def _ours(url: str, root: Path, timeout_s: float = 1.0) -> dict | None:
    answer = health(url, timeout_s)
    return answer if answer and answer.get("root") == str(root) else None


def _server(folder: Path) -> DetachedServer:
    root = folder.resolve()
    return DetachedServer(
        name="demo feed server",
        folder=root,
        command=lambda port: [
            sys.executable,
            "-m",
            "corpus_demo.feed",
            "--root",
            str(root),
            "--port",
            str(port),
        ],
        address=lambda port: f"http://127.0.0.1:{port}",
        answers=lambda url, timeout_s: _ours(url, root, timeout_s) is not None,
        start_timeout_s=START_TIMEOUT_S,
    )


def ensure_feed_server(folder: Path) -> str:
    """Base URL (`http://127.0.0.1:PORT`) of the running feed server of `folder`, which holds
    catalog.json and audio/; starts it when it is not up."""
    try:
        return _server(folder).ensure()
    except ServerError as exc:
        raise FeedServerError(str(exc)) from exc


def stop_feed_server(folder: Path) -> bool:
    """Stop the feed server of `folder`; False when none was running."""
    return _server(folder).stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="folder with catalog.json")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.root, args.port)


if __name__ == "__main__":
    main()
