"""Table-driven licence decisions: every reason code, switch, boundary and combination."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from pipeline.airflow_glue import task_date
from pipeline.licensing import Policy, decide
from pipeline.licensing.decide import licence_family
from pipeline.licensing.model import License
from pipeline.licensing.policy import AllowedFamilies
from pipeline.reasons import Reason as R

D = date(2026, 6, 15)
WORLD = {"territories": ["Worldwide"]}
DOCUMENT = {"uri": "https://contracts.acme.example/C42.pdf", "sha256": "ab" * 32}
CONTRACT = {
    "id": "LicenseRef-acme-C42",
    "uses": ["ai_training", "commercial"],
    **WORLD,
    "evidence": DOCUMENT,
}
BARE_CONTRACT = {k: v for k, v in CONTRACT.items() if k != "evidence"}
SA = {"allow": AllowedFamilies(share_alike=True)}
NC = {"allow": AllowedFamilies(non_commercial=True), "purpose": "non_commercial"}
ND = {"allow": AllowedFamilies(no_derivatives=True)}
EU = {"territories": ["DE", "FR"]}

CASES = [
    # (case id, licence fields, policy fields, logical date, expected reasons)
    ("cc0", {"id": "CC0-1.0"}, {}, D, []),
    ("pdm", {"id": "LicenseRef-PDM"}, {}, D, []),
    ("cc0 lower case", {"id": "cc0-1.0"}, {}, D, []),
    ("cc-by-1.0", {"id": "CC-BY-1.0"}, {}, D, []),
    ("cc-by-2.0", {"id": "CC-BY-2.0"}, {}, D, []),
    ("cc-by-2.5", {"id": "CC-BY-2.5"}, {}, D, []),
    ("cc-by-3.0", {"id": "CC-BY-3.0"}, {}, D, []),
    ("cc-by-4.0", {"id": "CC-BY-4.0"}, {}, D, []),
    ("cc-by-3.0 port", {"id": "CC-BY-3.0-DE"}, {}, D, []),
    ("cc-by-sa refused", {"id": "CC-BY-SA-4.0"}, {}, D, [R.USE_NOT_GRANTED]),
    ("cc-by-sa switch", {"id": "CC-BY-SA-4.0"}, SA, D, []),
    ("cc-by-nd refused", {"id": "CC-BY-ND-4.0"}, {}, D, [R.USE_NOT_GRANTED]),
    ("cc-by-nd switch", {"id": "CC-BY-ND-2.5"}, ND, D, []),
    ("cc-by-nc refused", {"id": "CC-BY-NC-4.0"}, {}, D, [R.USE_NOT_GRANTED]),
    ("cc-by-nc research", {"id": "CC-BY-NC-4.0"}, NC, D, []),
    (
        "cc-by-nc switch, commercial corpus",
        {"id": "CC-BY-NC-3.0"},
        {"allow": AllowedFamilies(non_commercial=True)},
        D,
        [R.USE_NOT_GRANTED],
    ),
    (
        "non-commercial corpus without the NC switch",
        {"id": "CC-BY-NC-4.0"},
        {"purpose": "non_commercial"},
        D,
        [R.USE_NOT_GRANTED],
    ),
    ("cc-by-nc-sa needs both switches", {"id": "CC-BY-NC-SA-4.0"}, NC, D, [R.USE_NOT_GRANTED]),
    (
        "cc-by-nc-sa with both",
        {"id": "CC-BY-NC-SA-4.0"},
        {**NC, "allow": AllowedFamilies(non_commercial=True, share_alike=True)},
        D,
        [],
    ),
    ("cc-by-nc-nd", {"id": "CC-BY-NC-ND-4.0"}, {}, D, [R.USE_NOT_GRANTED]),
    ("contract grants training", CONTRACT, {}, D, []),
    (
        "contract lacks ai_training",
        {**CONTRACT, "uses": ["commercial"]},
        {},
        D,
        [R.USE_NOT_GRANTED],
    ),
    (
        "contract lacks commercial",
        {**CONTRACT, "uses": ["ai_training"]},
        {},
        D,
        [R.USE_NOT_GRANTED],
    ),
    (
        "contract without commercial, research corpus",
        {**CONTRACT, "uses": ["ai_training"]},
        {"purpose": "non_commercial"},
        D,
        [],
    ),
    (
        "generative corpus needs generative grant",
        CONTRACT,
        {"required_uses": ["ai_training", "ai_generative_training"]},
        D,
        [R.USE_NOT_GRANTED],
    ),
    (
        "generative grant present",
        {**CONTRACT, "uses": ["ai_training", "ai_generative_training", "commercial"]},
        {"required_uses": ["ai_training", "ai_generative_training"]},
        D,
        [],
    ),
    (
        "inference only",
        {**CONTRACT, "uses": ["ai_inference", "commercial"]},
        {},
        D,
        [R.USE_NOT_GRANTED],
    ),
    ("unknown id", {"id": "All-Rights-Reserved"}, {}, D, [R.LICENSE_UNKNOWN]),
    ("malformed id", {"id": "CC BY 4.0"}, {}, D, [R.LICENSE_UNKNOWN]),
    ("cc version that does not exist", {"id": "CC-BY-5.0"}, {}, D, [R.LICENSE_UNKNOWN]),
    ("port on 4.0 does not exist", {"id": "CC-BY-4.0-DE"}, {}, D, [R.LICENSE_UNKNOWN]),
    ("bare LicenseRef", {"id": "LicenseRef-"}, {}, D, [R.LICENSE_UNKNOWN]),
    ("MIT is no audio licence", {"id": "MIT"}, {}, D, [R.LICENSE_UNKNOWN]),
    ("valid_until on the logical date", {**CONTRACT, "valid_until": D}, {}, D, []),
    (
        "valid_until the day before",
        {**CONTRACT, "valid_until": D - timedelta(days=1)},
        {},
        D,
        [R.EXPIRED],
    ),
    ("valid_from on the logical date", {**CONTRACT, "valid_from": D}, {}, D, []),
    (
        "valid_from the day after",
        {**CONTRACT, "valid_from": D + timedelta(days=1)},
        {},
        D,
        [R.NOT_YET_VALID],
    ),
    (
        "minimum remaining validity met",
        {**CONTRACT, "valid_until": D + timedelta(days=30)},
        {"min_validity_days": 30},
        D,
        [],
    ),
    (
        "minimum remaining validity missed",
        {**CONTRACT, "valid_until": D + timedelta(days=29)},
        {"min_validity_days": 30},
        D,
        [R.EXPIRED],
    ),
    (
        "old run gives the old answer",
        {**CONTRACT, "valid_until": date(2025, 12, 31)},
        {},
        date(2025, 12, 31),
        [],
    ),
    (
        "revoked before",
        {**CONTRACT, "revoked": {"date": D - timedelta(days=1)}},
        {},
        D,
        [R.REVOKED],
    ),
    (
        "revoked on the day",
        {**CONTRACT, "revoked": {"date": D, "reason": "takedown"}},
        {},
        D,
        [R.REVOKED],
    ),
    ("revoked later", {**CONTRACT, "revoked": {"date": D + timedelta(days=1)}}, {}, D, []),
    (
        "revoked within the minimum remaining validity (last day D+29)",
        {**CONTRACT, "revoked": {"date": D + timedelta(days=30)}},
        {"min_validity_days": 30},
        D,
        [R.REVOKED],
    ),
    (
        "revoked after the minimum remaining validity (last day D+30)",
        {**CONTRACT, "revoked": {"date": D + timedelta(days=31)}},
        {"min_validity_days": 30},
        D,
        [],
    ),
    (
        "territory list covers EU policy",
        {"id": "CC0-1.0", "territories": ["DE", "FR", "US"]},
        EU,
        D,
        [],
    ),
    ("worldwide minus US covers EU", {"id": "CC0-1.0", "excluded_territories": ["US"]}, EU, D, []),
    (
        "worldwide minus FR misses EU",
        {"id": "CC0-1.0", "excluded_territories": ["FR"]},
        EU,
        D,
        [R.TERRITORY_EXCLUDED],
    ),
    (
        "partial list misses EU",
        {"id": "CC0-1.0", "territories": ["DE"]},
        EU,
        D,
        [R.TERRITORY_EXCLUDED],
    ),
    (
        "listed and excluded",
        {"id": "CC0-1.0", "territories": ["DE", "FR"], "excluded_territories": ["FR"]},
        EU,
        D,
        [R.TERRITORY_EXCLUDED],
    ),
    (
        "worldwide policy, any exclusion",
        {"id": "CC0-1.0", "excluded_territories": ["KP"]},
        {},
        D,
        [R.TERRITORY_EXCLUDED],
    ),
    (
        "worldwide policy, country list",
        {"id": "CC0-1.0", "territories": ["US", "CA"]},
        {},
        D,
        [R.TERRITORY_EXCLUDED],
    ),
    ("tdm opt-out", {"id": "CC-BY-4.0", "tdm_opt_out": True}, {}, D, [R.TDM_OPT_OUT]),
    ("tdm opt-out on cc0", {"id": "CC0-1.0", "tdm_opt_out": True}, {}, D, [R.TDM_OPT_OUT]),
    (
        "evidence required, missing",
        {"id": "CC0-1.0"},
        {"require_evidence": True},
        D,
        [R.NO_EVIDENCE],
    ),  # fmt: skip
    ("contract without its document", BARE_CONTRACT, {}, D, [R.NO_EVIDENCE]),
    (
        "contract document without its sha256",
        {**CONTRACT, "evidence": {"uri": DOCUMENT["uri"]}},
        {},
        D,
        [R.NO_EVIDENCE],
    ),
    (
        "contract document not required",
        BARE_CONTRACT,
        {"require_contract_evidence": False},
        D,
        [],
    ),  # fmt: skip
    ("cc by needs no document", {"id": "CC-BY-4.0"}, {}, D, []),
    (
        "evidence required, given",
        {"id": "CC-BY-4.0", "evidence": {"uri": "s3://c/42.pdf"}},
        {"require_evidence": True},
        D,
        [],
    ),
    (
        "expired and territory-excluded",
        {**CONTRACT, "valid_until": date(2026, 1, 1), "territories": ["US"]},
        {},
        D,
        [R.EXPIRED, R.TERRITORY_EXCLUDED],
    ),
    (
        "unknown, not yet valid, opted out",
        {"id": "Proprietary", "valid_from": date(2027, 1, 1), "tdm_opt_out": True},
        {},
        D,
        [R.LICENSE_UNKNOWN, R.NOT_YET_VALID, R.TDM_OPT_OUT],
    ),
    (
        "everything wrong",
        {
            **BARE_CONTRACT,
            "uses": [],
            "valid_until": date(2026, 1, 1),
            "territories": ["US"],
            "tdm_opt_out": True,
            "revoked": {"date": date(2026, 2, 1)},
        },
        {"require_evidence": True},
        D,
        [
            R.USE_NOT_GRANTED,
            R.EXPIRED,
            R.REVOKED,
            R.TERRITORY_EXCLUDED,
            R.TDM_OPT_OUT,
            R.NO_EVIDENCE,
        ],
    ),
]


@pytest.mark.parametrize(
    ("licence", "policy", "as_of", "expected"),
    [pytest.param(lic, pol, day, exp, id=name) for name, lic, pol, day, exp in CASES],
)
def test_decision(licence, policy, as_of, expected):
    result = decide(License(**licence), Policy(**policy), as_of)
    assert sorted(result.reasons) == sorted(expected)
    assert result.accepted == (not expected)
    assert len(result.messages) == len(expected)
    for reason, message in zip(result.reasons, result.messages, strict=True):
        assert message.startswith(f"{reason}: ")


def test_table_is_large_and_covers_every_licence_reason():
    assert len(CASES) >= 40
    seen = {reason for *_, expected in CASES for reason in expected}
    licence_reasons = {
        R.LICENSE_UNKNOWN,
        R.USE_NOT_GRANTED,
        R.TERRITORY_EXCLUDED,
        R.NOT_YET_VALID,
        R.EXPIRED,
        R.REVOKED,
        R.TDM_OPT_OUT,
        R.NO_EVIDENCE,
    }
    assert licence_reasons <= seen


def test_families():
    assert licence_family("CC-BY-NC-SA-2.0-FR") == "cc"
    assert licence_family("LicenseRef-PDM") == "public-domain"
    assert licence_family("LicenseRef-acme-X1") == "contract"
    assert licence_family("GPL-3.0-only") == "unknown"


def test_unknown_use_is_a_metadata_error():
    with pytest.raises(ValidationError, match="uses"):
        License(id="LicenseRef-a-b", uses=["training"])


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), date(2026, 3, 1)),
        (datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), date(2026, 2, 28)),
        (datetime(2026, 2, 28, 23, 0, tzinfo=timezone(timedelta(hours=-5))), date(2026, 3, 1)),
        (datetime(2026, 3, 1, 12, 0), date(2026, 3, 1)),
    ],
)
def test_logical_date_is_the_utc_date_of_the_interval_end(moment, expected):
    assert task_date(moment, None) == expected
    assert task_date(None, moment) == expected


def test_time_zone_boundary_changes_the_answer():
    contract = License(**{**CONTRACT, "valid_until": date(2026, 2, 28)})
    late_evening_in_new_york = datetime(2026, 2, 28, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert not decide(contract, Policy(), task_date(late_evening_in_new_york, None)).accepted
    early_in_berlin = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert decide(contract, Policy(), task_date(early_in_berlin, None)).accepted


def test_a_decision_holds_until_a_date_moves_it():
    """Every day up to `holds_until` gives the same reasons, the day after does not."""
    from pipeline.licensing.decide import holds_until
    from pipeline.licensing.model import Revocation

    as_of = date(2026, 11, 20)
    policy = Policy(min_validity_days=30)
    cases = [
        License(id="CC0-1.0"),
        License(id="CC0-1.0", valid_from=date(2026, 12, 5)),
        License(id="CC0-1.0", valid_until=date(2027, 1, 31)),
        License(id="CC0-1.0", valid_until=date(2026, 12, 1)),
        License(id="CC0-1.0", revoked=Revocation(date=date(2027, 3, 1), reason="x")),
        License(
            id="CC0-1.0",
            valid_from=date(2026, 12, 1),
            valid_until=date(2027, 2, 1),
            revoked=Revocation(date=date(2027, 1, 20), reason="x"),
        ),
    ]
    for licence in cases:
        until = holds_until(licence, policy, as_of)
        reasons = decide(licence, policy, as_of).reasons
        last = until or as_of + timedelta(days=800)
        day = as_of
        while day <= last:
            assert decide(licence, policy, day).reasons == reasons, (licence, day)
            day += timedelta(days=1)
        if until is not None:
            assert decide(licence, policy, until + timedelta(days=1)).reasons != reasons
