"""Demo deliveries for the DDEX and CSV connectors, built from audio files that already exist.

Each writer copies the given audio into `folder`, writes the catalog, and returns a
`DemoDelivery`: the partners-file entry to add (location absolute; make it relative if you
like) and, per item key, the reason codes the strict default policy gives (`[]`: admitted),
for any logical date before 2099.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

Track = tuple[str, str, str, str | Path]
"""(track_id, title, artist, audio file to copy)."""

_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
DDEX_MAPPING = {
    "use_types": {
        "AIUse": ["ai_training", "ai_generative_training"],
        "PermanentDownload": [],
        "Stream": [],
    },
    "commercial_models": {"PayAsYouGoModel": ["commercial"]},
}


@dataclass(frozen=True)
class DemoDelivery:
    partner: dict
    expected: dict[str, list[str]] = field(default_factory=dict)


def isrc_for(track_id: str, index: int) -> str:
    """The track id if it is an ISRC (hyphens ignored), else a stable demo ISRC."""
    candidate = track_id.replace("-", "").upper()
    if _ISRC.match(candidate):
        return candidate
    number = int(hashlib.sha256(track_id.encode()).hexdigest()[:5], 16) % 100_000
    return f"QZDEM26{number:05d}"[:10] + f"{index:02d}"


def write_ddex_delivery(
    folder: Path, tracks: list[Track], partner_id: str = "demo-ddex", name: str = "Demo DDEX Label"
) -> DemoDelivery:
    """An ERN 4.3 NewReleaseMessage: an album licensed for AI training worldwide (all tracks
    but the last two, plus a download deal that grants nothing), a single whose AI deal
    excludes the US, and a single whose AI deal starts in 2099. DDEX items are keyed by ISRC."""
    if len(tracks) < 3:
        raise ValueError("give at least 3 tracks: album, excluded-territory single, future single")
    batch = folder / "20260101000000000"
    resources = batch / "resources"
    resources.mkdir(parents=True, exist_ok=True)
    recordings, parties, expected = [], {}, {}
    for index, (track_id, title, artist, source) in enumerate(tracks, start=1):
        isrc = isrc_for(track_id, index)
        target = resources / f"{isrc}{Path(source).suffix.lower()}"
        shutil.copyfile(source, target)
        party = parties.setdefault(artist, f"P{len(parties) + 1}")
        recordings.append(_recording(index, isrc, title, (artist, party), target, batch))
        expected[f"{partner_id}:{isrc}"] = []
    album = list(range(1, len(tracks) - 1))
    excluded, future = len(tracks) - 1, len(tracks)
    expected[f"{partner_id}:{isrc_for(tracks[excluded - 1][0], excluded)}"] = ["TERRITORY_EXCLUDED"]
    expected[f"{partner_id}:{isrc_for(tracks[future - 1][0], future)}"] = ["NOT_YET_VALID"]
    releases = [
        _release("R0", "Album", "ICPN", "0000000000017", album),
        _release("R1", "Single", "ICPN", "0000000000024", [excluded]),
        _release("R2", "Single", "ICPN", "0000000000031", [future]),
    ]
    deals = [
        ("R0", _deal("DEMO-DL", "PermanentDownload", "<TerritoryCode>Worldwide</TerritoryCode>")),
        ("R0", _deal("DEMO-AI-2026", "AIUse", "<TerritoryCode>Worldwide</TerritoryCode>")),
        ("R1", _deal("DEMO-AI-NOUS", "AIUse", "<ExcludedTerritoryCode>US</ExcludedTerritoryCode>")),
        (
            "R2",
            _deal(
                "DEMO-AI-2099", "AIUse", "<TerritoryCode>Worldwide</TerritoryCode>", "2099-01-01"
            ),
        ),
    ]
    message = _message(parties, recordings, releases, deals)
    (batch / "release.xml").write_text(message, encoding="utf-8")
    partner = {
        "id": partner_id,
        "name": name,
        "connector": "ddex",
        "location": str(folder),
        "mapping": DDEX_MAPPING,
    }
    return DemoDelivery(partner=partner, expected=expected)


def write_csv_delivery(
    folder: Path, tracks: list[Track], partner_id: str = "demo-csv", name: str = "Demo CSV Label"
) -> DemoDelivery:
    """A CSV manifest with partner-specific headers: CC BY, a contract granting AI training,
    a contract granting only inference (refused), and, from the 4th row on, TDM opt-outs.
    Contracts name their document and its sha256."""
    if len(tracks) < 3:
        raise ValueError("give at least 3 tracks")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audio").mkdir(exist_ok=True)
    contract = f"LicenseRef-{re.sub(r'[^A-Za-z0-9.]', '', partner_id)}"
    licences = [
        ("CC-BY-4.0", "", "Worldwide", "", "no", []),
        (f"{contract}-AI2026", "ai_training|commercial", "Worldwide", "", "no", []),
        (
            f"{contract}-INF2026",
            "ai_inference|commercial",
            "Worldwide",
            "",
            "no",
            ["USE_NOT_GRANTED"],
        ),
    ]
    opt_out = (
        f"{contract}-AI2026",
        "ai_training|commercial",
        "Worldwide",
        "",
        "yes",
        ["TDM_OPT_OUT"],
    )
    header = [
        "Catalogue No",
        "Song",
        "Performers",
        "File",
        "Licence",
        "Rights",
        "Where",
        "Until",
        "Credit",
        "No TDM",
        "Contract",
        "Contract SHA-256",
    ]
    expected = {}
    with (folder / "catalog.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for index, (track_id, title, artist, source) in enumerate(tracks):
            licence, uses, where, until, no_tdm, reasons = (
                licences[index] if index < len(licences) else opt_out
            )
            target = Path("audio") / f"{track_id}{Path(source).suffix.lower()}"
            shutil.copyfile(source, folder / target)
            credit = f"{title} by {artist}, CC BY 4.0" if licence.startswith("CC-BY") else ""
            document = sha = ""
            if licence.startswith("LicenseRef-"):
                document = f"https://contracts.{partner_id}.example/{licence}.pdf"
                sha = hashlib.sha256(f"demo contract {licence}".encode()).hexdigest()
            writer.writerow(
                [
                    track_id,
                    title,
                    artist,
                    target.as_posix(),
                    licence,
                    uses,
                    where,
                    until,
                    credit,
                    no_tdm,
                    document,
                    sha,
                ]
            )
            expected[f"{partner_id}:{track_id}"] = reasons
    partner = {
        "id": partner_id,
        "name": name,
        "connector": "csv",
        "location": str(folder),
        "mapping": {
            "files": "catalog.csv",
            "list_separator": "|",
            "columns": {
                "track_id": "Catalogue No",
                "title": "Song",
                "artists": "Performers",
                "audio": "File",
                "license_id": "Licence",
                "uses": "Rights",
                "territories": "Where",
                "valid_until": "Until",
                "attribution": "Credit",
                "tdm_opt_out": "No TDM",
                "evidence_uri": "Contract",
                "evidence_sha256": "Contract SHA-256",
            },
        },
    }
    return DemoDelivery(partner=partner, expected=expected)


def _recording(
    index: int, isrc: str, title: str, artist: tuple[str, str], path: Path, batch: Path
) -> str:
    name, party = artist
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    uri = path.relative_to(batch).as_posix()
    codec = {".flac": "FLAC", ".wav": "PCM", ".mp3": "MP3", ".ogg": "Vorbis"}.get(path.suffix, "")
    return f"""    <SoundRecording>
      <ResourceReference>A{index}</ResourceReference>
      <Type>MusicalWorkSoundRecording</Type>
      <SoundRecordingEdition>
        <Type>NonImmersiveEdition</Type>
        <ResourceId><ISRC>{isrc}</ISRC></ResourceId>
        <TechnicalDetails>
          <TechnicalResourceDetailsReference>T{index}</TechnicalResourceDetailsReference>
          <DeliveryFile>
            <Type>AudioFile</Type>
            <AudioCodecType>{codec or "UserDefined"}</AudioCodecType>
            <File>
              <URI>{escape(uri)}</URI>
              <HashSum><Algorithm>MD5</Algorithm><HashSumValue>{md5}</HashSumValue></HashSum>
            </File>
          </DeliveryFile>
        </TechnicalDetails>
      </SoundRecordingEdition>
      <DisplayTitleText>{escape(title)}</DisplayTitleText>
      <DisplayTitle><TitleText>{escape(title)}</TitleText></DisplayTitle>
      <DisplayArtistName>{escape(name)}</DisplayArtistName>
      <DisplayArtist SequenceNumber="1">
        <ArtistPartyReference>{party}</ArtistPartyReference>
        <DisplayArtistRole>MainArtist</DisplayArtistRole>
      </DisplayArtist>
      <Duration>PT0M30S</Duration>
    </SoundRecording>
