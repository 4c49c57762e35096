from pipeline.licensing import Policy
from pipeline.reasons import MEANINGS, Reason


def test_policy_hash_is_stable_and_sensitive():
    assert Policy().hash == Policy().hash
    assert Policy().hash != Policy(territories=["DE"]).hash


def test_every_reason_has_a_meaning_and_is_documented():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert set(MEANINGS) == set(Reason)
    for reason in Reason:
        assert f"| `{reason}` | {reason.meaning} |" in readme
