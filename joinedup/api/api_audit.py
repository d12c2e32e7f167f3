"""Audit entries for API reads, through the workbench's audit log (``joinedup.steward.audit``).

The caller is named ``api:<key id>``; entries go through the workbench's ``audit.record``
(one list of actions, one rule for ``detail``: ids and counts only).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from joinedup.api.keys import Caller
from joinedup.steward import audit


def audit_read(session: Session, caller: Caller, action: str, *, master_id: str | None = None,
               detail: dict[str, Any] | None = None) -> None:
    """Add the entry to the caller's transaction (committed with the response)."""
    audit.record(session, caller.audit_name, action, master_id=master_id, detail=detail)
