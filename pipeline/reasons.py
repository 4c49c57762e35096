"""Stable reason codes: why a catalog item was refused. Users and reports rely on the names."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    LICENSE_UNKNOWN = "LICENSE_UNKNOWN"
    USE_NOT_GRANTED = "USE_NOT_GRANTED"
    TERRITORY_EXCLUDED = "TERRITORY_EXCLUDED"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    TDM_OPT_OUT = "TDM_OPT_OUT"
    NO_EVIDENCE = "NO_EVIDENCE"
    METADATA_INVALID = "METADATA_INVALID"
    AUDIO_MISSING = "AUDIO_MISSING"
    AUDIO_CHECKSUM_MISMATCH = "AUDIO_CHECKSUM_MISMATCH"
    AUDIO_UNDECODABLE = "AUDIO_UNDECODABLE"
    AUDIO_TOO_SHORT = "AUDIO_TOO_SHORT"
    AUDIO_TOO_LONG = "AUDIO_TOO_LONG"
    AUDIO_SAMPLE_RATE = "AUDIO_SAMPLE_RATE"
    AUDIO_SILENT = "AUDIO_SILENT"
    AUDIO_CLIPPED = "AUDIO_CLIPPED"
    AUDIO_LOW_BANDWIDTH = "AUDIO_LOW_BANDWIDTH"
    AUDIO_OUT_OF_RANGE = "AUDIO_OUT_OF_RANGE"
    DUPLICATE = "DUPLICATE"

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS: dict[Reason, str] = {
    Reason.LICENSE_UNKNOWN: "the licence identifier is not one the policy knows",
    Reason.USE_NOT_GRANTED: "the licence does not grant AI training (or the corpus purpose)",
    Reason.TERRITORY_EXCLUDED: "the grant does not cover every training territory",
    Reason.NOT_YET_VALID: "the licence starts after the run's logical date",
    Reason.EXPIRED: "the licence ended before the run's logical date",
    Reason.REVOKED: "the owner or partner revoked the licence",
    Reason.TDM_OPT_OUT: "the owner opted out of text and data mining",
    Reason.NO_EVIDENCE: "the policy requires a licence document and none was given (by default "
    "a contract needs one, with its sha256)",
    Reason.METADATA_INVALID: "the catalog record is malformed or incomplete",
    Reason.AUDIO_MISSING: "the audio file named by the record does not exist",
    Reason.AUDIO_CHECKSUM_MISMATCH: "the audio file's sha256 or hash sum differs from the record's",
    Reason.AUDIO_UNDECODABLE: "the audio file cannot be decoded",
    Reason.AUDIO_TOO_SHORT: "the audio is shorter than the policy's minimum duration",
    Reason.AUDIO_TOO_LONG: "the audio is (or its header says it is) longer than the maximum",
    Reason.AUDIO_SAMPLE_RATE: "the audio's sample rate is outside what the policy accepts",
    Reason.AUDIO_SILENT: "the audio is (nearly) silent",
    Reason.AUDIO_CLIPPED: "the audio clips too often",
    Reason.AUDIO_LOW_BANDWIDTH: "the audio has too little high-frequency content",
    Reason.AUDIO_OUT_OF_RANGE: "decoded samples sit far beyond full scale (a broken float file)",
    Reason.DUPLICATE: "the same recording is already in the corpus",
}
