"""Login rate limiting: after too many failed sign-ins for one username, or from one address,
within a window, further attempts are refused for a while without checking the password.

The failures are counted from the audit log (``login_failed`` entries), not from memory: every
worker of the workbench sees the same count, a restart does not reset it, and the log shows
the refusals (``login_refused``) beside the failures. A successful sign-in clears the count for
that username (not for the address: one person signing in does not vouch for the others
behind the same address).

Configured by environment (defaults in brackets):
``JOINEDUP_LOGIN_MAX_FAILURES`` [5] per username, ``JOINEDUP_LOGIN_MAX_FAILURES_PER_ADDRESS``
[20] per client address (higher: a council office may share one address), and
``JOINEDUP_LOGIN_WINDOW_MINUTES`` [15]. A refusal lasts until the oldest counted failure leaves
the window.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from joinedup.mci.store import utcnow
from joinedup.steward.audit import CLIENT
from joinedup.steward.models import AuditEntry


@dataclass(frozen=True)
class LoginLimits:
    max_failures: int = 5
    max_failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_env(cls) -> "LoginLimits":
        def number(name: str, default: int) -> int:
            text = os.environ.get(name, "").strip()
            if not text:
                return default
            try:
                value = int(text)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1 (it is {text!r}); "
                                 f"unset it for the default {default}")
            return value

        return cls(max_failures=number("JOINEDUP_LOGIN_MAX_FAILURES", cls.max_failures),
                   max_failures_per_address=number("JOINEDUP_LOGIN_MAX_FAILURES_PER_ADDRESS",
                                                   cls.max_failures_per_address),
                   window=timedelta(minutes=number("JOINEDUP_LOGIN_WINDOW_MINUTES", 15)))


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in attempt is refused before its password is checked."""

    scope: str  # "username" or "address"
    failures: int
    retry_after: timedelta

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds() / 60))

    @property
    def message(self) -> str:
        what = "this username" if self.scope == "username" else "this network address"
        return (f"Too many failed sign-ins for {what}. Sign-in is paused for about {self.minutes} minute"
                f"{'s' if self.minutes != 1 else ''}; try again then, or ask an admin to check the audit log.")


def _failures(session: Session, since: datetime, *where) -> list[datetime]:  # noqa: ANN002
    return list(session.scalars(select(AuditEntry.at).where(
        AuditEntry.action == "login_failed", AuditEntry.at >= since, *where).order_by(AuditEntry.at.desc())))


def _refusal(times: list[datetime], limit: int, scope: str, window: timedelta, now: datetime) -> Refusal | None:
    if len(times) < limit:
        return None
    # paused until the limit-th most recent failure leaves the window
    return Refusal(scope=scope, failures=len(times), retry_after=times[limit - 1] + window - now)


def check(session: Session, username: str, client: str | None, limits: LoginLimits,
          now: datetime | None = None) -> Refusal | None:
    """The refusal for an attempt as ``username`` from ``client``, or None to go ahead."""
    now = now or utcnow()
    since = now - limits.window
    name = username.strip()[:80] or "(blank)"
    last_success = session.scalar(select(func.max(AuditEntry.at)).where(
        AuditEntry.action.in_(("login", "sso_login")), AuditEntry.username == name))
    by_name = _failures(session, max(since, last_success) if last_success else since, AuditEntry.username == name)
    refusal = _refusal(by_name, limits.max_failures, "username", limits.window, now)
    if refusal is None and client:
        by_address = _failures(session, since, AuditEntry.detail[CLIENT].as_string() == client)
        refusal = _refusal(by_address, limits.max_failures_per_address, "address", limits.window, now)
    return refusal
