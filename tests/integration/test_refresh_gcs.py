"""A refresh written to a gs:// store (fake-gcs-server) reads back through the same interface."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.storage import GCSStore
from tests.oracle import expected_counts


def test_refresh_to_gcs_reads_back(corpus_env, gcs_uri, monkeypatch):
    monkeypatch.setenv("CORPUS_STORE", gcs_uri)
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("corpus")),
            "refresh",
            "--json",
            "--as-of",
            "2026-11-20",
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    store = GCSStore(gcs_uri)
    manifest = json.loads(store.get(f"versions/{result['version']}/manifest.json"))
    accepted, _ = expected_counts()
    keys = []
    for shard in manifest["shards"]:
        data = store.get(shard["path"])
        stat = store.stat(shard["path"])
        assert (stat.size, stat.crc32c, stat.sha256) == (
            shard["bytes"],
            shard["crc32c"],
            shard["sha256"],
        )
        keys += pq.read_table(io.BytesIO(data)).column("item_key").to_pylist()
    assert sorted(keys) == sorted(accepted)
    assert manifest["counts"]["rows"] == len(accepted)
