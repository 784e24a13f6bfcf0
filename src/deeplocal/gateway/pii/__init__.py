"""PII in Chinese and English text: find it, apply a per-key policy, pseudonymize reversibly.

    scanner = PiiScanner()                       # build once at startup
    findings = [scanner.scan(t) for t in texts]
    outcome = apply_policy(texts, findings, policy)
    outcome.raise_if_blocked()                   # 400 pii_blocked, names types only
    data_class = classify([f for fs in findings for f in fs], header=..., principal_default=...)
"""

from deeplocal.gateway.pii.analyzer import PiiScanner, default_recognizers
from deeplocal.gateway.pii.data_class import DataClass, InvalidDataClass, classify
from deeplocal.gateway.pii.placeholders import PlaceholderTable, StreamRestorer
from deeplocal.gateway.pii.policy import Action, PiiBlocked, PiiPolicy, PolicyOutcome, apply_policy
from deeplocal.gateway.pii.pseudonymize import Pseudonymizer
from deeplocal.gateway.pii.types import ALL_ENTITIES, EntityRecognizer, Finding, Pattern

__all__ = [
    "ALL_ENTITIES", "Action", "DataClass", "EntityRecognizer", "Finding", "InvalidDataClass", "Pattern",
    "PiiBlocked", "PiiPolicy", "PiiScanner", "PlaceholderTable", "PolicyOutcome", "Pseudonymizer",
    "StreamRestorer", "apply_policy", "classify", "default_recognizers",
]
