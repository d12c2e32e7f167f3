"""Local users of the workbench: hashed passwords (scrypt), roles and the social-care permission.

Roles, from least to most: ``viewer`` (reads), ``steward`` (decides review pairs, unmerges),
``admin`` (a steward who also reads the audit log). ``socialcare`` is a separate permission:
without it, records from special-category systems (social care) are masked everywhere.
A council that signs in through its SSO puts a proxy in front (``web/sso.py``); its users are
the same rows, made with ``add_sso_user`` when auto-provisioned, and have no local password.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.steward.models import ROLES, StewardUser

_N, _R, _P, _LEN = 2**14, 8, 1, 32
_RANK = {role: i for i, role in enumerate(ROLES)}


class UserError(ValueError):
    """A user could not be created or changed; the message says why and what to do."""


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in user as the pages see it (no password hash)."""

    id: int
    username: str
    role: str
    socialcare: bool

    def at_least(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]

    @property
    def can_decide(self) -> bool:
        return self.at_least("steward")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), with a fresh 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=128 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_DUMMY = hash_password("not-a-password")


def password_version(user: StewardUser) -> str:
    """A short fingerprint of the stored hash: a session made before a password change ends."""
    return hashlib.sha256(user.password_hash.encode("ascii")).hexdigest()[:16]


def _check_password_strength(password: str) -> None:
    if len(password) < 10:
        raise UserError("the password must have at least 10 characters")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; known: {', '.join(ROLES)}")


def add_user(session: Session, username: str, password: str, role: str, *, socialcare: bool = False) -> StewardUser:
    username = username.strip()
    if not valid_username(username):
        raise UserError("a username is 1 to 80 characters without spaces")
    _check_role(role)
    _check_password_strength(password)
    if session.scalar(select(StewardUser).where(StewardUser.username == username)) is not None:
        raise UserError(f"user {username!r} exists already; use set-password to change the password")
    user = StewardUser(username=username, password_hash=hash_password(password), role=role, socialcare=socialcare)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> None:
    user = session.scalar(select(StewardUser).where(StewardUser.username == username))
    if user is None:
        raise UserError(f"no user {username!r}; list them with `joinedup users list`")
    _check_password_strength(password)
    user.password_hash = hash_password(password)


SSO_ONLY = "sso-only$"  # the stored "hash" of a user who signs in only through single sign-on


def valid_username(username: str) -> bool:
    return bool(username) and len(username) <= 80 and not any(c.isspace() for c in username)


def find_user(session: Session, username: str) -> StewardUser | None:
    return session.scalar(select(StewardUser).where(StewardUser.username == username))


def add_sso_user(session: Session, username: str, role: str = "viewer", *, socialcare: bool = False) -> StewardUser:
    """A user who signs in only through the council's single sign-on: no local password (the
    stored value is not a hash, so ``authenticate`` never accepts one)."""
    if not valid_username(username):
        raise UserError("a username is 1 to 80 characters without spaces")
    _check_role(role)
    user = StewardUser(username=username, password_hash=SSO_ONLY + base64.b64encode(os.urandom(12)).decode("ascii"),
                       role=role, socialcare=socialcare)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[StewardUser]:
    return list(session.scalars(select(StewardUser).order_by(StewardUser.username)))


def authenticate(session: Session, username: str, password: str) -> StewardUser | None:
    """The active user with this password, else None (same work either way: no user probing)."""
    user = session.scalar(select(StewardUser).where(StewardUser.username == username.strip()))
    if user is None:
        verify_password(password, _DUMMY)
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    return user


def as_current(user: StewardUser) -> CurrentUser:
    return CurrentUser(id=user.id, username=user.username, role=user.role, socialcare=bool(user.socialcare))
