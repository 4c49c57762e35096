"""One contract for every ObjectStore, run against a local folder and a real GCS emulator.

Needs the ``gcs_uri`` fixture from ``tests.fixtures.gcs`` registered in ``tests/conftest.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import google_crc32c
import pytest

from pipeline.storage import (
    GCSStore,
    LocalStore,
    ObjectExists,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StoredObject,
    StoreError,
    open_store,
)
from pipeline.storage.gcs import SINGLE_REQUEST_LIMIT, client_from_env
from pipeline.storage.local import TMP_PREFIX

BIG = SINGLE_REQUEST_LIMIT + 1024  # goes through the resumable-upload path on GCS

BAD_KEYS = [
    "",
    "/abs/path.parquet",
    "a/../b",
    "..",
    "./a",
    "a//b",
    "a/",
    "a\\b",
    "C:\\partner\\x.wav",
    "a\nb",
    "x" * 1025,
]
ODD_BUT_VALID_KEYS = [
    "partner one/Track 01 (final).wav",
    "ünïcødé/曲.flac",
    ".hidden/..not-dotdot",
    "a:b/c=d&e?f#g",
]


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


@pytest.fixture(params=["local", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return GCSStore(request.getfixturevalue("gcs_uri"))


class TestObjectStoreContract:
    """What every backend must do; anything backend-specific lives further down."""

    @pytest.mark.parametrize("data", [b"", b"hello", os.urandom(300_000)], ids=len)
    def test_round_trip(self, store: ObjectStore, data: bytes) -> None:
        store.put("shards/x.parquet", data)
        assert store.get("shards/x.parquet") == data

    def test_a_size_limit_is_checked_before_the_bytes_are_read(self, store: ObjectStore) -> None:
        data = os.urandom(10_000)
        store.put("audio/a.flac", data)
        assert store.get("audio/a.flac", max_bytes=10_000) == data
        with pytest.raises(ObjectTooLarge, match="audio/a.flac"):
            store.get("audio/a.flac", max_bytes=9_999)
        with pytest.raises(ObjectNotFound, match="audio/none.flac"):
            store.get("audio/none.flac", max_bytes=10)

    def test_an_object_says_when_it_was_written(self, store: ObjectStore) -> None:
        before = datetime.now(UTC) - timedelta(minutes=1)
        stored = store.put("shards/t.parquet", b"xyz")
        info = store.info("shards/t.parquet")
        assert before <= info.created <= datetime.now(UTC) + timedelta(minutes=1)
        assert info.size == 3 and info.crc32c in (stored.crc32c, None)
        with pytest.raises(ObjectNotFound, match="shards/none.parquet"):
            store.info("shards/none.parquet")

    def test_stored_object_fields(self, store: ObjectStore) -> None:
        data = os.urandom(4096)
        stored = store.put("shards/a.parquet", data, content_type="application/vnd.apache.parquet")
        assert stored == StoredObject(
            key="shards/a.parquet",
            size=4096,
            crc32c=crc32c_b64(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        assert len(base64.b64decode(stored.crc32c, validate=True)) == 4
        assert store.stat("shards/a.parquet") == stored

    def test_stat_missing(self, store: ObjectStore) -> None:
        with pytest.raises(ObjectNotFound, match="nope.json"):
            store.stat("nope.json")

    @pytest.mark.parametrize("size", [5, BIG], ids=["single-request", "resumable"])
    def test_write_once(self, store: ObjectStore, size: int) -> None:
        original = os.urandom(size)
        store.put("versions/1/manifest.json", original)
        with pytest.raises(ObjectExists) as excinfo:
            store.put("versions/1/manifest.json", b"t" * size)
        assert store.url("versions/1/manifest.json") in str(excinfo.value)
        assert store.get("versions/1/manifest.json") == original

    def test_racing_writers_exactly_one_wins(self, store: ObjectStore) -> None:
        writers = 6
        barrier = threading.Barrier(writers)
        won: list[bytes] = []
        lost: list[Exception] = []

        def write(data: bytes) -> None:
            own = open_store(store.uri)
            barrier.wait()
            try:
                own.put("race.bin", data)
                won.append(data)
            except ObjectExists as exc:
                lost.append(exc)

        threads = [
            threading.Thread(target=write, args=(bytes([i]) * 1000,)) for i in range(writers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(lost) == writers - 1
        assert store.get("race.bin") == won[0]

    def test_exists(self, store: ObjectStore) -> None:
        assert not store.exists("a/b.txt")
        store.put("a/b.txt", b"x")
        assert store.exists("a/b.txt")
        assert not store.exists("a")

    def test_delete_is_for_gc(self, store: ObjectStore) -> None:
        store.put("gc/x", b"1")
        store.delete("gc/x")
        assert not store.exists("gc/x")
        with pytest.raises(ObjectNotFound):
            store.delete("gc/x")
        store.put("gc/x", b"2")
        assert store.get("gc/x") == b"2"

    def test_missing_object(self, store: ObjectStore) -> None:
        with pytest.raises(ObjectNotFound, match="missing/file.bin"):
            store.get("missing/file.bin")

    def test_list(self, store: ObjectStore) -> None:
        keys = ["b/4", "a/2", "ab/3", "a/1", "a/sub/5", "top"]
        for key in keys:
            store.put(key, key.encode())
        assert store.list() == sorted(keys)
        assert store.list("a/") == ["a/1", "a/2", "a/sub/5"]
        assert store.list("a") == ["a/1", "a/2", "a/sub/5", "ab/3"]
        assert store.list("a/sub/") == ["a/sub/5"]
        assert store.list("zzz") == []
        assert store.list("nothing/here/") == []

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_rejected(self, store: ObjectStore, key: str) -> None:
        for call in (
            lambda: store.put(key, b"x"),
            lambda: store.get(key),
            lambda: store.exists(key),
            lambda: store.stat(key),
            lambda: store.url(key),
        ):
            with pytest.raises(ValueError, match="invalid object key") as excinfo:
                call()
            assert repr(key)[:40] in str(excinfo.value)
        assert store.list() == []

    @pytest.mark.parametrize("prefix", ["/abs", "../", "a//", "a\\"])
    def test_bad_list_prefix_rejected(self, store: ObjectStore, prefix: str) -> None:
        with pytest.raises(ValueError, match="invalid key prefix"):
            store.list(prefix)

    @pytest.mark.parametrize("key", ODD_BUT_VALID_KEYS)
    def test_odd_but_valid_keys(self, store: ObjectStore, key: str) -> None:
        store.put(key, b"odd")
        assert store.get(key) == b"odd"
        assert store.list() == [key]

    def test_url_and_uri(self, store: ObjectStore) -> None:
        store.put("shards/s.parquet", b"PAR1")
        url = store.url("shards/s.parquet")
        assert url == f"{store.uri}/shards/s.parquet"
        if isinstance(store, LocalStore):
            assert os.path.isabs(store.uri)
            assert Path(url).read_bytes() == b"PAR1"
        else:
            bucket, _, name = url.removeprefix("gs://").partition("/")
            assert client_from_env().bucket(bucket).blob(name).download_as_bytes() == b"PAR1"


class TestGCSStore:
    def test_server_enforces_write_once(self, gcs_uri: str) -> None:
        """Upload path alone, no exists() pre-check: the 412 must come from the server."""
        from google.api_core.exceptions import PreconditionFailed

        store = GCSStore(gcs_uri)
        store.put("k.json", b"original")
        blob = store._bucket.blob(store._name("k.json"))
        with pytest.raises(ObjectExists) as excinfo:
            store._upload(blob, "k.json", b"intruder", "application/json")
        assert isinstance(excinfo.value.__cause__, PreconditionFailed)
        assert store.get("k.json") == b"original"

    def test_emulator_ignores_precondition_on_resumable_upload(self, gcs_uri: str) -> None:
        """Canary for the fake-gcs-server quirk that makes put() pre-check big objects.

        If this starts failing, the emulator was fixed and the pre-check can go.
        """
        store = GCSStore(gcs_uri)
        blob = store._bucket.blob(store._name("big.bin"))
        blob.upload_from_string(b"a" * BIG, if_generation_match=0)
        blob.upload_from_string(b"b" * BIG, if_generation_match=0)
        assert store.get("big.bin")[:1] == b"b"

    def test_single_request_limit_matches_library(self) -> None:
        from google.cloud.storage import blob

        assert SINGLE_REQUEST_LIMIT == blob._MAX_MULTIPART_SIZE

    def test_metadata_and_content_type(self, gcs_uri: str) -> None:
        store = GCSStore(gcs_uri)
        stored = store.put("m.parquet", b"PAR1", content_type="application/vnd.apache.parquet")
        blob = store._bucket.get_blob(store._name("m.parquet"))
        assert blob.content_type == "application/vnd.apache.parquet"
        assert blob.metadata == {"sha256": stored.sha256}
        assert blob.crc32c == stored.crc32c

    def test_stat_hashes_objects_written_by_other_tools(self, gcs_uri: str) -> None:
        store = GCSStore(gcs_uri)
        store._bucket.blob(store._name("foreign.bin")).upload_from_string(b"foreign")
        assert store.stat("foreign.bin").sha256 == hashlib.sha256(b"foreign").hexdigest()

    def test_missing_bucket_is_a_store_error(self, gcs_uri: str) -> None:
        store = GCSStore("gs://no-such-bucket/p")
        with pytest.raises(StoreError, match="gs://no-such-bucket/p/k") as excinfo:
            store.put("k", b"x")
        assert not isinstance(excinfo.value, ObjectExists)

    @pytest.mark.parametrize(
        "uri", ["s3://b/p", "gs://", "gs://B/p", "gs://b/../p", "gs://bucket/a//b"]
    )
    def test_bad_uri(self, uri: str) -> None:
        with pytest.raises(ValueError):
            GCSStore(uri)

    def test_root_uri_forms(self) -> None:
        assert GCSStore("gs://bkt").uri == "gs://bkt"
        assert GCSStore("gs://bkt/").url("a/b") == "gs://bkt/a/b"
        assert GCSStore("gs://bkt/p/q/").uri == "gs://bkt/p/q"
        assert GCSStore("gs://bkt/p/q").url("a") == "gs://bkt/p/q/a"


_CHILD = """
import json, resource, signal, sys
from pipeline.storage import LocalStore, StoreError
if sys.argv[2] == "kill":
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    LocalStore(sys.argv[1]).put("shards/big.parquet", b"x" * 1_000_000)
except StoreError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def _crashing_writer(root: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), mode], capture_output=True, text=True, timeout=60
    )


