"""DDEX ERN messages streamed into plain values: recordings, releases, deals and parties.

Parsing is streamed (iterparse, each list item dropped once read) with defusedxml and no DTD
at all: no entity expansion, no external entities, no network. ERN 3.4.1-3.8.x and 4.1-4.3:
4.x titles and artists from `DisplayTitleText` and `DisplayArtist/ArtistPartyReference`
resolved through `PartyList`, 3.x from `ReferenceTitle` and
`SoundRecordingDetailsByTerritory/DisplayArtist/PartyName`; audio from 4.x
`SoundRecordingEdition/TechnicalDetails/DeliveryFile/File/URI` (4.1/4.2 without the edition
level) or 3.x `TechnicalSoundRecordingDetails/File/FilePath+FileName`. A message that cannot
be used raises `MessageError` with the XML path where reading stopped.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

ERN_NAMESPACE = re.compile(r"^http://ddex\.net/xml/ern/(?P<version>[34]\d*)$")
MESSAGES = {"NewReleaseMessage", "UpdateReleaseMessage", "PurgeReleaseMessage"}
RELEASE_IDS = ("GRid", "ICPN", "ISRC", "CatalogNumber", "ProprietaryId")


class MessageError(ValueError):
    """A whole message cannot be used; `path` is where in the XML reading stopped."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


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
