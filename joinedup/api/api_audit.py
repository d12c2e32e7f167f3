"""Audit entries for API reads, through the workbench's audit log (``joinedup.steward.audit``).

The caller is named ``api:<key id>``. Actions the workbench log knows (view_person, search)
go through its ``record``, with its checks on ``detail``; the API's own read of the change
feed (``read_changes``) is not in its list yet, so it is written as an ``AuditEntry`` directly,
with the same rule: ids and counts only.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from joinedup.api.keys import Caller
from joinedup.steward import audit
from joinedup.steward.models import AuditEntry


def audit_read(session: Session, caller: Caller, action: str, *, master_id: str | None = None,
               detail: dict[str, Any] | None = None) -> None:
    """Add the entry to the caller's transaction (committed with the response)."""
    if action in audit.ACTIONS:
        audit.record(session, caller.audit_name, action, master_id=master_id, detail=detail)
        return
    if detail and not all(isinstance(v, (int, float, bool)) or v is None for v in detail.values()):
        raise ValueError("audit detail holds counts and flags only")
    session.add(AuditEntry(username=caller.audit_name, action=action, master_id=master_id, detail=detail))
