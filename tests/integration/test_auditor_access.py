"""Auditors read with a read-only MongoDB user; writes under it fail with a clear message."""

import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from pymongo import MongoClient

from pipeline.config import Settings
from pipeline.provenance.embedded import ping
from pipeline.refresh import run_refresh
from tests.fixtures.mongo import stop

CORPUS = str(Path(sys.executable).with_name("corpus"))
DB = "corpus_audited"


def _serve(data: Path, port: int, auth: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
               "--storage-path", str(data), "--log-level", "WARNING"]
    process = subprocess.Popen([*command, *(["--auth"] if auth else [])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not ping(f"mongodb://127.0.0.1:{port}/?directConnection=true", timeout_ms=300):
        assert process.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    return process


@pytest.fixture
def authenticated_server(tmp_path):
    """Users are created on a run without auth, then the same storage is served with auth."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path / "db"
    setup = _serve(data, port, auth=False)
    client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true")
    db = client[DB]
    db.command("createUser", "pipeline", pwd="pipeline-pw", roles=[{"role": "readWrite", "db": DB}])
    db.command("createUser", "auditor", pwd="auditor-pw", roles=[{"role": "read", "db": DB}])
    client.close()
    setup.terminate()
    setup.wait(timeout=120)  # the same storage is served again next: let it flush
    server = _serve(data, port, auth=True)
    base = f"127.0.0.1:{port}/{DB}?authSource={DB}&directConnection=true"
    yield {"writer": f"mongodb://pipeline:pipeline-pw@{base}",
           "auditor": f"mongodb://auditor:auditor-pw@{base}"}
    stop(server)


def test_read_only_auditor(corpus_env, authenticated_server, monkeypatch):
    monkeypatch.setenv("CORPUS_MONGO_URI", authenticated_server["writer"])
    result = run_refresh(Settings.from_env(), as_of=date(2026, 11, 20), run_id="audited")

    env = {**os.environ, "CORPUS_MONGO_URI": authenticated_server["auditor"]}

    def corpus(*args):
        return subprocess.run([CORPUS, *args], capture_output=True, text=True, env=env,
                              timeout=300)

    traced = corpus("trace", "demo-label:DL013")
    assert traced.returncode == 0 and "USE_NOT_GRANTED" in traced.stdout
    verified = corpus("verify", "--version", result["version"])
    assert verified.returncode == 0 and "OK" in verified.stdout
    refused = corpus("revoke", "--partner", "demo-label", "--track", "DL001", "--reason", "x")
    assert refused.returncode == 1
    assert "may not do this" in refused.stderr and "not authorized" in refused.stderr.lower()
    anonymous = MongoClient(authenticated_server["auditor"].replace("auditor:auditor-pw@", ""))
    with pytest.raises(Exception, match="(?i)auth"):
        anonymous[DB].decisions.find_one()
