"""Provenance collections on a real SecantusDB: validators, indexes, and partner data that
tries to become MongoDB operators."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import WriteError

from pipeline.config import Settings
from pipeline.provenance import connect
from pipeline.provenance.collections import COLLECTIONS, ensure_collections
from pipeline.refresh import run_refresh
from pipeline.versions import trace_item

README = Path(__file__).resolve().parents[2] / "README.md"


def test_collections_are_created_with_validators_idempotently(corpus_env, mongo_uri):
    db = MongoClient(mongo_uri).get_default_database()
    db.decisions.insert_one({"_id": "old", "anything": 1})  # a database from before validators
    db.decisions.create_index([("version", 1), ("batch", 1)])  # an index since retired
    prov = connect(Settings.from_env())
    ensure_collections(prov.db)
    prov.close()
    options = {c["name"]: c["options"] for c in db.list_collections()}
    for spec in COLLECTIONS:
        assert options[spec.name]["validator"] == spec.validator, spec.name
        assert options[spec.name]["validationAction"] == "error"
        names = {tuple(ix["key"].items()) for ix in db[spec.name].list_indexes()}
        for index in spec.indexes:
            assert tuple(index.document["key"].items()) in names, (spec.name, index.document)
        assert not set(spec.retired) & {ix["name"] for ix in db[spec.name].list_indexes()}
    assert db.decisions.find_one({"_id": "old"}) == {"_id": "old", "anything": 1}

    decision = {
        "version": "v1",
        "item_key": "p:t",
        "partner": "p",
        "track_id": "t",
        "status": "rejected",
        "stage": "licence",
        "reasons": ["EXPIRED"],
        "as_of": "2026-11-20",
    }
    db.decisions.insert_one({**decision, "_id": "v1/p:t"})
    for broken in (
        {"status": "maybe"},
        {"reasons": ["NOT_A_REASON_CODE"]},
        {"as_of": "20 Nov 2026"},
        {"item_key": None},
    ):
        with pytest.raises(WriteError) as refused:
            db.decisions.insert_one({**decision, **broken})
        assert refused.value.code == 121, broken
    with pytest.raises(WriteError):
        db.events.insert_one({"run_id": "r", "kind": "k", "at": datetime.now(UTC)})


def test_readme_documents_every_collection():
    text = README.read_text()
    section = text[text.index("## Provenance in MongoDB") :]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = [row.split("`")[1] for row in rows]
    assert documented[: len(COLLECTIONS)] == [spec.name for spec in COLLECTIONS]


HOSTILE = [
    {
        "track_id": "H1",
        "title": "Valid but expired",
        "artists": ["A"],
        "audio": "h1.wav",
        "license": {"id": "CC-BY-4.0", "uses": ["ai_training"], "valid_until": "2020-01-01"},
        "$where": "sleep(10000)",
        "meta.data": {"$gt": ""},
    },
    {"track_id": "H2", "$set": {"status": "accepted"}, "license": {"$ne": None}},
    {"track_id": {"$gt": ""}, "title": "operator as id", "a.b": 1},
    {"track_id": "H4", "title": "T", "artists": ["A"], "audio": "h4.wav", "license.id": "x"},
]


def _bad_keys(value, path="") -> list[str]:
    if isinstance(value, dict):
        found = [f"{path}/{k}" for k in value if k.startswith("$") or "." in k]
        for k, v in value.items():
            found += _bad_keys(v, f"{path}/{k}")
        return found
    if isinstance(value, list):
        return [bad for item in value for bad in _bad_keys(item, path)]
    return []


def test_partner_keys_never_become_mongodb_field_names(corpus_env, mongo_uri, tmp_path):
    delivery = tmp_path / "hostile"
    delivery.mkdir()
    (delivery / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in HOSTILE) + "\n")
    (delivery / "catalog.csv").write_text("$id,title.main,who,file,lic\nC1,T,A,c1.wav,X\n")
    partners = tmp_path / "partners.yaml"
    partners.write_text(
        json.dumps(
            {
                "partners": [
                    {"id": "hostile", "name": "Hostile", "location": str(delivery)},
                    {
                        "id": "hostile-csv",
                        "name": "Hostile CSV",
                        "connector": "csv",
                        "location": str(delivery / "catalog.csv"),
                        "mapping": {
                            "columns": {
                                "track_id": "$id",
                                "title": "title.main",
                                "artists": "who",
                                "audio": "file",
                                "license_id": "lic",
                            }
                        },
                    },
                ]
            }
        )
    )
    settings = Settings.from_env(partners=partners)
    result = run_refresh(settings, as_of=date(2026, 11, 20), run_id="hostile-1")
    assert result["accepted"] == 0 and result["rejected_items"] == 5

    db = MongoClient(mongo_uri).get_default_database()
    for name in db.list_collection_names():
        for doc in db[name].find():
            assert _bad_keys(doc) == [], (name, doc["_id"])
    decisions = {d["item_key"]: d for d in db.decisions.find({"version": result["version"]})}
    assert decisions["hostile:H1"]["reasons"] == ["EXPIRED"]
    assert "$where" not in json.dumps(decisions["hostile:H1"], default=str)
    assert decisions["hostile:H2"]["reasons"] == ["METADATA_INVALID"]
    assert json.loads(decisions["hostile:H2"]["raw_json"])["$set"] == {"status": "accepted"}
    assert json.loads(decisions["hostile:#line-3"]["raw_json"])["a.b"] == 1
    [history] = trace_item(settings, "hostile:#line-3")
    assert history["title"] == "operator as id"
    assert history["deliveries"][0]["source"].endswith("manifest.jsonl:3")
    assert "$id" in db.partners.find_one({"_id": "hostile-csv"})["config_json"]
    deliveries = {d["partner"]: d for d in db.deliveries.find()}
    assert deliveries["hostile"]["records"] == 4 and deliveries["hostile"]["invalid"] == 3
    assert deliveries["hostile-csv"]["records"] == 1
