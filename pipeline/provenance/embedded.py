"""The embedded MongoDB-wire store: one SecantusDB server process shared by every client.

The CLI and every Airflow task call `ensure_server`; the first starts a detached server
(`pipeline.detached`) and records its address, the others find it there. The server fsyncs
on every commit (`--sync-on-commit`): provenance is the proof of what entered a corpus, so
the embedded default trades write speed for durability.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from pipeline.detached import DetachedServer, ServerError

START_TIMEOUT_S = 60.0


class EmbeddedStoreError(RuntimeError):
    """The embedded server could not be started or reached; the message names its log."""


def _uri(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


def ping(uri: str, timeout_ms: int = 1000) -> bool:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def secantus_command(port: int, storage: Path, *options: str) -> list[str]:
    """The command line of a SecantusDB server on 127.0.0.1:`port` keeping its data in
    `storage` (the tests' server adds `--enable-test-commands`)."""
    return [
        sys.executable,
        "-m",
        "secantus",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(storage),
        *options,
        "--log-level",
        "WARNING",
    ]


def _server(home: Path) -> DetachedServer:
    folder = home / "mongo"
    return DetachedServer(
        name="embedded MongoDB-wire server",
        folder=folder,
        command=lambda port: secantus_command(port, folder / "data", "--sync-on-commit"),
        address=_uri,
        answers=lambda uri, timeout_s: ping(uri, timeout_ms=int(timeout_s * 1000)),
        start_timeout_s=START_TIMEOUT_S,
    )


def ensure_server(home: Path) -> str:
    """URI of the running embedded server under `home`, starting it if it is not up."""
    folder = home / "mongo"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _server(home).ensure()
    except ServerError as exc:
        raise EmbeddedStoreError(str(exc)) from exc


def stop_server(home: Path) -> bool:
    """Stop the embedded server under `home`; False when none was running."""
    return _server(home).stop()
