"""The provenance adapter: the only place that speaks to MongoDB.

`Provenance` is one connection with three parts, each in its own module: the ledger
(`ledger.py`: decisions, items, events, partners, deliveries, revocations, versions,
shards), the work queue (`work.py`: steps and jobs) and the version queries (`queries.py`:
a version's decisions as audits and later steps read them).
"""

from __future__ import annotations

import getpass
import os

from pymongo import MongoClient
from pymongo.database import Database

from pipeline.config import Settings
from pipeline.provenance.collections import ensure_collections
from pipeline.provenance.embedded import ensure_server
from pipeline.provenance.ledger import Ledger
from pipeline.provenance.queries import VersionQueries
from pipeline.provenance.retry import RetryingDatabase
from pipeline.provenance.work import WorkQueue

DEFAULT_DB = "corpus"


def connect(settings: Settings, write: bool = True) -> Provenance:
    """`CORPUS_MONGO_URI` when set, else the embedded server (started on first use).

    Read-only callers (audits, trace, verify) pass `write=False`: they create no collections
    or indexes, so they work under a MongoDB user that holds only the `read` role.
    """
    uri = settings.mongo_uri or ensure_server(settings.home)
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
    prov = Provenance(RetryingDatabase(client.get_default_database(DEFAULT_DB)), client)
    if write:
        ensure_collections(prov.db)
    return prov


def current_actor() -> str:
    """Who acts: `CORPUS_ACTOR`, else the Airflow DAG running the task, else the OS user."""
    if os.environ.get("CORPUS_ACTOR"):
        return os.environ["CORPUS_ACTOR"]
    if os.environ.get("AIRFLOW_CTX_DAG_ID"):
        return f"airflow:{os.environ['AIRFLOW_CTX_DAG_ID']}"
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


class Provenance(Ledger, WorkQueue, VersionQueries):
    def __init__(self, db: Database, client: MongoClient | None = None):
        self.db = db
        self._client = client
        self.actor = current_actor()
        self._origins: dict[str, tuple[str, dict]] = {}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
