"""API keys: created once (the secret is shown once), stored as a salted hash, revocable.

A caller sends ``Authorization: Bearer <key id>.<secret>``. The key id is not secret (it
appears in the audit log); the secret is 32 random bytes and is never stored.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.api.models import ApiKey
from joinedup.mci.store import utcnow

SCOPES: dict[str, str] = {
    "person:read": "look up persons, search, resolve source keys, read the change feed",
    "socialcare:read": "also see social-care (special-category) records and involvements "
                       "(widens person:read; alone it allows nothing)",
}
KEY_ID_PREFIX = "jk_"


class ApiKeyError(ValueError):
    """A key cannot be created or changed as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    key_id: str
    scopes: frozenset[str]

    @property
    def socialcare(self) -> bool:
        return "socialcare:read" in self.scopes

    @property
    def audit_name(self) -> str:
        return f"api:{self.key_id}"


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode("utf-8")).hexdigest()


def create_key(session: Session, scopes: list[str], label: str = "") -> tuple[ApiKey, str]:
    """A new key with ``scopes``; returns (row, token). The token is shown once: keep it."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ApiKeyError(f"unknown or missing scopes {unknown or '(none given)'}; known: {', '.join(SCOPES)}")
    key_id = KEY_ID_PREFIX + secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    row = ApiKey(key_id=key_id, salt=salt, secret_hash=_hash(salt, secret), scopes=sorted(set(scopes)),
                 label=label[:120], revoked=False)
    session.add(row)
    session.flush()
    return row, f"{key_id}.{secret}"


def verify_token(session: Session, token: str) -> Caller | None:
    """The caller for a bearer token, or None when unknown, malformed, wrong or revoked."""
    key_id, dot, secret = token.partition(".")
    if not dot or not key_id.startswith(KEY_ID_PREFIX) or len(key_id) > 40 or not secret:
        return None
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(row.salt, secret)):
        return None
    return Caller(key_id=row.key_id, scopes=frozenset(row.scopes or ()))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id)))


def revoke_key(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyError(f"no API key {key_id!r}; see `joinedup api keys list`")
    if not row.revoked:
        row.revoked, row.revoked_at = True, utcnow()
    return row
