"""Failure classification: rules (as data, in rules/*.toml) turn a failed run's signals into a category,
a first-attempt action, a confidence, the evidence that decided, an excerpt and a fingerprint."""

from shared.classify.classifier import classify
from shared.classify.model import Classification, FailureSignals

__all__ = ["Classification", "FailureSignals", "classify"]
