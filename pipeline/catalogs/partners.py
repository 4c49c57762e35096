"""The partners file: which partners to pull and how (YAML).

The file is checked against `schemas/partners.schema.json` (generated from the models below)
before pydantic sees it, so errors name the offending entry and field. Secrets never live in
the file: `credentials` names an environment variable or an Airflow Connection, and the
schema has no place where a token, password or URL user-info could go.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from pipeline.licensing.model import Use

ConnectorName = Literal["manifest", "csv", "ddex", "http"]

_USERINFO = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@"


class PartnersFileError(ValueError):
    """The partners file cannot be used; the message names the file and the entry."""


class EnvCredential(BaseModel):
    """The secret is in this environment variable (upper case, as env names are)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str = Field(
        pattern=r"^[A-Z_][A-Z0-9_]{0,127}$",
        description="name of the environment variable holding the secret, never the secret",
    )


class AirflowCredential(BaseModel):
    """The secret is the password (or extra `token`) of this Airflow Connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    airflow_connection: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,250}$", description="Airflow Connection id"
    )


Credentials = EnvCredential | AirflowCredential


class CsvColumns(BaseModel):
    """CSV header names for each manifest field; the defaults are the field names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    track_id: str = "track_id"
    isrc: str = "isrc"
    title: str = "title"
    artists: str = "artists"
    audio: str = "audio"
    sha256: str = "sha256"
    license_id: str = "license_id"
    uses: str = "uses"
    territories: str = "territories"
    excluded_territories: str = "excluded_territories"
    valid_from: str = "valid_from"
    valid_until: str = "valid_until"
    attribution: str = "attribution"
    evidence_uri: str = "evidence_uri"
    evidence_sha256: str = "evidence_sha256"
    tdm_opt_out: str = "tdm_opt_out"


class CsvMapping(BaseModel):
    """How to read a partner's CSV manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: str = Field(
        default="manifest.csv", description="file name or glob inside the delivery folder"
    )
    columns: CsvColumns = Field(default_factory=CsvColumns)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    list_separator: str = Field(
        default=";",
        min_length=1,
        description="separates values in list cells (artists, uses, territories)",
    )


class DdexMapping(BaseModel):
    """How DDEX deal terms become granted uses; nothing is granted unless mapped here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: str = Field(default="**/*.xml", description="glob of ERN messages in the delivery")
    use_types: dict[str, list[Use]] = Field(
        default_factory=dict,
        description="DDEX UseType (or its UserDefinedValue) -> granted uses, "
        'e.g. {"AIUse": ["ai_training"], "PermanentDownload": []}',
    )
    commercial_models: dict[str, list[Use]] = Field(
        default_factory=dict,
        description="CommercialModelType -> uses added when the deal grants any use, "
        'e.g. {"PayAsYouGoModel": ["commercial"]}',
    )


class HttpPagination(BaseModel):
    """How the feed pages: by an opaque cursor (or next-page URL), or by page number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: Literal["cursor", "page", "none"] = "cursor"
    cursor_param: str = "cursor"
    next_field: str = Field(
        default="next_cursor",
        description="dotted path of the next cursor (or next-page URL) in a page body",
    )
    page_param: str = "page"
    first_page: int = Field(default=1, ge=0)
    page_size_param: str | None = None
    page_size: int | None = Field(default=None, gt=0)
    max_pages: int = Field(default=100_000, gt=0)


class HttpMapping(BaseModel):
    """Where the records are in each page, how they map to manifest fields, how to page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items_field: str = Field(default="items", description="dotted path of the record list")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="manifest field (dotted, e.g. license.id) -> dotted path in a feed item",
    )
    pagination: HttpPagination = Field(default_factory=HttpPagination)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    max_attempts: int = Field(default=6, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=60, description="first retry wait")
    max_retry_after_s: float = Field(default=120.0, ge=0)


MAPPINGS: dict[str, type[BaseModel]] = {"csv": CsvMapping, "ddex": DdexMapping, "http": HttpMapping}


def _connector_rules(schema: dict[str, Any]) -> None:
    """JSON Schema twin of `_mapping_for_connector`: each connector admits its own mapping."""
    rules: list[dict] = [
        {
            "if": {
                "anyOf": [
                    {"not": {"required": ["connector"]}},
                    {"properties": {"connector": {"const": "manifest"}}},
                ]
            },
            "then": {"properties": {"mapping": {"type": "null"}}},
        }
    ]
    for name, model in MAPPINGS.items():
        rules.append(
            {
                "if": {
                    "required": ["connector"],
                    "properties": {"connector": {"const": name}},
                },
                "then": {
                    "properties": {
                        "mapping": {
                            "anyOf": [{"$ref": f"#/$defs/{model.__name__}"}, {"type": "null"}]
                        }
                    }
                },
            }
        )
    schema["allOf"] = rules
    schema["properties"]["location"]["not"] = {"pattern": _USERINFO}
    mapping = schema["properties"]["mapping"]
    mapping.pop("anyOf")
    mapping["type"] = ["object", "null"]


