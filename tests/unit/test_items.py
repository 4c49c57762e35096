"""Item statuses and the one constructor of a refusal."""

from __future__ import annotations

import json

import pytest

from pipeline.items import PENDING, Stage, Status, passed, refused, refused_for
from pipeline.reasons import Reason


def test_statuses_are_stored_and_serialised_as_plain_words():
    assert [s.value for s in Status] == ["licensed", "carried", "analysed", "accepted", "rejected"]
    assert Status.ACCEPTED == "accepted"
    assert json.dumps(refused_for(Stage.AUDIO, Reason.AUDIO_MISSING, "gone")) == json.dumps(
        {
            "status": "rejected",
            "stage": "audio",
            "reasons": ["AUDIO_MISSING"],
            "messages": ["AUDIO_MISSING: gone"],
        }
    )
    assert Status.ACCEPTED not in PENDING


def test_a_refusal_keeps_every_reason_and_opens_each_message_with_a_code():
    fields = refused(
        "licence",
        [Reason.EXPIRED, "TERRITORY_EXCLUDED"],
        ["EXPIRED: ended 2025-01-01", "TERRITORY_EXCLUDED: not in DE", "no code here"],
    )
    assert fields["reasons"] == ["EXPIRED", "TERRITORY_EXCLUDED"]
    assert fields["messages"] == [
        "EXPIRED: ended 2025-01-01",
        "TERRITORY_EXCLUDED: not in DE",
        "EXPIRED: no code here",
    ]
    assert passed(Status.ANALYSED, Stage.AUDIO) == {
        "status": "analysed",
        "stage": "audio",
        "reasons": [],
        "messages": [],
    }


def test_a_refusal_without_a_known_reason_or_stage_is_a_programming_error():
    with pytest.raises(ValueError):
        refused(Stage.AUDIO, [], [])
    with pytest.raises(ValueError):
        refused_for(Stage.AUDIO, "NOT_A_CODE", "x")
    with pytest.raises(ValueError):
        refused_for("nowhere", Reason.AUDIO_MISSING, "x")
