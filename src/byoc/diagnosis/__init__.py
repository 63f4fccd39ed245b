"""Diagnosis of SageMaker container failures: a catalogue of signatures (data/signatures.json)
matched against log events, the endpoint's FailureReason and facts read from AWS APIs."""

from byoc.diagnosis.catalogue import Catalogue, Signature, load
from byoc.diagnosis.excerpt import KeyLine, key_lines
from byoc.diagnosis.matcher import Evidence, Finding, match

__all__ = ["Catalogue", "Evidence", "Finding", "KeyLine", "Signature", "key_lines", "load", "match"]