class Partner(BaseModel):
    """One partner: who, which connector reads its catalog, where, and with what settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(min_length=1)
    connector: ConnectorName = "manifest"
    location: str = Field(
        min_length=1,
        description="folder, file:// or gs:// URI, or https:// URL; a relative path is "
        "relative to the partners file; never with user:password@",
    )
    credentials: Credentials | None = Field(
        default=None, description="where the secret is: {env: NAME} or {airflow_connection: ID}"
    )
    mapping: CsvMapping | DdexMapping | HttpMapping | None = Field(
        default=None, description="connector-specific: csv columns, DDEX use types, feed paging"
    )
    allowed_audio_hosts: list[str] = Field(
        default_factory=list,
        description="hosts (host or host:port; a bucket for gs://) audio URLs may point at",
    )
    missing_items: Literal["keep", "remove"] = Field(
        default="remove",
        description="what happens to items that disappear from a full delivery",
    )

    @field_validator("location")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        if "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("location must not carry user:password@; use credentials")
        return value

    @field_validator("mapping", mode="before")
    @classmethod
    def _mapping_for_connector(cls, value: object, info: ValidationInfo) -> object:
        if value is None or "connector" not in info.data:
            return value
        connector = info.data["connector"]
        model = MAPPINGS.get(connector)
        if model is None:
            raise ValueError(f"connector {connector!r} takes no mapping")
        return value if isinstance(value, model) else model.model_validate(value)

    def mapping_or_default(self) -> BaseModel | None:
        """The partner's mapping, or its connector's defaults."""
        if self.mapping is not None:
            return self.mapping
        model = MAPPINGS.get(self.connector)
        return model() if model else None


def partners_json_schema() -> dict:
    """The whole file: a `partners:` list; top-level `x-` keys are free for YAML anchors."""
    partner = Partner.model_json_schema()
    _connector_rules(partner)
    defs = partner.pop("$defs", {})
    defs["Partner"] = partner
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ethical-corpus.example/schemas/partners.schema.json",
        "title": "Partners file",
        "description": "Which partner catalogs to pull and how; secrets only by reference.",
        "type": "object",
        "properties": {
            "partners": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Partner"}}
        },
        "required": ["partners"],
        "patternProperties": {"^x-": {}},
        "additionalProperties": False,
        "$defs": defs,
    }


def schema_file() -> Path:
    return Path(__file__).resolve().parents[2] / "schemas" / "partners.schema.json"


@cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_file().read_text(encoding="utf-8")))


def _schema_errors(path: Path, doc: dict) -> str | None:
    from jsonschema.exceptions import best_match

    found = []
    for error in _validator().iter_errors(doc):
        while error.context:
            branches = [e for e in error.context if e.schema.get("type") != "null"]
            error = best_match(branches or error.context)
        found.append(error)
    found.sort(key=lambda e: [str(p) for p in e.absolute_path])
    if not found:
        return None
    return "; ".join(dict.fromkeys(f"{_where(e.absolute_path)}: {_message(e)}" for e in found))


def _where(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _message(error) -> str:
    """Says what is wrong without quoting the offending value, which might be a secret."""
    rule, expected = error.validator, error.validator_value
    if "credentials" in list(error.absolute_path) and rule != "additionalProperties":
        return "must be a reference: {env: NAME} or {airflow_connection: ID}"
    if rule in ("additionalProperties", "required"):
        return error.message
    if rule == "not" and list(error.absolute_path)[-1:] == ["location"]:
        return "must not carry user:password@; use credentials"
    if rule == "pattern":
        return f"does not match {expected!r}"
    if rule == "type" and expected == "null" and list(error.absolute_path)[-1:] == ["mapping"]:
        return "this connector takes no mapping"
    if rule == "enum":
        return f"must be one of {expected}"
    if rule in ("type", "const"):
        return f"must be {rule} {expected!r}"
    return f"fails {rule} {expected!r}"[:200]


def load_partners(path: Path) -> list[Partner]:
    """Parse and validate `path`; relative locations are resolved against its folder."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PartnersFileError(f"{path}: cannot read partners file: {exc}") from exc
    entries = (doc or {}).get("partners") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PartnersFileError(f"{path}: expected a non-empty 'partners:' list")
    problems = _schema_errors(path, doc)
    if problems:
        raise PartnersFileError(f"{path}: invalid partners file: {problems}")
    partners: list[Partner] = []
    for index, entry in enumerate(entries):
        try:
            partner = Partner.model_validate(entry)
        except ValidationError as exc:
            raise PartnersFileError(f"{path}: partners[{index}]: {exc}") from exc
        if "://" not in partner.location:
            location = (path.parent / partner.location).resolve()
            partner = partner.model_copy(update={"location": str(location)})
        partners.append(partner)
    ids = [p.id for p in partners]
    if len(set(ids)) != len(ids):
        raise PartnersFileError(f"{path}: partner ids must be unique, got {ids}")
    return partners
