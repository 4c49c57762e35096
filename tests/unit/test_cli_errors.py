"""What the `corpus` command says when a service or the disk fails: one line that names
what failed and what to do, never a traceback."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

from pymongo.errors import NotPrimaryError, WriteConcernError

from pipeline.cli import _explain
from pipeline.storage import StoreError

CORPUS = str(Path(sys.executable).with_name("corpus"))


def test_an_unreachable_mongodb_is_one_line_that_says_what_to_do(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPUS_")}
    env |= {"CORPUS_HOME": str(tmp_path), "CORPUS_MONGO_URI": f"mongodb://127.0.0.1:{port}/t"}
    env["CORPUS_MONGO_RETRY_SECONDS"] = "0"  # a down server is retried for a minute otherwise
    run = subprocess.run([CORPUS, "versions"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    message = " ".join(run.stderr.split())
    assert message.startswith("error: MongoDB failed (ServerSelectionTimeoutError")
    assert "CORPUS_MONGO_URI" in message and "run the command again" in message


def test_each_failure_is_explained_by_what_failed():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/store/shards/x.parquet")
    assert _explain(full).startswith("no space left on the device ([Errno 28]")
    assert "free some space" in _explain(full)
    assert _explain(NotPrimaryError("node is not primary")).startswith(
        "MongoDB failed (NotPrimaryError: node is not primary)"
    )
    concern = WriteConcernError("waiting for replication timed out", 64, {})
    assert "MongoDB failed (WriteConcernError" in _explain(concern)
    assert _explain(StoreError("gs://b/x: 503")).startswith(
        "the object store failed (gs://b/x: 503)"
    )
    assert _explain(ValueError("plain")) == "plain"
