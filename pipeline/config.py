"""Where the pipeline finds its stores and inputs; read from the environment at call time.

Nothing here runs at import: DAG parsing and the CLI both build a `Settings` when a task
or command actually starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def corpus_home() -> Path:
    """The folder for embedded state (store, MongoDB data, demo delivery, Airflow home)."""
    return Path(os.environ.get("CORPUS_HOME") or ".corpus").expanduser().resolve()


def store_location() -> str:
    """`CORPUS_STORE`, else `$CORPUS_HOME/store`, absolute so it does not drift with the cwd."""
    return os.environ.get("CORPUS_STORE") or str(corpus_home() / "store")


@dataclass(frozen=True)
class Settings:
    home: Path
    mongo_uri: str | None
    store: str
    partners: Path | None
    policy: Path | None
    batch_size: int = 200
    shard_target_bytes: int = 256 * 1024 * 1024

    @classmethod
    def from_env(
        cls,
        partners: str | Path | None = None,
        policy: str | Path | None = None,
        store: str | None = None,
        mongo_uri: str | None = None,
        batch_size: int | None = None,
        shard_target_bytes: int | None = None,
    ) -> Settings:
        home = corpus_home()
        partners = partners or os.environ.get("CORPUS_PARTNERS")
        policy = policy or os.environ.get("CORPUS_POLICY")
        return cls(
            home=home,
            mongo_uri=mongo_uri or os.environ.get("CORPUS_MONGO_URI") or None,
            store=store or store_location(),
            partners=Path(partners).expanduser().resolve() if partners else None,
            policy=Path(policy).expanduser().resolve() if policy else None,
            batch_size=batch_size or int(os.environ.get("CORPUS_BATCH_SIZE", "200")),
            shard_target_bytes=shard_target_bytes
            or int(os.environ.get("CORPUS_SHARD_TARGET_BYTES", str(256 * 1024 * 1024))),
        )
