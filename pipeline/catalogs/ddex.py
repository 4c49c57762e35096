"""DDEX ERN connector: NewReleaseMessage / PurgeReleaseMessage (ERN 3.4.1-3.8.x, 4.1-4.3).

Each sound recording becomes one manifest record keyed by its ISRC:

- title and display artists (4.x: `DisplayTitleText`, `DisplayArtist/ArtistPartyReference`
  resolved through `PartyList`; 3.x: `ReferenceTitle`, `SoundRecordingDetailsByTerritory/
  DisplayArtist/PartyName`);
- audio: 4.x `SoundRecordingEdition/TechnicalDetails/DeliveryFile/File/URI` (4.1/4.2 without
  the edition level), 3.x `TechnicalSoundRecordingDetails/File/FilePath+FileName`; clips and
  previews are skipped. A reference is resolved from the message's folder (else from the
  delivery root, whichever holds the file: a stat, or a listed object's metadata) and must
  stay inside the delivery. No audio is read here, local or `gs://`: an item the licence
  refuses is never opened. The file's `HashSum` (MD5, SHA-1 or SHA-2, hex or base64) is
  carried instead: a SHA-256 one as the record's `sha256`, the others as `hash_sum`
  (`algorithm`, hex `value`); the fetch stage checks it against the bytes it reads, so a
  mismatch is `AUDIO_CHECKSUM_MISMATCH` and a missing file `AUDIO_MISSING`, both only for
  items the licence admits. A HashSum in an algorithm not listed makes the record invalid.
- licence, from the deals reaching the recording (the rules are in `ddex_deals.py`; the
  XML streaming in `ddex_xml.py`).

The delivery is a folder, a `gs://` prefix, or a single message (file or object).
Messages (`**/*.xml`) are read in path order (DDEX batch folders are named by time); a later
message replaces what an earlier one said about a recording, and a PurgeReleaseMessage
revokes the recordings of the releases it names. Parsing is streamed (iterparse, each list
item dropped once read) with defusedxml and no DTD at all: no entity expansion, no external
entities, no network. A malformed message or a broken recording becomes an InvalidRecord
naming the file and the XML path; the rest go on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO

from pipeline.catalogs.ddex_deals import licence_for, releases_by_resource, terms_by_resource
from pipeline.catalogs.ddex_xml import Message, MessageError, parse_message
from pipeline.catalogs.location import Delivery, DeliveryFile, open_delivery
from pipeline.catalogs.models import InvalidRecord, RawRecord
from pipeline.catalogs.partners import DdexMapping

OPTIONS = ("mapping",)

HASHES = {"MD5": "md5", "SHA1": "sha1", "SHA224": "sha224", "SHA256": "sha256"}
HASHES |= {"SHA384": "sha384", "SHA512": "sha512"}
SHA2_BY_HEX = {56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}


@dataclass
class Pending:
    """A record read from a message; a later message or a purge may still change it."""

    data: dict
    source: str
    release_ids: set[str]


def read(
    partner: str, location: str, mapping: DdexMapping | None = None
) -> Iterator[RawRecord | InvalidRecord]:
    """One record per sound recording across the delivery's messages, latest message wins."""
    mapping = mapping or DdexMapping()
    delivery = open_delivery(location, "ddex")
    messages = delivery.files(mapping.files)
    if not messages:
        raise FileNotFoundError(
            f"{delivery.root}: no message matches {mapping.files!r}; nothing delivered?"
        )
    state: dict[str, Pending | InvalidRecord] = {}
    for file in messages:
        try:
            message = _parse(delivery, file)
            if message.kind == "PurgeReleaseMessage":
                _purge(state, message, file)
                continue
            found = _by_identifier(_records(partner, delivery, file, message, mapping))
        except MessageError as exc:
            key = f"#{file.name}"
            state[key] = _invalid(partner, key, f"{file.location}#{exc.path}", str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one unusable message, the others go on
            key = f"#{file.name}"
            problem = f"message cannot be read: {type(exc).__name__}: {exc}"[:500]
            state[key] = _invalid(partner, key, f"{file.location}#/", problem)
            continue
        for track_id, results in found.items():
            if len(results) == 1:
                state[track_id] = results[0]
                continue
            for index, result in enumerate(results):
                key = track_id if index == 0 else f"#{file.name}{result.source.partition('#')[2]}"
                state[key] = _invalid(partner, key, result.source, _ambiguous(track_id, results))
    for number, result in enumerate(state.values(), start=1):
        if isinstance(result, InvalidRecord):
            yield result
            continue
        yield RawRecord(
            partner=partner, root=delivery.root, source=result.source, line=number, data=result.data
        )


def _by_identifier(records) -> dict[str, list[Pending | InvalidRecord]]:
    found: dict[str, list[Pending | InvalidRecord]] = {}
    for track_id, result in records:
        found.setdefault(track_id, []).append(result)
    return found


def _ambiguous(track_id: str, results: list[Pending | InvalidRecord]) -> str:
    paths = ", ".join(r.source.partition("#")[2] for r in results)
    return (
        f"{len(results)} SoundRecordings in this message carry the identifier {track_id} "
        f"({paths}); which one it names is ambiguous, so none is taken"
    )


def _parse(delivery: Delivery, file: DeliveryFile) -> Message:
    """The message's facts; its location and sha256 become the evidence of its deals."""
    try:
        with delivery.open(file.location) as handle:
            hashing = _Hashing(handle)
            message = parse_message(hashing)
    except OSError as exc:
        raise MessageError(f"cannot read message: {exc.strerror or exc}", "/") from None
    message.evidence = {"uri": file.location, "sha256": hashing.digest.hexdigest()}
    return message


class _Hashing(io.RawIOBase):
    """A binary stream that hashes what the parser reads through it."""

    def __init__(self, inner: IO[bytes]):
        self.inner = inner
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _records(
    partner: str, delivery: Delivery, file: DeliveryFile, message: Message, mapping: DdexMapping
) -> Iterator[tuple[str, Pending | InvalidRecord]]:
    for xpath, problem in message.broken:
        track_id = f"#{file.name}{xpath}"
        yield track_id, _invalid(partner, track_id, f"{file.location}#{xpath}", problem)
    terms = terms_by_resource(partner, message, mapping)
    releases_of = releases_by_resource(message)
    for recording in message.recordings:
        source = f"{file.location}#{recording.path}"
        try:
            yield from _recording_record(
                partner, delivery, file, message, recording, terms, releases_of
            )
        except Exception as exc:  # noqa: BLE001 - one unusable recording, the rest go on
            track_id = f"#{file.name}{recording.path}"
            problem = f"SoundRecording cannot be read: {type(exc).__name__}: {exc}"[:500]
            yield track_id, _invalid(partner, track_id, source, problem)


def _recording_record(partner, delivery, file, message, recording, terms, releases_of):
    """(track id, Pending or InvalidRecord) for one sound recording of a message."""
    source = f"{file.location}#{recording.path}"
    track_id = recording.isrc or recording.proprietary
    if not track_id:
        track_id = f"#{file.name}{recording.path}"
        yield track_id, _invalid(partner, track_id, source, "SoundRecording has no ISRC")
        return
    candidates = terms.get(recording.reference, [])
    if not candidates:
        yield (
            track_id,
            _invalid(
                partner,
                track_id,
                source,
                f"no Deal in this message covers SoundRecording {recording.reference}",
            ),
        )
        return
    data = {
        "track_id": track_id,
        "isrc": recording.isrc,
        "title": recording.title,
        "artists": recording.artists,
        "license": licence_for(candidates, message),
    }
    if recording.file:
        data["audio"] = (
            recording.file if recording.is_url else _locate(delivery, file, recording.file)
        )
        name = _hash_name(recording.hash_algorithm, recording.hash_value)
        if recording.hash_value and name is None:
            problem = f"HashSum algorithm {recording.hash_algorithm!r} is not supported"
            raw = {k: v for k, v in data.items() if v is not None}
            yield track_id, _invalid(partner, track_id, source, problem, raw=raw)
            return
        if name == "sha256":
            data["sha256"] = _hex(recording.hash_value).lower()
        elif name:
            data["hash_sum"] = {"algorithm": name, "value": _hex(recording.hash_value).lower()}
    yield (
        track_id,
        Pending(
            data={k: v for k, v in data.items() if v is not None},
            source=source,
            release_ids={i for ids in releases_of.get(recording.reference, []) for i in ids},
        ),
    )


def _purge(state: dict[str, Pending | InvalidRecord], message: Message, file: DeliveryFile) -> None:
    when = (message.created.date() if message.created else date.min).isoformat()
    label = message.message_id or posixpath.basename(file.name)
    for ids in message.purged:
        for track_id, result in state.items():
            if isinstance(result, InvalidRecord):
                continue
            if result.release_ids.intersection(ids) or track_id in ids:
                licence = dict(result.data.get("license") or {})
                licence["revoked"] = {
                    "date": when,
                    "reason": f"DDEX PurgeReleaseMessage {label} "
                    f"purged release {', '.join(sorted(ids))}",
                }
                result.data = {**result.data, "license": licence}


def _locate(delivery: Delivery, message: DeliveryFile, reference: str) -> str:
    """The audio path relative to the delivery root: from the message's folder, else from the
    root, whichever holds the file (asked without reading it); normalise refuses the path
    later if it escapes, and the fetch stage finds a missing file."""
    folder = posixpath.dirname(message.name)
    candidates = [reference.lstrip("/")]
    if not reference.startswith("/"):
        candidates.insert(0, posixpath.normpath(posixpath.join(folder, reference)))
    first = None
    for candidate in candidates:
        try:
            resolved = delivery.resolve(candidate)
        except ValueError:
            continue
        first = first or candidate
        if delivery.exists(resolved):
            return candidate
    return first or reference


def _hash_name(algorithm: str | None, value: str | None) -> str | None:
    if not algorithm or not value:
        return None
    key = re.sub(r"[^A-Z0-9]", "", algorithm.upper())
    if key == "SHA2":
        return SHA2_BY_HEX.get(len(_hex(value)))
    return HASHES.get(key)


def _hex(value: str | None) -> str:
    """HashSums come as hex or (4.x `DataType` Base64) base64; hex either way."""
    value = (value or "").strip()
    if re.fullmatch(r"[0-9A-Fa-f]+", value):
        return value
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return value


def _invalid(
    partner: str, track_id: str, source: str, message: str, raw: dict | None = None
) -> InvalidRecord:
    return InvalidRecord(
        partner=partner, track_id=track_id, source=source, message=message, raw=raw
    )
