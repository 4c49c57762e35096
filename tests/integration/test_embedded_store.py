"""The embedded store is ONE server process shared by every client process."""

import subprocess
import sys

from pymongo import MongoClient

from pipeline.provenance.embedded import ensure_server, ping, stop_server

CLIENT = (
    "import sys; from pathlib import Path;"
    "from pipeline.provenance.embedded import ensure_server;"
    "print(ensure_server(Path(sys.argv[1])))"
)


def test_concurrent_clients_share_one_durable_server(tmp_path):
    home = tmp_path / "home"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(home)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    uris = {p.communicate(timeout=120)[0].strip() for p in procs}
    try:
        assert len(uris) == 1
        uri = uris.pop()
        assert ensure_server(home) == uri
        MongoClient(uri).corpus.probe.insert_one({"_id": 1})
        assert stop_server(home)
        assert not ping(uri)
        restarted = ensure_server(home)
        assert MongoClient(restarted).corpus.probe.find_one({"_id": 1}) == {"_id": 1}
    finally:
        stop_server(home)
    assert not stop_server(home)
