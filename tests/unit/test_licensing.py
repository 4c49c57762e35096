from datetime import date

import pytest

from pipeline.catalogs.models import Evidence, License
from pipeline.licensing import Policy, decide
from pipeline.licensing.policy import AllowedFamilies
from pipeline.reasons import MEANINGS, Reason

AS_OF = date(2026, 6, 1)
STRICT = Policy()


def lic(**kw) -> License:
    return License(**{"id": "CC0-1.0", **kw})


@pytest.mark.parametrize(
    "licence_id", ["CC0-1.0", "LicenseRef-PDM", "CC-BY-4.0", "CC-BY-3.0", "CC-BY-2.5"]
)
def test_strict_policy_admits_open_licences(licence_id):
    assert decide(lic(id=licence_id), STRICT, AS_OF).accepted


@pytest.mark.parametrize(
    "licence_id", ["CC-BY-NC-4.0", "CC-BY-ND-4.0", "CC-BY-SA-4.0", "CC-BY-NC-ND-4.0"]
)
def test_strict_policy_refuses_restricted_cc(licence_id):
    result = decide(lic(id=licence_id), STRICT, AS_OF)
    assert not result.accepted
    assert result.reasons == [Reason.USE_NOT_GRANTED]


def test_switches_admit_sa_but_nc_never_for_commercial():
    open_policy = Policy(allow=AllowedFamilies(share_alike=True, non_commercial=True))
    assert decide(lic(id="CC-BY-SA-4.0"), open_policy, AS_OF).accepted
    assert not decide(lic(id="CC-BY-NC-4.0"), open_policy, AS_OF).accepted
    research = open_policy.model_copy(update={"purpose": "non_commercial"})
    assert decide(lic(id="CC-BY-NC-4.0"), research, AS_OF).accepted


def test_contract_needs_ai_training_and_commercial_use():
    contract = lic(id="LicenseRef-acme-C42", uses=["ai_training", "commercial"])
    assert decide(contract, STRICT, AS_OF).accepted
    no_ai = contract.model_copy(update={"uses": ["commercial"]})
    assert decide(no_ai, STRICT, AS_OF).reasons == [Reason.USE_NOT_GRANTED]


def test_unknown_licence():
    assert decide(lic(id="All rights reserved"), STRICT, AS_OF).reasons == [Reason.LICENSE_UNKNOWN]


def test_validity_is_judged_at_the_logical_date_not_today():
    contract = lic(
        id="LicenseRef-acme-C1",
        uses=["ai_training", "commercial"],
        valid_from=date(2025, 1, 1),
        valid_until=date(2025, 12, 31),
    )
    assert decide(contract, STRICT, date(2025, 6, 1)).accepted
    assert decide(contract, STRICT, date(2026, 1, 1)).reasons == [Reason.EXPIRED]
    assert decide(contract, STRICT, date(2024, 12, 31)).reasons == [Reason.NOT_YET_VALID]


def test_all_applicable_reasons_are_reported():
    licence = lic(
        id="LicenseRef-acme-C1",
        uses=["ai_training", "commercial"],
        valid_until=date(2026, 1, 1),
        territories=["US"],
        tdm_opt_out=True,
    )
    result = decide(licence, STRICT.model_copy(update={"require_evidence": True}), AS_OF)
    assert result.reasons == sorted(
        [Reason.EXPIRED, Reason.TERRITORY_EXCLUDED, Reason.TDM_OPT_OUT, Reason.NO_EVIDENCE]
    )
    assert len(result.messages) == 4


def test_territories():
    eu = Policy(territories=["DE", "FR"])
    assert decide(lic(territories=["DE", "FR", "US"]), eu, AS_OF).accepted
    assert decide(lic(territories=["Worldwide"], excluded_territories=["US"]), eu, AS_OF).accepted
    assert not decide(
        lic(territories=["Worldwide"], excluded_territories=["FR"]), eu, AS_OF
    ).accepted
    assert not decide(lic(territories=["DE"]), eu, AS_OF).accepted
    assert not decide(lic(excluded_territories=["FR"]), STRICT, AS_OF).accepted


def test_evidence_satisfies_policy():
    policy = STRICT.model_copy(update={"require_evidence": True})
    licence = lic(evidence=Evidence(uri="https://x.example/c.pdf"))
    assert decide(licence, policy, AS_OF).accepted


def test_policy_hash_is_stable_and_sensitive():
    assert Policy().hash == Policy().hash
    assert Policy().hash != Policy(territories=["DE"]).hash


def test_every_reason_has_a_meaning():
    assert set(MEANINGS) == set(Reason)
