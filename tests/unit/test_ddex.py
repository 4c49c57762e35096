"""The DDEX ERN connector on messages written here in the real 3.8.2, 4.1 and 4.3 shapes."""

import hashlib
import http.server
import threading
import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from pipeline.catalogs.ddex import parse_message, read
from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.models import CatalogItem, HashSum, InvalidRecord, RawRecord
from pipeline.catalogs.partners import DdexMapping, Partner

MAPPING = DdexMapping(
    use_types={
        "AIUse": ["ai_training", "ai_generative_training"],
        "PermanentDownload": [],
        "Stream": [],
    },
    commercial_models={"PayAsYouGoModel": ["commercial"]},
)

HEADER = """<MessageHeader>
    <MessageThreadId>T-{mid}</MessageThreadId>
    <MessageId>{mid}</MessageId>
    <MessageSender><PartyId>PADPIDA2014120301X</PartyId>
      <PartyName><FullName>Label</FullName></PartyName></MessageSender>
    <MessageRecipient><PartyId>PADPIDA2024072201A</PartyId>
      <PartyName><FullName>Corpus</FullName></PartyName></MessageRecipient>
    <MessageCreatedDateTime>{created}</MessageCreatedDateTime>
  </MessageHeader>"""


def audio(root: Path, name: str, size: int = 4096) -> tuple[str, str]:
    """Writes resources/<name> with distinct bytes; (md5, sha256)."""
    data = hashlib.sha512(name.encode()).digest() * (size // 64)
    path = root / "resources" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


def ern4_recording(ref, isrc, title, party, uri, md5, edition=True, clip_first=False, padding=""):
    clip = (
        f"<TechnicalDetails><TechnicalResourceDetailsReference>T{ref}c"
        "</TechnicalResourceDetailsReference><DeliveryFile><Type>AudioFile</Type>"
        "<File><URI>resources/clip.mp3</URI></File></DeliveryFile><IsClip>true</IsClip>"
        "</TechnicalDetails>"
    )
    technical = f"""<TechnicalDetails>
        <TechnicalResourceDetailsReference>T{ref}</TechnicalResourceDetailsReference>
        <DeliveryFile>
          <Type>AudioFile</Type>
          <AudioCodecType>FLAC</AudioCodecType>
          <File>
            <URI>{uri}</URI>
            <HashSum><Algorithm>MD5</Algorithm><HashSumValue>{md5}</HashSumValue></HashSum>
          </File>
        </DeliveryFile>
      </TechnicalDetails>"""
    if clip_first:
        technical = clip + technical
    resource_id = f"<ResourceId><ISRC>{isrc}</ISRC></ResourceId>" if isrc else ""
    if edition:
        body = (
            "<SoundRecordingEdition><Type>NonImmersiveEdition</Type>"
            f"{resource_id}{technical}</SoundRecordingEdition>"
        )
    else:
        body = resource_id
    tail = "" if edition else technical
    return f"""<SoundRecording>
      <ResourceReference>{ref}</ResourceReference>
      <Type>MusicalWorkSoundRecording</Type>
      {body}
      <DisplayTitleText>{title}</DisplayTitleText>
      <DisplayTitle><TitleText>{title}</TitleText></DisplayTitle>
      <DisplayArtistName>ignored when DisplayArtist resolves</DisplayArtistName>
      <DisplayArtist SequenceNumber="1"><ArtistPartyReference>{party}</ArtistPartyReference>
        <DisplayArtistRole>MainArtist</DisplayArtistRole></DisplayArtist>
      {padding}
      <Duration>PT3M</Duration>
      {tail}
    </SoundRecording>"""


def ern4_release(tag, ref, icpn, resources):
    items = "".join(
        f"<ResourceGroupContentItem><SequenceNumber>{i}</SequenceNumber>"
        f"<ReleaseResourceReference>{r}</ReleaseResourceReference></ResourceGroupContentItem>"
        for i, r in enumerate(resources, start=1)
    )
    if tag == "TrackRelease":
        return (
            f"<TrackRelease><ReleaseReference>{ref}</ReleaseReference>"
            f"<ReleaseId><ISRC>{icpn}</ISRC></ReleaseId>"
            f"<ReleaseResourceReference>{resources[0]}</ReleaseResourceReference></TrackRelease>"
        )
    return f"""<Release><ReleaseReference>{ref}</ReleaseReference><ReleaseType>Album</ReleaseType>
      <ReleaseId><ICPN>{icpn}</ICPN></ReleaseId>
      <DisplayTitleText>Album</DisplayTitleText>
      <ResourceGroup>{items}</ResourceGroup></Release>"""


def ern4_deal(
    reference=None,
    uses=(),
    territories=(),
    excluded=(),
    start=None,
    end=None,
    models=("PayAsYouGoModel",),
    datetimes=False,
):
    use = "".join(
        f'<UseType UserDefinedValue="{u}">UserDefined</UseType>'
        if u == "AIUse"
        else f"<UseType>{u}</UseType>"
        for u in uses
    )
    where = "".join(f"<TerritoryCode>{t}</TerritoryCode>" for t in territories)
    where += "".join(f"<ExcludedTerritoryCode>{t}</ExcludedTerritoryCode>" for t in excluded)
    kind = "DateTime" if datetimes else "Date"
    period = f"<Start{kind}>{start}</Start{kind}>" if start else ""
    period += f"<End{kind}>{end}</End{kind}>" if end else ""
    ref = f"<DealReference>{reference}</DealReference>" if reference else ""
    model = "".join(f"<CommercialModelType>{m}</CommercialModelType>" for m in models)
    return (
        f"<Deal>{ref}<DealTerms>{where}<ValidityPeriod>{period}</ValidityPeriod>"
        f"{model}{use}</DealTerms></Deal>"
    )


def ern4_message(version, recordings, releases, deals, parties, created="2026-03-01T10:00:00Z"):
    party_list = "".join(
        f"<Party><PartyReference>{ref}</PartyReference>"
        f"<PartyName><FullName>{name}</FullName></PartyName></Party>"
        for ref, name in parties.items()
    )
    deal_list = "".join(
        f"<ReleaseDeal><DealReleaseReference>{release}</DealReleaseReference>"
        f"{''.join(items)}</ReleaseDeal>"
        for release, items in deals
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/{version}"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://ddex.net/xml/ern/{version} release-notification.xsd"
    LanguageAndScriptCode="en" AvsVersionId="4">
  {HEADER.format(mid="M-" + version, created=created)}
  <PartyList>{party_list}</PartyList>
  <ResourceList>{"".join(recordings)}</ResourceList>
  <ReleaseList>{"".join(releases)}</ReleaseList>
  <DealList>{deal_list}</DealList>
</ern:NewReleaseMessage>
"""


def ern3_message(recordings, releases, deals, created="2026-02-01T00:00:00"):
    deal_list = "".join(
        f"<ReleaseDeal><DealReleaseReference>{release}</DealReleaseReference>"
        f"{''.join(items)}</ReleaseDeal>"
        for release, items in deals
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/382"
    MessageSchemaVersionId="ern/382" LanguageAndScriptCode="en">
  {HEADER.format(mid="M-382", created=created)}
  <UpdateIndicator>OriginalMessage</UpdateIndicator>
  <ResourceList>{"".join(recordings)}</ResourceList>
  <ReleaseList>{"".join(releases)}</ReleaseList>
  <DealList>{deal_list}</DealList>
</ern:NewReleaseMessage>
"""


def ern3_recording(ref, isrc, title, artist, folder, name, md5, preview_first=True):
    preview = (
        "<TechnicalSoundRecordingDetails><TechnicalResourceDetailsReference>T9"
        "</TechnicalResourceDetailsReference><IsPreview>true</IsPreview>"
        "<File><FileName>preview.mp3</FileName></File></TechnicalSoundRecordingDetails>"
    )
    return f"""<SoundRecording>
      <SoundRecordingType>MusicalWorkSoundRecording</SoundRecordingType>
      <SoundRecordingId><ISRC>{isrc}</ISRC></SoundRecordingId>
      <ResourceReference>{ref}</ResourceReference>
      <ReferenceTitle><TitleText>{title}</TitleText></ReferenceTitle>
      <Duration>PT2M</Duration>
      <SoundRecordingDetailsByTerritory>
        <TerritoryCode>Worldwide</TerritoryCode>
        <Title TitleType="DisplayTitle"><TitleText>{title}</TitleText></Title>
        <DisplayArtist SequenceNumber="2"><PartyName><FullName>Feat {artist}</FullName>
          </PartyName><ArtistRole>FeaturedArtist</ArtistRole></DisplayArtist>
        <DisplayArtist SequenceNumber="1"><PartyName><FullName>{artist}</FullName></PartyName>
          <ArtistRole>MainArtist</ArtistRole></DisplayArtist>
        {preview if preview_first else ""}
        <TechnicalSoundRecordingDetails>
          <TechnicalResourceDetailsReference>T{ref}</TechnicalResourceDetailsReference>
          <AudioCodecType>FLAC</AudioCodecType>
          <File>
            <FileName>{name}</FileName>
            <FilePath>{folder}</FilePath>
            <HashSum><HashSum>{md5}</HashSum><HashSumAlgorithmType>MD5</HashSumAlgorithmType>
            </HashSum>
          </File>
        </TechnicalSoundRecordingDetails>
      </SoundRecordingDetailsByTerritory>
    </SoundRecording>"""


def ern3_release(ref, grid, resources):
    refs = "".join(f"<ReleaseResourceReference>{r}</ReleaseResourceReference>" for r in resources)
    return f"""<Release><ReleaseId><GRid>{grid}</GRid></ReleaseId>
      <ReleaseReference>{ref}</ReleaseReference>
      <ReferenceTitle><TitleText>Album</TitleText></ReferenceTitle>
      <ReleaseResourceReferenceList>{refs}</ReleaseResourceReferenceList>
      <ReleaseType>Album</ReleaseType></Release>"""


def ern3_deal(reference, uses, territories=(), excluded=(), start=None, end=None, takedown=False):
    where = "".join(f"<TerritoryCode>{t}</TerritoryCode>" for t in territories)
    where += "".join(f"<ExcludedTerritoryCode>{t}</ExcludedTerritoryCode>" for t in excluded)
    usage = "".join(f"<UseType>{u}</UseType>" for u in uses)
    period = (f"<StartDate>{start}</StartDate>" if start else "") + (
        f"<EndDate>{end}</EndDate>" if end else ""
    )
    down = "<TakeDown>true</TakeDown>" if takedown else ""
    return (
        f"<Deal><DealReference>{reference}</DealReference><DealTerms>"
        f"<CommercialModelType>PayAsYouGoModel</CommercialModelType>"
        f"<Usage>{usage}</Usage>{where}{down}"
        f"<ValidityPeriod>{period}</ValidityPeriod></DealTerms></Deal>"
    )


def purge_message(version, release_id, created="2026-05-05T12:00:00Z"):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ern:PurgeReleaseMessage xmlns:ern="http://ddex.net/xml/ern/{version}" LanguageAndScriptCode="en">
  {HEADER.format(mid="PURGE-1", created=created)}
  <PurgedRelease><ReleaseId><ICPN>{release_id}</ICPN></ReleaseId></PurgedRelease>
</ern:PurgeReleaseMessage>
"""


def records_by_id(records):
    return {r.data["track_id"] if isinstance(r, RawRecord) else r.track_id: r for r in records}


@pytest.fixture
def delivery_43(tmp_path):
    """ERN 4.3: an album (3 tracks) and a single, several deals per release."""
    root = tmp_path / "delivery"
    batch = root / "20260301100000000"
    md5_1, _ = audio(batch, "A1.flac")
    md5_2, _ = audio(batch, "A2.flac")
    audio(batch, "A3.flac")
    md5_4, _ = audio(batch, "A4.flac")
    recordings = [
        ern4_recording(
            "A1", "US-AB1-26-00001", "One", "P1", "resources/A1.flac", md5_1, clip_first=True
        ),
        ern4_recording("A2", "USAB12600002", "Two", "P2", "resources/A2.flac", md5_2),
        ern4_recording("A3", "USAB12600003", "Three", "P1", "resources/A3.flac", "0" * 32),
        ern4_recording("A4", "USAB12600004", "Four", "P2", "resources/A4.flac", md5_4),
    ]
    releases = [
        ern4_release("Release", "R0", "0123456789012", ["A1", "A2", "A3"]),
        ern4_release("TrackRelease", "R1", "USAB12600001", ["A1"]),
        ern4_release("Release", "R2", "0123456789029", ["A4"]),
    ]
    deals = [
        (
            "R0",
            [
                ern4_deal(
                    "DL-1", ["PermanentDownload"], territories=["Worldwide"], start="2020-01-01"
                ),
                ern4_deal(
                    "AI-2026", ["AIUse"], excluded=["US"], start="2025-01-01", end="2027-12-31"
                ),
            ],
        ),
        ("R1", [ern4_deal("ST-1", ["Stream"], territories=["Worldwide"], start="2020-01-01")]),
        (
            "R2",
            [
                ern4_deal(
                    None,
                    ["AIUse"],
                    territories=["DE", "FR"],
                    start="2030-01-01T00:00:00Z",
                    datetimes=True,
                )
            ],
        ),
    ]
    parties = {"P1": "Ada Artist", "P2": "Bo Band"}
    (batch / "release.xml").write_text(
        ern4_message("43", recordings, releases, deals, parties), encoding="utf-8"
    )
    return root, md5_1


@pytest.fixture
def opened(monkeypatch):
    """Every location the connector opens through its delivery."""
    from pipeline.catalogs.location import LocalDelivery

    seen: list[str] = []
    original = LocalDelivery.open

    def spy(self, location):
        seen.append(location)
        return original(self, location)

    monkeypatch.setattr(LocalDelivery, "open", spy)
    return seen


def test_ern43_recordings_deals_and_hashes(delivery_43, opened):
    root, md5_1 = delivery_43
    records = list(read("label-x", str(root), MAPPING))
    assert opened == [str(root / "20260301100000000/release.xml")], "no audio is read"
    by_id = records_by_id(records)
    assert set(by_id) == {"USAB12600001", "USAB12600002", "USAB12600003", "USAB12600004"}

    one = by_id["USAB12600001"]
    assert isinstance(one, RawRecord)
    assert one.data["title"] == "One" and one.data["artists"] == ["Ada Artist"]
    assert one.data["audio"] == "20260301100000000/resources/A1.flac"
    assert one.data["hash_sum"] == {"algorithm": "md5", "value": md5_1}
    assert "sha256" not in one.data
    assert one.source.endswith("release.xml#/NewReleaseMessage/ResourceList/SoundRecording[1]")
    message = root / "20260301100000000/release.xml"
    evidence = {"uri": str(message), "sha256": hashlib.sha256(message.read_bytes()).hexdigest()}
    assert one.data["license"] == {
        "evidence": evidence,
        "id": "LicenseRef-label-x-AI-2026",
        "uses": ["ai_generative_training", "ai_training", "commercial"],
        "territories": ["Worldwide"],
        "excluded_territories": ["US"],
        "valid_from": "2025-01-01",
        "valid_until": "2027-12-31",
    }

    three = by_id["USAB12600003"]
    assert isinstance(three, RawRecord), "a wrong HashSum is found when the audio is fetched"
    assert three.data["hash_sum"] == {"algorithm": "md5", "value": "0" * 32}
    assert three.source.endswith("SoundRecording[3]")

    four = by_id["USAB12600004"]
    assert four.data["license"]["id"] == "LicenseRef-label-x-0123456789029-deal1"
    assert four.data["license"]["valid_from"] == "2030-01-01"
    assert four.data["license"]["territories"] == ["DE", "FR"]
    assert "valid_until" not in four.data["license"]


def test_ern43_items_pass_metadata_validation_and_normalise(delivery_43):
    root, md5_1 = delivery_43
    partner = Partner(id="label-x", name="X", connector="ddex", location=str(root), mapping=MAPPING)
    items, report = read_delivery(partner)
    by_key = {i.key: i for i in items}
    one = by_key["label-x:USAB12600001"]
    assert isinstance(one, CatalogItem)
    assert one.audio == str(root / "20260301100000000/resources/A1.flac")
    assert one.license.excluded_territories == ["US"]
    assert one.hash_sum == HashSum(algorithm="md5", value=md5_1) and one.sha256 is None
    three = by_key["label-x:USAB12600003"]
    assert isinstance(three, CatalogItem) and three.hash_sum.value == "0" * 32
    assert report.evaluated == 4


def test_ern41_without_edition_picks_the_deal_in_force(tmp_path):
    root = tmp_path / "d"
    md5_1, _ = audio(root, "x1.wav")
    md5_2, _ = audio(root, "x2.wav")
    recordings = [
        ern4_recording(
            "A1", "GBXYZ2600001", "Eins", "P1", "resources/x1.wav", md5_1, edition=False
        ),
        ern4_recording("A2", None, "No Isrc", "P1", "resources/x2.wav", md5_2, edition=False),
    ]
    releases = [ern4_release("Release", "R0", "5012345678900", ["A1", "A2"])]
    deals = [
        (
            "R0",
            [
                ern4_deal(
                    "OLD", ["AIUse"], territories=["DE"], start="2024-01-01", end="2026-06-30"
                ),
                ern4_deal("NEW", ["AIUse"], territories=["FR"], start="2026-07-01"),
                ern4_deal(
                    "ALSO-OLD",
                    ["AIUse"],
                    territories=["DE"],
                    start="2024-01-01",
                    end="2026-06-30",
                    models=(),
                ),
            ],
        ),
    ]
    (root / "m.xml").write_text(
        ern4_message(
            "41", recordings, releases, deals, {"P1": "Ana"}, created="2026-03-01T00:00:00+02:00"
        )
    )
    by_id = records_by_id(read("lbl", str(root), MAPPING))
    licence = by_id["GBXYZ2600001"].data["license"]
    assert licence["id"] == "LicenseRef-lbl-OLD"
    assert licence["territories"] == ["DE"] and licence["valid_until"] == "2026-06-30"
    broken = next(r for r in by_id.values() if isinstance(r, InvalidRecord))
    assert broken.message == "SoundRecording has no ISRC"
    assert broken.source.endswith("m.xml#/NewReleaseMessage/ResourceList/SoundRecording[2]")


def test_ern382_paths_artists_takedown_and_unmapped_uses(tmp_path):
    root = tmp_path / "d"
    pkg = root / "pkg"
    md5_1, _ = audio(pkg / "media", "t1.flac")
    md5_2, _ = audio(pkg / "media", "t2.flac")
    md5_3, _ = audio(pkg / "media", "t3.flac")
    (pkg / "media" / "resources").rename(pkg / "media" / "files")
    recordings = [
        ern3_recording("A1", "FRZ032600001", "Un", "Chloe", "media/files/", "t1.flac", md5_1),
        ern3_recording("A2", "FRZ032600002", "Deux", "Chloe", "media/files", "t2.flac", md5_2),
        ern3_recording(
            "A3",
            "FRZ032600003",
            "Trois",
            "Chloe",
            "media/files/",
            "t3.flac",
            md5_3,
            preview_first=False,
        ),
    ]
    releases = [
        ern3_release("R0", "A1-2425G-ABC1234002-M", ["A1", "A2"]),
        ern3_release("R1", "A1-2425G-ABC1234003-M", ["A3"]),
    ]
    deals = [
        (
            "R0",
            [
                ern3_deal(
                    "C-2026-AI",
                    ["AIUse"],
                    territories=["Worldwide"],
                    excluded=["CN"],
                    start="2026-01-01",
                )
            ],
        ),
        (
            "R1",
            [
                ern3_deal("C-DL", ["PermanentDownload"], territories=["Worldwide"]),
                ern3_deal(
                    "C-TD", ["AIUse"], territories=["Worldwide"], start="2026-02-01", takedown=True
                ),
            ],
        ),
    ]
    (pkg / "pkg.xml").write_text(ern3_message(recordings, releases, deals))
    by_id = records_by_id(read("fr", str(root), MAPPING))
    one = by_id["FRZ032600001"].data
    assert one["audio"] == "pkg/media/files/t1.flac"
    assert one["hash_sum"] == {"algorithm": "md5", "value": md5_1}
    assert one["artists"] == ["Chloe", "Feat Chloe"] and one["title"] == "Un"
    assert one["license"]["uses"] == ["ai_generative_training", "ai_training", "commercial"]
    assert one["license"]["territories"] == ["Worldwide"]
    assert one["license"]["excluded_territories"] == ["CN"]
    assert by_id["FRZ032600002"].data["audio"] == "pkg/media/files/t2.flac"
    three = by_id["FRZ032600003"].data["license"]
    assert three["uses"] == [] and three["id"] == "LicenseRef-fr-C-DL"
    assert three["revoked"]["date"] == "2026-02-01"
    assert "takedown" in three["revoked"]["reason"]


def test_purge_revokes_the_named_release_and_later_messages_win(delivery_43):
    root, _ = delivery_43
    (root / "20260505120000000").mkdir()
    (root / "20260505120000000" / "purge.xml").write_text(purge_message("43", "0123456789012"))
    by_id = records_by_id(read("label-x", str(root), MAPPING))
    for track in ("USAB12600001", "USAB12600002"):
        revoked = by_id[track].data["license"]["revoked"]
        assert revoked["date"] == "2026-05-05"
        assert "PURGE-1" in revoked["reason"] and "0123456789012" in revoked["reason"]
    assert "revoked" not in by_id["USAB12600004"].data["license"]


def test_hashsums_are_carried_not_checked_and_no_audio_is_read(tmp_path, opened):
    import base64

    root = tmp_path / "d"
    _, sha = audio(root, "a.flac")
    data = b"b" * 100
    (root / "resources" / "b.flac").write_bytes(data)
    sha1_b64 = base64.b64encode(hashlib.sha1(data).digest()).decode()
    sha512 = hashlib.sha512(data).hexdigest().upper()

    def recording(ref, isrc, uri, algorithm, value):
        xml = ern4_recording(ref, isrc, ref, "P1", uri, value)
        return xml.replace("<Algorithm>MD5</Algorithm>", f"<Algorithm>{algorithm}</Algorithm>")

    recordings = [
        recording("A1", "SEABC2600001", "resources/a.flac", "SHA256", sha),
        recording("A2", "SEABC2600002", "resources/b.flac", "SHA1", sha1_b64),
        recording("A3", "SEABC2600003", "resources/b.flac", "SHA2", sha512),
        recording("A4", "SEABC2600004", "resources/b.flac", "CRC32", "1234abcd"),
        recording("A5", "SEABC2600005", "resources/gone.flac", "MD5", "0" * 32),
        recording("A6", "SEABC2600006", "https://cdn.example/a6.flac", "MD5", "1" * 32),
    ]
    releases = [ern4_release("Release", "R0", "7350000000001", [f"A{i}" for i in range(1, 7)])]
    deals = [("R0", [ern4_deal("AI", ["AIUse"], territories=["Worldwide"])])]
    (root / "m.xml").write_text(ern4_message("43", recordings, releases, deals, {"P1": "S"}))
    by_id = records_by_id(read("se", str(root), MAPPING))
    assert opened == [str(root / "m.xml")]
    assert by_id["SEABC2600001"].data["sha256"] == sha
    assert "hash_sum" not in by_id["SEABC2600001"].data
    assert by_id["SEABC2600002"].data["hash_sum"] == {
        "algorithm": "sha1",
        "value": hashlib.sha1(data).hexdigest(),
    }
    assert by_id["SEABC2600003"].data["hash_sum"] == {
        "algorithm": "sha512",
        "value": sha512.lower(),
    }
    unsupported = by_id["SEABC2600004"]
    assert (
        isinstance(unsupported, InvalidRecord) and "'CRC32' is not supported" in unsupported.message
    )
    missing = by_id["SEABC2600005"]
    assert isinstance(missing, RawRecord), "a missing file is AUDIO_MISSING when fetched"
    assert missing.data["audio"] == "resources/gone.flac"
    remote = by_id["SEABC2600006"].data
    assert remote["audio"] == "https://cdn.example/a6.flac"
    assert remote["hash_sum"] == {"algorithm": "md5", "value": "1" * 32}


def test_cc_licence_named_by_deal_reference(tmp_path):
    root = tmp_path / "d"
    md5, _ = audio(root, "cc.flac")
    recordings = [ern4_recording("A1", "SEABC2600001", "Free", "P1", "resources/cc.flac", md5)]
    releases = [ern4_release("Release", "R0", "7350000000001", ["A1"])]
    deals = [
        (
            "R0",
            [
                ern4_deal(
                    "https://creativecommons.org/licenses/by/4.0/",
                    ["Stream"],
                    territories=["Worldwide"],
                )
            ],
        )
    ]
    (root / "m.xml").write_text(ern4_message("43", recordings, releases, deals, {"P1": "S"}))
    (record,) = read("se", str(root), MAPPING)
    assert record.data["license"]["id"] == "CC-BY-4.0"


def test_malformed_message_and_escaping_file_do_not_stop_the_rest(delivery_43, tmp_path):
    root, _ = delivery_43
    (root / "0-broken.xml").write_text(
        '<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43">'
        "<ResourceList><SoundRecording><ResourceReference>A1</Oops>"
    )
    outside = tmp_path / "secret.flac"
    outside.write_bytes(b"not yours")
    md5 = hashlib.md5(b"not yours").hexdigest()
    recordings = [ern4_recording("A9", "USAB12600009", "Nine", "P1", "../../secret.flac", md5)]
    releases = [ern4_release("Release", "R9", "0123456789999", ["A9"])]
    deals = [("R9", [ern4_deal("AI", ["AIUse"], territories=["Worldwide"])])]
    (root / "1-escape.xml").write_text(ern4_message("43", recordings, releases, deals, {}))
    records = list(read("label-x", str(root), MAPPING))
    broken = next(r for r in records if r.track_id == "#0-broken.xml")
    assert "malformed XML at line 1" in broken.message
    assert broken.source.endswith(
        "0-broken.xml#/NewReleaseMessage/ResourceList/SoundRecording[1]/ResourceReference[1]"
    )
    assert len([r for r in records if isinstance(r, RawRecord)]) == 5
    partner = Partner(id="label-x", name="X", connector="ddex", location=str(root), mapping=MAPPING)
    items, _ = read_delivery(partner)
    escaped = next(i for i in items if i.key == "label-x:USAB12600009")
    assert isinstance(escaped, InvalidRecord) and "escapes the delivery root" in escaped.message
    assert "sha256" not in escaped.raw


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"><MessageHeader>
<MessageId>&lol9;</MessageId></MessageHeader></ern:NewReleaseMessage>
"""


@pytest.fixture
def listener():
    """A local HTTP server that counts every request: an external entity must never reach it."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<x>pwned</x>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


ROOT = '<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"><MessageHeader>'
END = "</MessageHeader></ern:NewReleaseMessage>"


@pytest.mark.parametrize(
    "kind", ["billion-laughs", "external-entity-http", "external-entity-file", "external-dtd"]
)
def test_entities_and_dtds_are_refused_without_expansion_or_network(tmp_path, listener, kind):
    url, hits = listener
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = {
        "billion-laughs": BILLION_LAUGHS,
        "external-entity-http": f'<!DOCTYPE m [<!ENTITY x SYSTEM "{url}/xxe">]>'
        f"{ROOT}<MessageId>&x;</MessageId>{END}",
        "external-entity-file": f'<!DOCTYPE m [<!ENTITY x SYSTEM "file://{secret}">]>'
        f"{ROOT}<MessageId>&x;</MessageId>{END}",
        "external-dtd": f'<!DOCTYPE m SYSTEM "{url}/evil.dtd">{ROOT}<MessageId>x</MessageId>{END}',
    }[kind]
    (tmp_path / "evil.xml").write_text(body)
    tracemalloc.start()
    (record,) = read("p", str(tmp_path), MAPPING)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert isinstance(record, InvalidRecord)
    assert record.message.startswith("refused: DTDForbidden")
    assert "TOP-SECRET" not in record.model_dump_json() and "lollol" not in record.message
    assert hits == []
    assert peak < 5_000_000


def test_large_message_is_streamed_not_loaded_whole(tmp_path):
    """Recordings carry bulky parts we do not keep; peak memory stays far below the file size."""
    count = 1500
    padding = "<CourtesyLine>" + "c" * 4000 + "</CourtesyLine>"
    recordings = [
        ern4_recording(
            f"A{i}",
            f"USAB1260{i:04d}",
            f"Song {i}",
            "P1",
            f"r/{i}.flac",
            "0" * 32,
            padding=padding,
        )
        for i in range(count)
    ]
    releases = [ern4_release("Release", "R0", "0123456789012", [f"A{i}" for i in range(count)])]
    deals = [("R0", [ern4_deal("AI", ["AIUse"], territories=["Worldwide"])])]
    path = tmp_path / "big.xml"
    path.write_text(ern4_message("43", recordings, releases, deals, {"P1": "A"}))
    size = path.stat().st_size
    tracemalloc.start()
    message = parse_message(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(message.recordings) == count
    assert size > 6_000_000
    assert peak < size / 4, (peak, size)


def decisions(delivery):
    from datetime import date

    from pipeline.licensing import decide
    from pipeline.licensing.policy import Policy

    items, _ = read_delivery(Partner.model_validate(delivery.partner))
    policy = Policy()
    return {
        i.key: [r.value for r in decide(i.license, policy, date(2026, 6, 1)).reasons]
        if isinstance(i, CatalogItem)
        else ["METADATA_INVALID"]
        for i in items
    }


def test_demo_ddex_delivery_gives_the_promised_decisions(tmp_path):
    from corpus_demo.connectors import write_ddex_delivery

    sources = []
    for i in range(4):
        source = tmp_path / f"src{i}.FLAC"
        source.write_bytes(bytes([i]) * 100)
        sources.append((f"demo-{i}", f"Title {i} & co", f"Artist {i % 2}", source))
    delivery = write_ddex_delivery(tmp_path / "ddex", sources, partner_id="demo-ddex")
    assert decisions(delivery) == delivery.expected
    assert sorted(map(sorted, delivery.expected.values())) == [
        [],
        [],
        ["NOT_YET_VALID"],
        ["TERRITORY_EXCLUDED"],
    ]


def test_an_empty_or_remote_delivery_stops_the_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="no message matches"):
        list(read("p", str(tmp_path), MAPPING))
    with pytest.raises(ValueError, match="local \\(file://\\) and gs:// deliveries only"):
        list(read("p", "https://host.example/ddex", MAPPING))


def one_recording_message(tmp_path: Path, isrc: str, deals: list[str]) -> str:
    """A delivery of one ERN 4.3 message: one recording on one release, with `deals`."""
    root = tmp_path / "d"
    md5, _ = audio(root, "x1.flac")
    recordings = [ern4_recording("A1", isrc, "Song", "P1", "resources/x1.flac", md5)]
    releases = [ern4_release("Release", "R0", "5012345678900", ["A1"])]
    (root / "m.xml").write_text(
        ern4_message("43", recordings, releases, [("R0", deals)], {"P1": "Ana"})
    )
    return str(root)


def test_per_country_deals_with_the_same_terms_are_one_grant_over_their_union(tmp_path):
    """A major label's shape: one deal per country plus a deal over many at once, all with
    the same terms. Taking one group of them granted only its first country."""
    import pycountry

    from pipeline.licensing.decide import decide
    from pipeline.licensing.model import License
    from pipeline.licensing.policy import Policy

    codes = sorted(c.alpha_2 for c in pycountry.countries)
    per_country, streaming = codes[:42], codes[60:91]
    deals = [ern4_deal(None, ["AIUse"], territories=[c], start="2026-01-01") for c in per_country]
    deals.append(ern4_deal(None, ["AIUse"], territories=streaming, start="2026-01-01"))
    deals.append(ern4_deal("SHORT", ["AIUse"], territories=["GB"], start="2026-01-01",
                           end="2026-02-01", models=()))  # fmt: skip
    [record] = read("major", one_recording_message(tmp_path, "GBXYZ2600009", deals), MAPPING)
    licence = record.data["license"]
    assert set(licence["territories"]) == set(per_country) | set(streaming)
    assert len(licence["territories"]) == len(set(licence["territories"]))
    assert licence["uses"] == ["ai_generative_training", "ai_training", "commercial"]
    assert "valid_until" not in licence, "the deal with other terms stayed apart"
    for territory in ("GB", per_country[0], streaming[-1]):
        policy = Policy(territories=[territory])
        assert decide(License(**licence), policy, date(2026, 6, 1)).accepted, territory
    assert not decide(
        License(**licence), Policy(territories=[codes[-1]]), date(2026, 6, 1)
    ).accepted


def test_recordings_that_share_an_identifier_are_all_reported(tmp_path, opened):
    """A DJ mix: two SoundRecordings with one ProprietaryId. The second used to overwrite
    the first silently; now each is an invalid record naming both XML paths."""
    root = tmp_path / "d"
    md5, _ = audio(root, "x1.flac")
    mix_id = '<ResourceId><ProprietaryId Namespace="DPID:X">MIX-1</ProprietaryId></ResourceId>'
    recordings = [
        ern4_recording(
            ref, None, title, "P1", "resources/x1.flac", md5, edition=False, padding=mix_id
        )  # fmt: skip
        for ref, title in (("A1", "Intro"), ("A2", "Outro"))
    ]
    recordings.append(
        ern4_recording("A3", "GBXYZ2600003", "Single", "P1", "resources/x1.flac", md5)
    )
    releases = [ern4_release("Release", "R0", "5012345678900", ["A1", "A2", "A3"])]
    deals = [("R0", [ern4_deal(None, ["AIUse"], territories=["Worldwide"])])]
    (root / "m.xml").write_text(ern4_message("43", recordings, releases, deals, {"P1": "Ana"}))
    records = list(read("dj", str(root), MAPPING))
    assert len(records) == 3, "every sound recording is one item or one invalid record"
    invalid = [r for r in records if isinstance(r, InvalidRecord)]
    assert len(invalid) == 2
    for record in invalid:
        assert "MIX-1" in record.message and "ambiguous" in record.message
        assert "SoundRecording[1]" in record.message and "SoundRecording[2]" in record.message
    assert {r.source.rsplit("/", 1)[-1] for r in invalid} == {"SoundRecording[1]",
                                                                "SoundRecording[2]"}  # fmt: skip
    assert "MIX-1" in {r.track_id for r in invalid}, "the identifier itself stays refused"
    [single] = [r for r in records if isinstance(r, RawRecord)]
    assert single.data["track_id"] == "GBXYZ2600003"


def test_deals_under_different_cc_licences_never_merge(tmp_path):
    """CC BY for the US and CC BY-NC for GB: one grant would claim CC BY over GB."""
    deals = [
        ern4_deal("CC-BY-4.0", ["AIUse"], territories=["US"], start="2026-01-01"),
        ern4_deal("CC-BY-NC-4.0", ["AIUse"], territories=["GB"], start="2026-01-01"),
    ]
    [record] = read("cc", one_recording_message(tmp_path, "GBXYZ2600010", deals), MAPPING)
    licence = record.data["license"]
    assert (licence["id"], licence["territories"]) in [
        ("CC-BY-4.0", ["US"]),
        ("CC-BY-NC-4.0", ["GB"]),
    ]
