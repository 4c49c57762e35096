"""The partners file: schema first, typed mappings, secrets only by reference, safe paths."""

import json
import os
import textwrap

import pytest

from pipeline.catalogs.credentials import CredentialError, resolve_secret
from pipeline.catalogs.delivery import read_delivery
from pipeline.catalogs.models import CatalogItem, InvalidRecord
from pipeline.catalogs.partners import (
    AirflowCredential,
    CsvMapping,
    DdexMapping,
    EnvCredential,
    HttpMapping,
    Partner,
    PartnersFileError,
    load_partners,
    partners_json_schema,
)
from pipeline.licensing.model import Use

FULL = """
partners:
  - id: jsonl-label
    name: JSONL Label
    location: deliveries/jsonl
  - id: csv-label
    name: CSV Label
    connector: csv
    location: file:///srv/deliveries/csv
    missing_items: keep
    mapping:
      columns: {track_id: ID, territories: Territories}
      list_separator: "|"
  - id: ddex-label
    name: DDEX Label
    connector: ddex
    location: gs://partner-drop/ddex-label
    allowed_audio_hosts: [partner-drop]
    mapping:
      use_types:
        AIUse: [ai_training, ai_generative_training]
        PermanentDownload: []
      commercial_models: {PayAsYouGoModel: [commercial]}
  - id: feed-label
    name: Feed Label
    connector: http
    location: https://api.feed.example/v1/tracks
    credentials: {airflow_connection: feed_label_api}
    allowed_audio_hosts: [cdn.feed.example]
    mapping:
      items_field: data.tracks
      fields: {track_id: id, audio: media.url}
      pagination: {style: page, page_param: p, page_size_param: per_page, page_size: 100}
  - id: feed-two
    name: Feed Two
    connector: http
    location: https://api.two.example/feed
    credentials: {env: FEED_TWO_TOKEN}
x-notes: free text for YAML anchors
"""


def write(tmp_path, text):
    path = tmp_path / "partners.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_every_connector_parses_with_typed_mappings(tmp_path):
    jsonl, csv, ddex, feed, two = load_partners(write(tmp_path, FULL))
    assert jsonl.connector == "manifest" and jsonl.mapping is None
    assert jsonl.location == str(tmp_path / "deliveries/jsonl")
    assert jsonl.missing_items == "remove" and csv.missing_items == "keep"
    assert isinstance(csv.mapping, CsvMapping)
    assert csv.mapping.columns.track_id == "ID" and csv.mapping.columns.title == "title"
    assert csv.location == "file:///srv/deliveries/csv"
    assert isinstance(ddex.mapping, DdexMapping)
    assert ddex.mapping.use_types["AIUse"] == [Use.AI_TRAINING, Use.AI_GENERATIVE_TRAINING]
    assert ddex.allowed_audio_hosts == ["partner-drop"]
    assert isinstance(feed.mapping, HttpMapping)
    assert feed.mapping.pagination.style == "page" and feed.mapping.pagination.page_size == 100
    assert feed.credentials == AirflowCredential(airflow_connection="feed_label_api")
    assert two.credentials == EnvCredential(env="FEED_TWO_TOKEN")
    assert isinstance(two.mapping_or_default(), HttpMapping)


def test_the_committed_schema_accepts_the_example_and_matches_the_model():
    from pipeline import schema_export

    committed = json.loads((schema_export.SCHEMAS / "partners.schema.json").read_text())
    assert committed == json.loads(json.dumps(partners_json_schema()))
    partner = committed["$defs"]["Partner"]
    assert partner["additionalProperties"] is False
    assert set(partner["properties"]) == {
        "id",
        "name",
        "connector",
        "location",
        "credentials",
        "mapping",
        "allowed_audio_hosts",
        "missing_items",
    }


SECRET = "ghp_Sup3rSecretTokenValue"


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        (f"credentials: {{token: {SECRET}}}", "partners[0].credentials"),
        (f"credentials: {SECRET}", "partners[0].credentials"),
        (f"credentials: {{env: {SECRET}}}", "partners[0].credentials"),
        (f"credentials: {{env: FEED, password: {SECRET}}}", "partners[0].credentials"),
        (f"token: {SECRET}", "partners[0]"),
        (f"mapping: {{fields: {{x: y}}, token: {SECRET}}}", "partners[0].mapping"),
    ],
)
def test_inline_secrets_are_impossible_and_never_echoed(tmp_path, entry, where):
    path = write(
        tmp_path,
        f"""
        partners:
          - id: feed
            name: Feed
            connector: http
            location: https://api.example/feed
            {entry}
        """,
    )
    with pytest.raises(PartnersFileError) as error:
        load_partners(path)
    message = str(error.value)
    assert str(path) in message and where in message
    assert SECRET not in message


def test_credentials_in_the_location_url_are_refused(tmp_path):
    path = write(
        tmp_path,
        f"""
        partners:
          - id: feed
            name: Feed
            connector: http
            location: https://user:{SECRET}@api.example/feed
        """,
    )
    with pytest.raises(PartnersFileError, match=r"partners\[0\]\.location: must not carry") as e:
        load_partners(path)
    assert SECRET not in str(e.value)
    with pytest.raises(ValueError, match="user:password"):
        Partner(id="x", name="X", location=f"https://u:{SECRET}@h/x")


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("connector: csv\n    mapping: {use_types: {AIUse: [ai_training]}}", "use_types"),
        ("connector: ddex\n    mapping: {use_types: {AIUse: [teleport]}}", "use_types.AIUse[0]"),
        ("mapping: {files: '*.csv'}", "partners[0].mapping"),
        ("connector: ftp", "partners[0].connector"),
        ("missing_items: purge", "partners[0].missing_items"),
        ("connector: http\n    mapping: {pagination: {style: offset}}", "pagination.style"),
    ],
)
def test_mapping_and_fields_are_checked_per_connector(tmp_path, entry, fragment):
    path = write(
        tmp_path,
        f"""
partners:
  - id: p
    name: P
    location: somewhere
    {entry}
""",
    )
    with pytest.raises(PartnersFileError) as error:
        load_partners(path)
    assert fragment in str(error.value)


