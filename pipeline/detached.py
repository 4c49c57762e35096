"""Detached local servers (the embedded store, the demo's feed): one process per folder,
started by whichever client needs it first and shared by all the others.

The folder holds `server.json` (address and pid of the running server), `server.lock` (so
two starters do not race) and `server.log`. A server is only signalled when it answers as
the folder's own or its process's command line names the folder, never by a pid alone,
which may have been reused; one that runs without answering is never started twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
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


class ServerError(RuntimeError):
    """A detached server could not be started; the message names its log."""


@dataclass(frozen=True)
class DetachedServer:
    """How to run one kind of server from `folder`: the command for a port, the address
    clients use, and whether the server at an address answers as this folder's."""

    name: str
    folder: Path
    command: Callable[[int], list[str]]
    address: Callable[[int], str]
    answers: Callable[[str, float], bool]
    start_timeout_s: float = 60.0
    attempts: int = 3  # another process may take the free port before the server binds it

    @property
    def state_file(self) -> Path:
        return self.folder / "server.json"

    def _recorded(self) -> dict:
        """The state file; one written before servers shared this module names its address
        `uri` or `url`, and its server must still be found, not started a second time."""
        state = read_state(self.state_file) or {}
        address = state.get("address") or state.get("uri") or state.get("url")
        return {**state, "address": address} if address else {}

    def running(self) -> str | None:
        address = self._recorded().get("address")
        return address if address and self.answers(address, 1.0) else None

    def ensure(self) -> str:
        """The address of the running server, started when it is not up. A server of this
        folder that runs but does not answer (busy, or hung) is waited for, never doubled."""
        if address := self.running():
            return address
        with file_lock(self.folder / "server.lock"):
            if address := self.running():
                return address
            state = self._recorded()
            if state and self._alive_as_ours(state.get("pid")):
                deadline = time.monotonic() + self.start_timeout_s
                while time.monotonic() < deadline:
                    if self.answers(state["address"], 1.0):
                        return state["address"]
                    time.sleep(0.5)
                raise ServerError(
                    f"{self.name} (pid {state['pid']}) runs but does not answer on "
                    f"{state['address']}; stop it and try again"
                )
            return self._start()

    def _alive_as_ours(self, pid: int | None) -> bool:
        """Process `pid` runs and its command line names this folder (a pid alone may have
        been reused by another program since)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, TypeError):
            return False
        return str(self.folder).encode() in cmdline

    def _start(self) -> str:
        log_path = self.folder / "server.log"
        for _ in range(self.attempts):
            port = free_port()
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    self.command(port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=self.folder,
                )
            address = self.address(port)
            deadline = time.monotonic() + self.start_timeout_s
            while process.poll() is None and time.monotonic() < deadline:
                if self.answers(address, 0.3):
                    state = {"address": address, "pid": process.pid, "port": port}
                    self.state_file.write_text(json.dumps(state))
                    return address
                time.sleep(0.1)
            if process.poll() is None:
                process.kill()
                raise ServerError(f"{self.name} did not answer on {address}; see {log_path}")
        raise ServerError(f"{self.name} exited with {process.returncode}; see {log_path}")

    def stop(self) -> bool:
        """Stop the server; False when none was running."""
        if not self.state_file.is_file():
            return False
        with file_lock(self.folder / "server.lock"):
            state = self._recorded()
            ours = bool(state) and (
                self.answers(state["address"], 1.0) or self._alive_as_ours(state.get("pid"))
            )
            if ours:
                try:
                    os.kill(state["pid"], signal.SIGTERM)
                except ProcessLookupError:
                    ours = False
                deadline = time.monotonic() + 30
                while ours and time.monotonic() < deadline:
                    if not self._alive_as_ours(state["pid"]):
                        break
                    time.sleep(0.1)
            self.state_file.unlink(missing_ok=True)
            return ours
