"""Secrets by reference: the partners file names where a secret is, this module fetches it.

Errors name the reference (`env:FEED_TOKEN`, `airflow_connection:label_feed`) and never the
value, so a failed run cannot leak a token into logs or provenance.
"""

from __future__ import annotations

import os

from pipeline.catalogs.partners import AirflowCredential, Credentials, EnvCredential


class CredentialError(RuntimeError):
    """A referenced secret cannot be read; the message names the reference only."""


def describe(ref: Credentials) -> str:
    if isinstance(ref, EnvCredential):
        return f"env:{ref.env}"
    return f"airflow_connection:{ref.airflow_connection}"


def resolve_secret(ref: Credentials | dict) -> str:
    """The secret `ref` points at: an environment variable, or an Airflow Connection's password
    (else its extra `token`). Airflow is imported only for Airflow references."""
    if isinstance(ref, dict):
        ref = _parse(ref)
    if isinstance(ref, EnvCredential):
        value = os.environ.get(ref.env)
        if not value:
            raise CredentialError(f"credential {describe(ref)}: the variable is unset or empty")
        return value
    return _airflow_secret(ref)


def _parse(ref: dict) -> Credentials:
    if set(ref) == {"env"}:
        return EnvCredential.model_validate(ref)
    if set(ref) == {"airflow_connection"}:
        return AirflowCredential.model_validate(ref)
    raise CredentialError(
        f"credential reference with keys {sorted(ref)}: expected {{env: NAME}} "
        "or {airflow_connection: ID}"
    )


def _airflow_secret(ref: AirflowCredential) -> str:
    try:
        from airflow.sdk import Connection
    except ImportError as exc:
        raise CredentialError(f"credential {describe(ref)}: Airflow is not installed") from exc
    try:
        conn = Connection.get(ref.airflow_connection)
    except Exception as exc:  # noqa: BLE001 - Airflow raises several unrelated types here
        raise CredentialError(
            f"credential {describe(ref)}: connection not available ({type(exc).__name__})"
        ) from None
    secret = conn.password or (conn.extra_dejson or {}).get("token")
    if not secret:
        raise CredentialError(f"credential {describe(ref)}: connection has no password or token")
    return str(secret)
