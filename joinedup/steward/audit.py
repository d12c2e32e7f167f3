"""The audit log: every view of a person and every decision, with the user and the time.

Entries carry actions, master ids, pair ids and counts, never personal values, so the log
itself can be read by an admin without the social-care permission.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.steward.models import AuditEntry

ACTIONS = ("login", "login_failed", "login_refused", "sso_login", "sso_refused", "logout", "view_person", "view_pair", "search", "accept", "reject",
           "defer", "unmerge", "view_audit", "read_changes", "quarantine_release", "erase")


CLIENT = "client"  # the detail key of the network address a sign-in came from


def record(session: Session, username: str, action: str, *, master_id: str | None = None,
           pair_id: int | None = None, detail: dict[str, Any] | None = None,
           client: str | None = None) -> AuditEntry:
    """Add an entry to the caller's transaction (it commits with the action it records).

    ``client`` is the address of a sign-in attempt (the staff member's workstation or the
    proxy's view of it): kept in ``detail["client"]`` so failed sign-ins can be counted per
    address, and only accepted when it parses as an IP address."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    if detail and not all(_safe(v) for v in detail.values()):
        raise ValueError("audit detail holds counts and ids only (numbers, booleans, master ids, lists of ids)")
    if client is not None:
        detail = {**(detail or {}), CLIENT: normalised_address(client)}
    entry = AuditEntry(username=username, action=action, master_id=master_id, pair_id=pair_id, detail=detail)
    session.add(entry)
    return entry


def normalised_address(text: str) -> str:
    """The canonical text of an IP address; ValueError for anything else (never stored raw)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError("an audit client address must be an IP address") from None


_MASTER_ID = re.compile(r"^[A-Z]{2}\d{8}$")


def _safe(value: Any) -> bool:
    if value is None or isinstance(value, (int, float, bool)):
        return True
    if isinstance(value, str):
        return bool(_MASTER_ID.match(value))
    if isinstance(value, list):
        return all(isinstance(v, int) for v in value)
    return False


def recent(session: Session, *, limit: int = 200, username: str | None = None, action: str | None = None,
           master_id: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if username:
        query = query.where(AuditEntry.username == username)
    if action:
        query = query.where(AuditEntry.action == action)
    if master_id:
        query = query.where(AuditEntry.master_id == master_id)
    return list(session.scalars(query))
