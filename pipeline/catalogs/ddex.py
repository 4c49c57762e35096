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
- licence, from the deals reaching the recording (Deal -> DealReleaseReference -> Release ->
  ReleaseResourceReference): `uses` are the partner mapping of the deal's UseTypes (plus
  CommercialModelTypes once any use is granted); nothing is granted unless mapped. Territory
  and excluded codes, validity start/end become the licence's. The id is the CC licence a
  DealReference names, else `LicenseRef-<partner>-<DealReference>` (or `<release id>-deal<n>`).
  Granting deals with identical terms merge their uses; when several differ, the one in force
  on the message's creation date is taken (else the next to start), so a record never claims
  more than one deal grants. A 3.x `TakeDown`/`AllDealsCancelled` revokes.

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
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from pipeline.catalogs.location import Delivery, DeliveryFile, open_delivery
from pipeline.catalogs.models import InvalidRecord, RawRecord
from pipeline.catalogs.partners import DdexMapping
from pipeline.licensing.territories import WORLDWIDE

OPTIONS = ("mapping",)

ERN_NAMESPACE = re.compile(r"^http://ddex\.net/xml/ern/(?P<version>[34]\d*)$")
MESSAGES = {"NewReleaseMessage", "UpdateReleaseMessage", "PurgeReleaseMessage"}
RELEASE_IDS = ("GRid", "ICPN", "ISRC", "CatalogNumber", "ProprietaryId")
HASHES = {"MD5": "md5", "SHA1": "sha1", "SHA224": "sha224", "SHA256": "sha256"}
HASHES |= {"SHA384": "sha384", "SHA512": "sha512"}
SHA2_BY_HEX = {56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}


class MessageError(ValueError):
    """A whole message cannot be used; `path` is where in the XML reading stopped."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


@dataclass
class Term:
    """One deal's terms for one validity period, as they apply to one recording."""

    uses: set[str]
    territories: list[str]
    excluded: list[str]
    valid_from: date | None
    valid_until: date | None
    licence_id: str
    takedown: bool
    cc: bool


@dataclass
class Recording:
    path: str
    reference: str
    isrc: str | None
    proprietary: str | None
    title: str | None
    artists: list[str]
    file: str | None
    is_url: bool
    hash_algorithm: str | None
    hash_value: str | None


@dataclass
class Message:
    kind: str
    version: str
    message_id: str | None = None
    created: datetime | None = None
    recordings: list[Recording] = field(default_factory=list)
    broken: list[tuple[str, str]] = field(default_factory=list)
    releases: dict[str, dict] = field(default_factory=dict)
    deals: list[dict] = field(default_factory=list)
    purged: list[list[str]] = field(default_factory=list)
    evidence: dict | None = None


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


