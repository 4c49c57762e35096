import json

import pytest

from pipeline import schema_export
from pipeline.licensing.policy import Policy, PolicyError, load_policy


def test_committed_json_schemas_match_the_models():
    for name, schema in schema_export.generated().items():
        committed = (schema_export.SCHEMAS / name).read_text(encoding="utf-8")
        assert committed == schema_export.render(schema), (
            f"schemas/{name} is stale: run python -m pipeline.schema_export"
        )


def test_no_file_means_the_strict_default():
    policy = load_policy(None)
    assert policy == Policy()
    assert policy.purpose == "commercial"
    assert not any(policy.allow.model_dump().values())


def test_policy_file_is_loaded(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "name: research\npurpose: non_commercial\nterritories: [DE, FR]\n"
        "allow: {non_commercial: true, share_alike: true}\nrequire_evidence: true\n"
        "audio: {min_duration_s: 5}\n"
    )
    policy = load_policy(path)
    assert policy.allow.non_commercial and policy.allow.share_alike
    assert policy.territories == ["DE", "FR"]
    assert policy.audio.min_duration_s == 5
    assert policy.hash != Policy().hash


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("purpose: profit\n", "purpose"),
        ("allow: {non_comercial: true}\n", "non_comercial"),
        ("territories: [Europe]\n", "Europe"),
        ("min_validity_days: -1\n", "min_validity_days"),
        ("required_uses: [training]\n", "required_uses"),
        ("audio: {min_duration_s: soon}\n", "audio.min_duration_s"),
        ("- just\n- a list\n", "top level"),
        ("purpose: [unclosed\n", "cannot read"),
    ],
)
def test_invalid_policy_names_file_and_field(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_policy_schema_is_valid_json_schema():
    from jsonschema import Draft202012Validator

    schema = json.loads((schema_export.SCHEMAS / "policy.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert not list(Draft202012Validator(schema).iter_errors({}))