"""


def _release(reference: str, kind: str, id_type: str, value: str, indexes: list[int]) -> str:
    items = "".join(
        f"<ResourceGroupContentItem><SequenceNumber>{n}</SequenceNumber>"
        f"<ReleaseResourceReference>A{i}</ReleaseResourceReference></ResourceGroupContentItem>"
        for n, i in enumerate(indexes, start=1)
    )
    return f"""    <Release>
      <ReleaseReference>{reference}</ReleaseReference>
      <ReleaseType>{kind}</ReleaseType>
      <ReleaseId><{id_type}>{value}</{id_type}></ReleaseId>
      <DisplayTitleText>Demo {kind} {reference}</DisplayTitleText>
      <ResourceGroup>{items}</ResourceGroup>
    </Release>
"""


def _deal(reference: str, use: str, where: str, start: str = "2025-01-01") -> str:
    use_type = (
        '<UseType UserDefinedValue="AIUse">UserDefined</UseType>'
        if use == "AIUse"
        else f"<UseType>{use}</UseType>"
    )
    return (
        f"<Deal><DealReference>{reference}</DealReference><DealTerms>{where}"
        f"<ValidityPeriod><StartDate>{start}</StartDate></ValidityPeriod>"
        f"<CommercialModelType>PayAsYouGoModel</CommercialModelType>{use_type}</DealTerms></Deal>"
    )


def _message(parties: dict[str, str], recordings, releases, deals) -> str:
    party_list = "".join(
        f"<Party><PartyReference>{ref}</PartyReference>"
        f"<PartyName><FullName>{escape(name)}</FullName></PartyName></Party>"
        for name, ref in parties.items()
    )
    deal_list = "".join(
        f"<ReleaseDeal><DealReleaseReference>{release}</DealReleaseReference>{deal}</ReleaseDeal>"
        for release, deal in deals
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://ddex.net/xml/ern/43 release-notification.xsd"
    LanguageAndScriptCode="en" AvsVersionId="4">
  <MessageHeader>
    <MessageThreadId>DEMO-THREAD</MessageThreadId>
    <MessageId>DEMO-0001</MessageId>
    <MessageSender><PartyId>PADPIDA0000000001D</PartyId>
      <PartyName><FullName>Demo DDEX Label</FullName></PartyName></MessageSender>
    <MessageRecipient><PartyId>PADPIDA0000000002C</PartyId>
      <PartyName><FullName>Ethical Corpus</FullName></PartyName></MessageRecipient>
    <MessageCreatedDateTime>2026-01-01T00:00:00Z</MessageCreatedDateTime>
  </MessageHeader>
  <PartyList>{party_list}</PartyList>
  <ResourceList>
{"".join(recordings)}  </ResourceList>
  <ReleaseList>
{"".join(releases)}  </ReleaseList>
  <DealList>{deal_list}</DealList>
</ern:NewReleaseMessage>
"""
