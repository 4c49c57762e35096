"""The embedded MongoDB-wire store: one SecantusDB server process shared by every client.

The CLI and every Airflow task call `ensure_server`; the first starts a detached server
and records its address, the others find it there. A file lock keeps two starters from
racing. The server fsyncs on every commit (`--sync-on-commit`): provenance is the proof
of what entered a corpus, so the embedded default trades write speed for durability.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from pipeline.detached import file_lock, free_port, read_state

START_TIMEOUT_S = 60.0


class EmbeddedStoreError(RuntimeError):
    """The embedded server could not be started or reached; the message names its log."""


def _state_dir(home: Path) -> Path:
    return home / "mongo"


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


def ensure_server(home: Path) -> str:
    """URI of the running embedded server under `home`, starting it if it is not up."""
    state_dir = _state_dir(home)
    state_file = state_dir / "server.json"
    state = read_state(state_file)
    if state and ping(state["uri"]):
        return state["uri"]
    with file_lock(state_dir / "server.lock"):
        state = read_state(state_file)
        if state and ping(state["uri"]):
            return state["uri"]
        return _start(state_dir, state_file)


def _start(state_dir: Path, state_file: Path) -> str:
    port = free_port()
    log_path = state_dir / "server.log"
    command = [
        sys.executable,
        "-m",
        "secantus",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(state_dir / "data"),
        "--sync-on-commit",
        "--log-level",
        "WARNING",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=state_dir,
        )
    uri = _uri(port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedStoreError(
                f"embedded MongoDB-wire server exited with {process.returncode}; see {log_path}"
            )
        if ping(uri, timeout_ms=300):
            state_file.write_text(json.dumps({"uri": uri, "pid": process.pid, "port": port}))
            return uri
        time.sleep(0.2)
    process.kill()
    raise EmbeddedStoreError(f"embedded server did not answer on {uri}; see {log_path}")


def stop_server(home: Path) -> bool:
    """Stop the embedded server under `home`; False when none was running."""
    state_dir = _state_dir(home)
    state_file = state_dir / "server.json"
    with file_lock(state_dir / "server.lock"):
        state = read_state(state_file)
        if not state:
            return False
        try:
            os.kill(state["pid"], signal.SIGTERM)
        except ProcessLookupError:
            state_file.unlink(missing_ok=True)
            return False
        for _ in range(100):
            if not ping(state["uri"], timeout_ms=200):
                break
            time.sleep(0.1)
        state_file.unlink(missing_ok=True)
        return True
