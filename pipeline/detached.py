"""What the detached local servers (the embedded store, the demo feed) share: a state file
naming the running server, a lock so two starters do not race, a free loopback port."""

from __future__ import annotations

import fcntl
import json
import socket
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_state(state_file: Path) -> dict | None:
    try:
        return json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
