"""The tamper-evident audit log: one hash-chained record per request, bodies encrypted if kept.

    log = AuditLog(dir, key=load_key(settings.key_file), store_bodies=False)
    log.append(AuditRecord(request_id=..., principal=..., model=..., status=200, latency_ms=...))
    log.verify()   # VerifyResult(ok=...)
"""

from deeplocal.gateway.audit.config import KEY_ENV, AuditSettings
from deeplocal.gateway.audit.crypto import AuditKeyError, generate_key, load_key
from deeplocal.gateway.audit.log import AuditError, AuditLog
from deeplocal.gateway.audit.maintenance import RetentionResult
from deeplocal.gateway.audit.records import AuditRecord
from deeplocal.gateway.audit.verify import VerifyError, VerifyResult

__all__ = [
    "KEY_ENV", "AuditError", "AuditKeyError", "AuditLog", "AuditRecord", "AuditSettings", "RetentionResult",
    "VerifyError", "VerifyResult", "generate_key", "load_key",
]