class TestLocalStore:
    def test_killed_writer_leaves_no_object(self, tmp_path: Path) -> None:
        """The file-size limit makes the kernel kill the writer (SIGXFSZ) mid-write."""
        proc = _crashing_writer(tmp_path, "kill")
        assert proc.returncode == -signal.SIGXFSZ, proc.stderr
        store = LocalStore(tmp_path)
        assert not store.exists("shards/big.parquet")
        assert store.list() == []
        leftovers = list((tmp_path / "shards").glob(f"{TMP_PREFIX}*"))
        assert [p.stat().st_size for p in leftovers] == [65536]
        store.put("shards/big.parquet", b"retry")
        assert store.get("shards/big.parquet") == b"retry"

    def test_failed_write_cleans_up(self, tmp_path: Path) -> None:
        proc = _crashing_writer(tmp_path, "fail")
        assert proc.returncode == 0, proc.stderr
        error = json.loads(proc.stdout)["error"]
        assert str(tmp_path / "shards" / "big.parquet") in error
        assert list(tmp_path.rglob("*")) == [tmp_path / "shards"]

    def test_reserved_temp_names_rejected(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="reserved"):
            LocalStore(tmp_path).put(f"a/{TMP_PREFIX}x", b"x")

    def test_key_under_an_object_is_a_store_error(self, tmp_path: Path) -> None:
        store = LocalStore(tmp_path)
        store.put("a", b"x")
        with pytest.raises(StoreError, match="could not write"):
            store.put("a/b", b"y")
        store.put("c/d", b"y")
        with pytest.raises(StoreError, match="folder"):
            store.put("c", b"z")

    def test_relative_root_is_made_absolute(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        store = LocalStore("rel/store")
        assert store.uri == str(tmp_path.resolve() / "rel" / "store")


class TestOpenStore:
    def test_picks_backend_from_location(self, tmp_path: Path) -> None:
        gcs = open_store("gs://bkt/corpora/v1")
        assert isinstance(gcs, GCSStore) and gcs.uri == "gs://bkt/corpora/v1"
        local = open_store(str(tmp_path / "s"))
        assert isinstance(local, LocalStore) and local.uri == str(tmp_path / "s")

    def test_env_corpus_store(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CORPUS_STORE", "gs://bkt/from-env")
        assert open_store().uri == "gs://bkt/from-env"

    def test_env_corpus_home(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CORPUS_STORE", raising=False)
        monkeypatch.setenv("CORPUS_HOME", str(tmp_path / "home"))
        assert open_store().uri == str(tmp_path / "home" / "store")

    def test_default_is_dot_corpus_in_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CORPUS_STORE", raising=False)
        monkeypatch.delenv("CORPUS_HOME", raising=False)
        monkeypatch.chdir(tmp_path)
        assert open_store().uri == str(tmp_path.resolve() / ".corpus" / "store")

    def test_import_does_not_load_gcs_library(self) -> None:
        code = (
            "import sys, pipeline.storage as s; s.open_store('gs://bkt/p').url('k');"
            "print([m for m in sys.modules if m.startswith('google.cloud')])"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]"
