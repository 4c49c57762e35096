"""Licence model, corpus policy and the pure admit/refuse decision."""

from pipeline.licensing.decide import Decision, decide
from pipeline.licensing.policy import Policy, load_policy

__all__ = ["Decision", "Policy", "decide", "load_policy"]
