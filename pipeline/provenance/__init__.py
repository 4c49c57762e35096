"""Provenance in MongoDB: every decision, shard, version and run event, for audits."""

from pipeline.provenance.ledger import StaleAttempt
from pipeline.provenance.store import Provenance, connect

__all__ = ["Provenance", "StaleAttempt", "connect"]