def parse_message(source: Path | str | IO[bytes]) -> Message:
    """Stream one ERN message (a path or a binary stream) into compact facts; raises
    MessageError when it is unusable."""
    path = source if hasattr(source, "read") else str(source)
    stack: list[ET.Element] = []
    names: list[str] = []
    counters: list[Counter] = [Counter()]
    message: Message | None = None
    parties: dict[str, str] = {}
    try:
        for event, elem in iterparse(path, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                namespace, _, local = elem.tag.rpartition("}")
                if not stack:
                    message = _start_message(namespace.lstrip("{"), local)
                elem.tag = local
                counters[-1][local] += 1
                names.append(f"{local}[{counters[-1][local]}]" if len(stack) >= 2 else local)
                counters.append(Counter())
                stack.append(elem)
                continue
            xpath = "/" + "/".join(names)
            stack.pop()
            names.pop()
            counters.pop()
            if len(stack) == 2 and stack[-1].tag.endswith("List"):
                _take_item(message, stack[-1].tag, elem, xpath, parties)
                stack[-1].remove(elem)
            elif len(stack) == 1:
                _take_top(message, elem)
                stack[-1].remove(elem)
    except DefusedXmlException as exc:
        raise MessageError(
            f"refused: {type(exc).__name__} (DDEX messages may not declare a DTD or entities)",
            _xpath(names),
        ) from None
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise MessageError(
            f"malformed XML at line {line}, column {column}: {exc}", _xpath(names)
        ) from None
    except OSError as exc:
        raise MessageError(f"cannot read message: {exc.strerror or exc}", "/") from None
    if message is None:
        raise MessageError("empty message", "/")
    return message


def _xpath(names: list[str]) -> str:
    return "/" + "/".join(names)


def _start_message(namespace: str, local: str) -> Message:
    match = ERN_NAMESPACE.match(namespace)
    if not match:
        raise MessageError(f"not a DDEX ERN message (namespace {namespace!r})", f"/{local}")
    if local not in MESSAGES:
        raise MessageError(f"{local} is not a message this connector reads", f"/{local}")
    return Message(kind=local, version=match["version"])


def _take_top(message: Message, elem: ET.Element) -> None:
    if elem.tag == "MessageHeader":
        message.message_id = _text(elem, "MessageId")
        message.created = _datetime(_text(elem, "MessageCreatedDateTime"))
    elif elem.tag == "PurgedRelease":
        message.purged.append(_release_ids(elem))


def _take_item(
    message: Message, parent: str, elem: ET.Element, xpath: str, parties: dict[str, str]
) -> None:
    if parent == "PartyList" and elem.tag == "Party":
        reference = _text(elem, "PartyReference")
        name = _text(elem, "PartyName/FullName")
        if reference and name:
            parties[reference] = name
    elif parent == "ResourceList" and elem.tag == "SoundRecording":
        try:
            message.recordings.append(_recording(elem, xpath, parties))
        except ValueError as exc:
            message.broken.append((xpath, str(exc)))
    elif parent == "ReleaseList" and elem.tag in ("Release", "TrackRelease"):
        reference = _text(elem, "ReleaseReference")
        if reference:
            message.releases[reference] = {
                "ids": _release_ids(elem.find("ReleaseId")),
                "resources": {
                    (r.text or "").strip() for r in elem.iter("ReleaseResourceReference")
                },
            }
    elif parent == "DealList" and elem.tag == "ReleaseDeal":
        message.deals.append(
            {
                "releases": [(r.text or "").strip() for r in elem.findall("DealReleaseReference")],
                "deals": [_deal(d) for d in elem.findall("Deal")],
            }
        )


def _recording(elem: ET.Element, xpath: str, parties: dict[str, str]) -> Recording:
    reference = _text(elem, "ResourceReference")
    if not reference:
        raise ValueError("SoundRecording has no ResourceReference")
    ids = [*elem.findall("ResourceId"), *elem.findall("SoundRecordingId")]
    ids += elem.findall("SoundRecordingEdition/ResourceId")
    isrc = next((_text(i, "ISRC") for i in ids if _text(i, "ISRC")), None)
    proprietary = next((_text(i, "ProprietaryId") for i in ids if _text(i, "ProprietaryId")), None)
    file, is_url, algorithm, value = _delivered_file(elem)
    return Recording(
        path=xpath,
        reference=reference,
        isrc=isrc.replace("-", "").upper() if isrc else None,
        proprietary=proprietary,
        title=_title(elem),
        artists=_artists(elem, parties),
        file=file,
        is_url=is_url,
        hash_algorithm=algorithm,
        hash_value=value,
    )


def _title(elem: ET.Element) -> str | None:
    for path in (
        "ReferenceTitle/TitleText",
        "DisplayTitleText",
        "DisplayTitle/TitleText",
        "SoundRecordingDetailsByTerritory/Title/TitleText",
    ):
        text = _text(elem, path)
        if text:
            return text
    return None


def _artists(elem: ET.Element, parties: dict[str, str]) -> list[str]:
    blocks = [elem, *elem.findall("SoundRecordingDetailsByTerritory")]
    for block in blocks:
        entries = block.findall("DisplayArtist")
        if not entries:
            continue
        entries.sort(key=lambda e: _int(e.get("SequenceNumber")))
        names = []
        for entry in entries:
            reference = _text(entry, "ArtistPartyReference")
            name = parties.get(reference) if reference else _text(entry, "PartyName/FullName")
            if name and name not in names:
                names.append(name)
        if names:
            return names
    for block in blocks:
        name = _text(block, "DisplayArtistName")
        if name:
            return [name]
    return []


def _delivered_file(elem: ET.Element) -> tuple[str | None, bool, str | None, str | None]:
    """(reference, is_url, hash algorithm, hash value) of the first full-length audio file."""
    for details in [*elem.iter("TechnicalDetails"), *elem.iter("TechnicalSoundRecordingDetails")]:
        if _true(_text(details, "IsClip")) or _true(_text(details, "IsPreview")):
            continue
        for file in [*details.findall("DeliveryFile/File"), *details.findall("File")]:
            uri = _text(file, "URI") or _text(file, "URL")
            name = _text(file, "FileName")
            if uri:
                is_url = bool(urlparse(uri).scheme) and len(urlparse(uri).scheme) > 1
                reference = uri if is_url else unquote(uri)
            elif name:
                folder = _text(file, "FilePath") or ""
                reference, is_url = posixpath.join(folder, name) if folder else name, False
            else:
                continue
            digest = file.find("HashSum")
            if digest is None:
                return reference, is_url, None, None
            algorithm = _text(digest, "Algorithm") or _text(digest, "HashSumAlgorithmType")
            if algorithm == "UserDefined":
                node = digest.find("Algorithm")
                node = node if node is not None else digest.find("HashSumAlgorithmType")
                algorithm = node.get("UserDefinedValue") if node is not None else algorithm
            value = _text(digest, "HashSumValue") or _text(digest, "HashSum")
            return reference, is_url, algorithm, value
    return None, False, None, None


def _deal(elem: ET.Element) -> dict:
    terms = elem.find("DealTerms")
    deal = {
        "references": [(r.text or "").strip() for r in elem.findall("DealReference")],
        "use_types": [],
        "commercial": [],
        "territories": [],
        "excluded": [],
        "periods": [],
        "takedown": False,
    }
    if terms is None:
        return deal
    deal["use_types"] = [_coded(u) for u in terms.iter("UseType")]
    deal["commercial"] = [_coded(c) for c in terms.findall("CommercialModelType")]
    deal["territories"] = [_coded(t) for t in terms.findall("TerritoryCode")]
    deal["excluded"] = [_coded(t) for t in terms.findall("ExcludedTerritoryCode")]
    deal["periods"] = [_period(p) for p in terms.findall("ValidityPeriod")]
    deal["takedown"] = _true(_text(terms, "TakeDown")) or _true(_text(terms, "AllDealsCancelled"))
    return deal


def _period(elem: ET.Element) -> tuple[date | None, date | None]:
    """Inclusive dates; a date-time bound counts only the UTC days it fully covers."""
    start = _date(_text(elem, "StartDate"))
    if start is None and (moment := _datetime(_text(elem, "StartDateTime"))):
        start = (moment + timedelta(days=1) - timedelta(microseconds=1)).date()
    end = _date(_text(elem, "EndDate"))
    if end is None and (moment := _datetime(_text(elem, "EndDateTime"))):
        end = (moment - timedelta(days=1)).date()
    return start, end


def _records(
    partner: str, delivery: Delivery, file: DeliveryFile, message: Message, mapping: DdexMapping
) -> Iterator[tuple[str, Pending | InvalidRecord]]:
    for xpath, problem in message.broken:
        track_id = f"#{file.name}{xpath}"
        yield track_id, _invalid(partner, track_id, f"{file.location}#{xpath}", problem)
    terms = _terms_by_resource(partner, message, mapping)
    releases_of = _releases_by_resource(message)
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
        "license": _licence(candidates, message),
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


def _releases_by_resource(message: Message) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for release in message.releases.values():
        for resource in release["resources"]:
            found.setdefault(resource, []).append(release["ids"])
    return found


def _terms_by_resource(
    partner: str, message: Message, mapping: DdexMapping
) -> dict[str, list[Term]]:
    found: dict[str, list[Term]] = {}
    for release_deal in message.deals:
        for release_ref in release_deal["releases"]:
            release = message.releases.get(release_ref)
            if release is None:
                continue
            for index, deal in enumerate(release_deal["deals"], start=1):
                licence_id, cc = _licence_id(partner, deal["references"], release, index)
                uses = {u.value for t in deal["use_types"] for u in mapping.use_types.get(t, [])}
                if uses:
                    uses |= {
                        u.value
                        for c in deal["commercial"]
                        for u in mapping.commercial_models.get(c, [])
                    }
                territories = deal["territories"] or ([WORLDWIDE] if deal["excluded"] else [])
                for start, end in deal["periods"] or [(None, None)]:
                    term = Term(
                        uses=uses,
                        territories=territories,
                        excluded=deal["excluded"],
                        valid_from=start,
                        valid_until=end,
                        licence_id=licence_id,
                        takedown=deal["takedown"],
                        cc=cc,
                    )
                    for resource in release["resources"]:
                        found.setdefault(resource, []).append(term)
    return found


def _licence(candidates: list[Term], message: Message) -> dict:
    """One licence per recording, as one grant of the message states it.

    Deals with the same terms (granted uses, which include the mapped commercial models;
    exclusions; validity; the CC licence, or a contract) that differ only in territory are
    one grant over the union of their territories: labels send a deal per country. Deals
    whose terms differ
    stay apart, and the broadest grant in force on the message date is taken, so the record
    never claims more than one deal grants. The message is the licence document: its
    location and sha256 are the evidence."""
    on = message.created.date() if message.created else None
    takedowns = [t for t in candidates if t.takedown]
    grants = [t for t in candidates if (t.uses or t.cc) and not t.takedown]
    groups: dict[tuple, Term] = {}
    for term in grants:
        key = (
            frozenset(term.uses),
            term.licence_id if term.cc else None,
            tuple(term.excluded),
            term.valid_from,
            term.valid_until,
        )
        if key in groups:
            groups[key].territories = _union(groups[key].territories, term.territories)
        else:
            groups[key] = Term(**{**term.__dict__, "territories": list(term.territories)})
    chosen = _pick(list(groups.values()), on) if groups else candidates[0]
    licence: dict = {
        "id": chosen.licence_id,
        "uses": sorted(chosen.uses) if groups else [],
        "territories": chosen.territories,
        "excluded_territories": chosen.excluded,
    }
    if chosen.valid_from:
        licence["valid_from"] = chosen.valid_from.isoformat()
    if chosen.valid_until:
        licence["valid_until"] = chosen.valid_until.isoformat()
    if message.evidence:
        licence["evidence"] = dict(message.evidence)
    if takedowns:
        first = min(takedowns, key=lambda t: t.valid_from or on or date.min)
        licence["revoked"] = {
            "date": (first.valid_from or on or date.min).isoformat(),
            "reason": f"DDEX takedown in message {message.message_id or '?'} ({first.licence_id})",
        }
    return licence


def _union(first: list[str], second: list[str]) -> list[str]:
    if WORLDWIDE in first or WORLDWIDE in second:
        return [WORLDWIDE]
    return first + [t for t in second if t not in first]


def _pick(groups: list[Term], on: date | None) -> Term:
    """The broadest grant in force on `on` (the message date), else the next to start,
    else the last to end."""
    if on:
        current = [
            t for t in groups if (t.valid_from or date.min) <= on <= (t.valid_until or date.max)
        ]
        if current:
            return max(current, key=_breadth)
        future = [t for t in groups if t.valid_from and t.valid_from > on]
        if future:
            return min(future, key=lambda t: t.valid_from)
    return max(groups, key=lambda t: t.valid_until or date.max)


def _breadth(term: Term) -> tuple:
    return (len(term.uses), WORLDWIDE in term.territories, len(term.territories))


def _licence_id(partner: str, references: list[str], release: dict, index: int) -> tuple[str, bool]:
    for reference in references:
        cc = cc_licence(reference)
        if cc:
            return cc, True
    if references and references[0]:
        contract = references[0]
    else:
        contract = f"{release['ids'][0] if release['ids'] else 'release'}-deal{index}"
    return f"LicenseRef-{_token(partner)}-{_token(contract)}", False


def cc_licence(text: str) -> str | None:
    """The SPDX id of a Creative Commons licence named by id or creativecommons.org URL."""
    from pipeline.licensing.decide import licence_family

    text = text.strip()
    parsed = urlparse(text)
    if parsed.netloc.endswith("creativecommons.org"):
        parts = [p for p in parsed.path.split("/") if p]
        if parts[:2] == ["publicdomain", "zero"] and len(parts) >= 3:
            text = f"CC0-{parts[2]}"
        elif parts[:1] == ["licenses"] and len(parts) >= 3:
            text = f"CC-{parts[1].upper()}-{parts[2]}" + (
                f"-{parts[3].upper()}" if len(parts) > 3 else ""
            )
    if licence_family(text) not in ("cc", "public-domain") or text.upper() == "LICENSEREF-PDM":
        return None
    return text.upper()


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


def _release_ids(elem: ET.Element | None) -> list[str]:
    """Identifier values, GRid first (the order DDEX prefers), without repeats."""
    if elem is None:
        return []
    found = [(e.text or "").strip() for name in RELEASE_IDS for e in elem.iter(name)]
    return list(dict.fromkeys(v for v in found if v))


def _coded(elem: ET.Element) -> str:
    """A DDEX coded value; `UserDefined` stands for its UserDefinedValue attribute."""
    text = (elem.text or "").strip()
    if text == "UserDefined" and elem.get("UserDefinedValue"):
        return elem.get("UserDefinedValue", "").strip()
    return text


def _text(elem: ET.Element, path: str) -> str | None:
    found = elem.find(path)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def _true(text: str | None) -> bool:
    return (text or "").lower() in ("true", "1")


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", ".", text).strip(".-") or "x"


def _invalid(
    partner: str, track_id: str, source: str, message: str, raw: dict | None = None
) -> InvalidRecord:
    return InvalidRecord(
        partner=partner, track_id=track_id, source=source, message=message, raw=raw
    )
