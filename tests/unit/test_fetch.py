"""Fetch checks the delivered checksums (sha256 and a `hash_sum`) against what it reads."""

import hashlib

import pytest
from pydantic import ValidationError

from pipeline.audio.fetch import FetchError, fetch
from pipeline.catalogs.models import HashSum
from pipeline.reasons import Reason
from pipeline.refresh.common import row_hash

DATA = b"delivered audio bytes" * 50


@pytest.fixture
def track(tmp_path):
    path = tmp_path / "t.flac"
    path.write_bytes(DATA)
    return path


def test_a_matching_md5_hash_sum_is_accepted(track):
    md5 = hashlib.md5(DATA).hexdigest()
    fetched = fetch(str(track), None, 10_000, hash_sum={"algorithm": "md5", "value": md5})
    assert fetched.data == DATA and fetched.sha256 == hashlib.sha256(DATA).hexdigest()
    upper = {"algorithm": "md5", "value": md5.upper()}
    assert fetch(str(track), None, 10_000, hash_sum=upper).data == DATA


def test_a_wrong_md5_hash_sum_is_a_checksum_mismatch(track):
    wrong = "0" * 32
    with pytest.raises(FetchError) as failed:
        fetch(str(track), None, 10_000, hash_sum={"algorithm": "md5", "value": wrong})
    assert failed.value.reason == Reason.AUDIO_CHECKSUM_MISMATCH
    message = str(failed.value)
    assert "md5" in message and wrong in message and hashlib.md5(DATA).hexdigest() in message


def test_sha256_and_hash_sum_are_both_checked(track):
    sha1 = {"algorithm": "sha1", "value": hashlib.sha1(DATA).hexdigest()}
    with pytest.raises(FetchError) as failed:
        fetch(str(track), "f" * 64, 10_000, hash_sum=sha1)
    assert failed.value.reason == Reason.AUDIO_CHECKSUM_MISMATCH and "sha256" in str(failed.value)
    sha256 = hashlib.sha256(DATA).hexdigest()
    assert fetch(str(track), sha256, 10_000, hash_sum=sha1).sha256 == sha256


def test_a_missing_file_with_a_hash_sum_is_missing(tmp_path):
    with pytest.raises(FetchError) as failed:
        fetch(
            str(tmp_path / "gone.flac"),
            None,
            10_000,
            hash_sum={"algorithm": "md5", "value": "0" * 32},
        )
    assert failed.value.reason == Reason.AUDIO_MISSING


def test_hash_sum_values_must_fit_their_algorithm():
    assert HashSum(algorithm="sha512", value="a" * 128).value == "a" * 128
    with pytest.raises(ValidationError, match="md5 digest has 32 hex digits"):
        HashSum(algorithm="md5", value="a" * 64)
    with pytest.raises(ValidationError):
        HashSum(algorithm="crc32", value="a" * 8)
    with pytest.raises(ValidationError):
        HashSum(algorithm="md5", value="A" * 32)


def test_a_changed_hash_sum_changes_the_row_hash_and_none_changes_nothing():
    record = {"item_key": "p:t", "title": "T", "artists": ["A"], "license": {"id": "CC0-1.0"}}
    md5 = {"algorithm": "md5", "value": "0" * 32}
    assert row_hash({**record, "hash_sum": None}) == row_hash(record)
    assert row_hash({**record, "hash_sum": md5}) != row_hash(record)
    assert row_hash({**record, "hash_sum": md5}) != row_hash(
        {**record, "hash_sum": {**md5, "value": "1" * 32}}
    )
