"""What the demo delivery is built to produce: the test oracle, kept apart from the demo."""

from __future__ import annotations

from corpus_demo.delivery import PARTNER_ID, TRACKS


def expected_outcomes(policy: str = "strict") -> dict[str, list[str]]:
    """Item key -> the reason codes the demo is built to produce ([]: accepted)."""
    by_fault = {
        "missing": "AUDIO_MISSING",
        "checksum": "AUDIO_CHECKSUM_MISMATCH",
        "truncated": "AUDIO_UNDECODABLE",
        "malformed": "METADATA_INVALID",
    }
    by_track = {
        "DL012": ["NO_EVIDENCE"],
        "DL013": ["USE_NOT_GRANTED"],
        "DL014": ["EXPIRED"],
        "DL015": ["USE_NOT_GRANTED"],
        "DL016": ["TERRITORY_EXCLUDED"],
        "DL017": ["TDM_OPT_OUT"],
        "DL023": ["NOT_YET_VALID"],
        "DL024": ["LICENSE_UNKNOWN"],
        "DL025": ["REVOKED"],
        "DL026": ["EXPIRED", "TERRITORY_EXCLUDED"],
    }
    if policy == "research":
        del by_track["DL013"], by_track["DL015"]
    outcomes = {
        f"{PARTNER_ID}:{t[0]}": ([by_fault[t[8]]] if t[8] else by_track.get(t[0], []))
        for t in TRACKS
    }
    outcomes.update(
        {
            "demo-ddex:QZDEM2600101": [],
            "demo-ddex:QZDEM2600102": [],
            "demo-ddex:QZDEM2600103": ["TERRITORY_EXCLUDED"],
            "demo-ddex:QZDEM2600104": ["NOT_YET_VALID"],
            "demo-csv:CSV-01": [],
            "demo-csv:CSV-02": ["DUPLICATE"],
            "demo-csv:CSV-03": ["USE_NOT_GRANTED"],
            "demo-csv:CSV-04": ["TDM_OPT_OUT"],
            "demo-feed:DF01": [],
            "demo-feed:DF02": [],
            "demo-feed:DF03": ["METADATA_INVALID"],
            "demo-feed:DF04": ["EXPIRED"],
            "demo-feed:DF05": ["TERRITORY_EXCLUDED"],
        }
    )
    return outcomes


def expected_counts(policy: str = "strict") -> tuple[set[str], dict[str, int]]:
    """(accepted item keys, rejections per reason code) the demo is built to produce."""
    outcomes = expected_outcomes(policy)
    accepted = {key for key, reasons in outcomes.items() if not reasons}
    per_reason: dict[str, int] = {}
    for reasons in outcomes.values():
        for reason in reasons:
            per_reason[reason] = per_reason.get(reason, 0) + 1
    return accepted, dict(sorted(per_reason.items()))