def test_load_errors_keep_their_form(tmp_path):
    with pytest.raises(PartnersFileError, match="non-empty 'partners:' list"):
        load_partners(write(tmp_path, "partners: []\n"))
    with pytest.raises(PartnersFileError, match="cannot read"):
        load_partners(tmp_path / "absent.yaml")
    with pytest.raises(PartnersFileError, match="must be unique"):
        load_partners(
            write(
                tmp_path,
                "partners:\n  - {id: a, name: A, location: x}\n  - {id: a, name: B, location: y}\n",
            )
        )
    with pytest.raises(PartnersFileError, match=r"partners\[1\]\.id"):
        load_partners(
            write(
                tmp_path,
                "partners:\n  - {id: a, name: A, location: x}\n"
                "  - {id: B!, name: B, location: y}\n",
            )
        )


def test_env_credential_resolves_and_a_missing_one_names_only_the_reference(monkeypatch):
    monkeypatch.setenv("LABEL_TOKEN", SECRET)
    assert resolve_secret(EnvCredential(env="LABEL_TOKEN")) == SECRET
    assert resolve_secret({"env": "LABEL_TOKEN"}) == SECRET
    monkeypatch.delenv("LABEL_TOKEN")
    with pytest.raises(CredentialError, match="env:LABEL_TOKEN"):
        resolve_secret(EnvCredential(env="LABEL_TOKEN"))
    with pytest.raises(CredentialError, match=r"\['token'\]"):
        resolve_secret({"token": SECRET})


def test_airflow_connection_credential_resolves_through_airflow(monkeypatch, airflow_home):
    conn = json.dumps({"conn_type": "http", "host": "api.example", "password": SECRET})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNERS_FILE_TEST", conn)
    assert os.environ["AIRFLOW_HOME"] == airflow_home
    assert resolve_secret(AirflowCredential(airflow_connection="partners_file_test")) == SECRET
    with pytest.raises(CredentialError) as missing:
        resolve_secret(AirflowCredential(airflow_connection="partners_file_absent"))
    assert "airflow_connection:partners_file_absent" in str(missing.value)


def manifest_line(track_id, audio):
    return json.dumps(
        {
            "track_id": track_id,
            "title": "T",
            "artists": ["A"],
            "audio": audio,
            "license": {"id": "CC0-1.0"},
        }
    )


def test_path_traversal_and_symlinks_out_of_a_delivery_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.flac").write_bytes(b"x")
    root = tmp_path / "delivery"
    (root / "audio").mkdir(parents=True)
    (root / "audio" / "ok.flac").write_bytes(b"ok")
    (root / "audio" / "link.flac").symlink_to(outside / "secret.flac")
    (root / "linked-dir").symlink_to(outside)
    (root / "audio" / "inner.flac").symlink_to(root / "audio" / "ok.flac")
    lines = [
        manifest_line("ok", "audio/ok.flac"),
        manifest_line("dotdot", "../outside/secret.flac"),
        manifest_line("deep", "audio/../../outside/secret.flac"),
        manifest_line("absolute", str(outside / "secret.flac")),
        manifest_line("fileuri", f"file://{outside / 'secret.flac'}"),
        manifest_line("link", "audio/link.flac"),
        manifest_line("linkdir", "linked-dir/secret.flac"),
        manifest_line("backslash", "audio\\\\..\\\\..\\\\outside\\\\secret.flac"),
        manifest_line("inner", "audio/inner.flac"),
    ]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    items, _ = read_delivery(Partner(id="p", name="P", location=str(root)))
    by_id = {i.track_id: i for i in items}
    assert isinstance(by_id["ok"], CatalogItem) and isinstance(by_id["inner"], CatalogItem)
    refused = {k: v.message for k, v in by_id.items() if isinstance(v, InvalidRecord)}
    assert set(refused) == {"dotdot", "deep", "absolute", "fileuri", "link", "linkdir", "backslash"}
    for key in ("dotdot", "deep", "link", "linkdir"):
        assert "escapes the delivery root" in refused[key]
    for key in ("absolute", "fileuri", "backslash"):
        assert "must be relative to the delivery root" in refused[key]


def test_csv_deliveries_get_the_same_path_checks(tmp_path):
    outside = tmp_path / "outside.flac"
    outside.write_bytes(b"x")
    root = tmp_path / "delivery"
    root.mkdir()
    (root / "link.flac").symlink_to(outside)
    (root / "manifest.csv").write_text(
        "track_id,title,artists,audio,license_id\n"
        "a,T,A,link.flac,CC0-1.0\n"
        "b,T,A,../outside.flac,CC0-1.0\n"
    )
    partner = Partner(id="p", name="P", connector="csv", location=str(root))
    items, _ = read_delivery(partner)
    assert [type(i).__name__ for i in items] == ["InvalidRecord", "InvalidRecord"]
    assert all("escapes the delivery root" in i.message for i in items)
