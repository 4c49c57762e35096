"""What an item is within one version: the status it has reached, the stage that gave it,
and the one way a refusal is written down. Plain values, no I/O.

A status is a `str` (StrEnum), so it is stored, compared and serialised as the plain word.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pipeline.reasons import Reason


class Status(StrEnum):
    """Item statuses within one version, in the order an item moves through them."""

    LICENSED = "licensed"  # admitted by the licence decision, audio not yet looked at
    CARRIED = "carried"  # unchanged since the parent version: its row is reused
    ANALYSED = "analysed"  # audio passed fetch, decode and quality gate; waiting for a shard
    ACCEPTED = "accepted"  # in a shard of this version
    REJECTED = "rejected"


PENDING = (Status.LICENSED, Status.CARRIED, Status.ANALYSED)


class Stage(StrEnum):
    """The step that gave an item its status."""

    CATALOG = "catalog"  # the record could not be read
    LICENCE = "licence"
    AUDIO = "audio"
    DEDUP = "dedup"
    SHARD = "shard"
    CARRIED = "carried"  # reused from the parent version's shard
    TAKEDOWN = "takedown"


def refused(stage: Stage | str, reasons: Sequence[Reason | str], messages: Sequence[str]) -> dict:
    """The fields that record a refusal at `stage`: every reason code, and one message each
    opening with its code (a message that does not is given the first reason's)."""
    codes = [Reason(r).value for r in reasons]
    if not codes:
        raise ValueError("a refusal needs at least one reason")
    opened = [m if m.startswith(tuple(codes)) else f"{codes[0]}: {m}" for m in messages]
    return {
        "status": Status.REJECTED,
        "stage": Stage(stage),
        "reasons": codes,
        "messages": opened,
    }


def refused_for(stage: Stage | str, reason: Reason | str, message: str) -> dict:
    """A refusal for one reason."""
    return refused(stage, [reason], [message])


def passed(status: Status, stage: Stage | str) -> dict:
    """The fields of an item that reached `status` at `stage` with nothing against it."""
    return {"status": Status(status), "stage": Stage(stage), "reasons": [], "messages": []}
