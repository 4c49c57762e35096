"""Revocations as `corpus revoke` builds them, and as a refresh applies them to licences."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.licensing.model import License
from pipeline.licensing.revocations import (
    apply_revocations,
    describe,
    new_revocation,
    subject,
)


def test_a_revocation_names_a_track_or_a_licence_never_both():
    track = new_revocation("label", "T1", None, "artist request", "rights", date(2026, 5, 1))
    assert track["effective"] == "2026-05-01"
    assert (subject(track), describe(track)) == ("label:T1", "track label:T1")
    licence = new_revocation("label", None, "LR-1", "contract ended", "rights", date(2026, 5, 1))
    assert (subject(licence), describe(licence)) == ("licence:label:LR-1", "licence LR-1 of label")
    with pytest.raises(ValueError, match="exactly one of --track or --license"):
        new_revocation("label", "T1", "LR-1", "x", "rights", date(2026, 5, 1))
    with pytest.raises(ValueError, match="must not be empty"):
        new_revocation("label", "T1", None, "  ", "rights", date(2026, 5, 1))


def test_the_earliest_matching_revocation_is_applied_from_its_date():
    licence = License.model_validate({"id": "CC0-1.0", "territories": ["Worldwide"]})
    later = new_revocation("label", "T1", None, "second", "ann", date(2026, 6, 1))
    earlier = new_revocation("label", None, "CC0-1.0", "first", "bob", date(2026, 5, 1))
    other = new_revocation("other", "T1", None, "not ours", "cy", date(2026, 1, 1))
    revoked = apply_revocations(licence, "label", "T1", [later, earlier, other]).revoked
    assert revoked.date == date(2026, 5, 1)
    assert revoked.reason == "first (revoked by bob)"
    assert apply_revocations(licence, "label", "T2", [later]) == licence
