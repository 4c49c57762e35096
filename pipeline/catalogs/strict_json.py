"""One partner record of JSON text, parsed so that nothing in it can stop a refresh.

Python's `json` accepts what a record must not carry and raises what a connector does not
expect: it keeps the last of two equal keys (which value the partner meant is ambiguous),
reads `NaN` and `Infinity`, turns a 5,000-digit number into a ValueError and deep nesting
into a RecursionError. `loads_record` refuses all of these, and any other failure, with a
RecordError whose message says what was wrong; the connector makes that one record invalid
and goes on.
"""

from __future__ import annotations

import json
import math

MAX_RECORD_BYTES = 1 << 20  # one manifest line or feed item; a catalogue record is ~1 KiB
MAX_DEPTH = 32  # a record nests a licence, its evidence and a revocation: 4 levels
MAX_INTEGER_DIGITS = 18  # fits int64, so validation (pandas) never overflows


class RecordError(ValueError):
    """One record cannot be read; the message names why, never the record's content."""


def lenient_field(text: str | bytes, name: str) -> object:
    """`name` of a record that `loads_record` refused, read the lenient way, so the refusal
    can name the track it is about; None when even that fails."""
    try:
        value = json.loads(text)
    except Exception:  # noqa: BLE001 - the record is refused anyway
        return None
    return value.get(name) if isinstance(value, dict) else None


class Unreadable:
    """Stands where a value could not be taken as delivered; `problems` reports it."""

    __slots__ = ("why",)

    def __init__(self, why: str):
        self.why = why


def loads_record(text: str | bytes) -> dict:
    """The record as a dict; RecordError for anything else."""
    size = len(text)
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"record of {size} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    value = parse(text.removeprefix("\ufeff"))
    if not isinstance(value, dict):
        raise RecordError(f"a record must be a JSON object, not {type(value).__name__}")
    found = problems(value)
    if found:
        raise RecordError("; ".join(found))
    return value


def parse(text: str, max_depth: int | None = MAX_DEPTH) -> object:
    """JSON whose duplicate keys, NaN/Infinity and out-of-range integers are `Unreadable`
    markers (so one bad item does not spoil a page of them); RecordError when the text as a
    whole is not JSON or nests deeper than `max_depth` (None: as deep as the parser can)."""
    if (
        max_depth is not None
        and text.count("[") + text.count("{") > max_depth
        and _depth(text) > max_depth
    ):
        raise RecordError(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_constant,
            parse_int=_integer,
            parse_float=_float,
        )
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the parser raises is this text's fault
        raise RecordError(f"not readable as JSON: {type(exc).__name__}: {exc}") from None


def problems(value: object) -> list[str]:
    """What is `Unreadable` anywhere inside `value`, and whether it nests too deep."""
    found, pending = [], [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, Unreadable):
            found.append(node.why)
        elif isinstance(node, str) and not is_text(node):
            found.append("a string holds an unpaired surrogate escape (\\udXXX): not text")
        elif isinstance(node, dict | list) and depth >= MAX_DEPTH:
            found.append(f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(node, dict):
            pending.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node)
    return sorted(set(found))


def _depth(text: str) -> int:
    """Deepest nesting of brackets outside strings; cheap, and it runs before the parser."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    record: dict = {}
    for key, value in pairs:
        if key in record:
            value = Unreadable(f"key {key!r} appears twice in one object; which value is meant?")
        record[key] = value
    return record


def _constant(name: str) -> Unreadable:
    return Unreadable(f"{name} is not a JSON number")


def _float(text: str) -> float | Unreadable:
    value = float(text)
    return value if math.isfinite(value) else Unreadable(f"{text} is out of range")


def is_text(value: object) -> bool:
    """False where a string anywhere in `value` cannot be UTF-8 (a lone surrogate from a
    `\\udXXX` escape or an undecodable byte): stored or printed, it would raise."""
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list | tuple):
            pending.extend(node)
    return True


def _integer(digits: str) -> int | Unreadable:
    count = len(digits.lstrip("-"))
    if count > MAX_INTEGER_DIGITS:
        return Unreadable(f"an integer of {count} digits is out of range")
    return int(digits)
