"""Tombstones: what is left of an erased person, so an erasure is auditable and a re-sync of
the same source record is caught instead of silently re-imported.

A tombstone is a ``person_events`` row of kind ``erased`` (the append-only history of the
master ID, so it sits beside the person's merges and splits):

- ``master_id``  the erased person's master ID (never issued again: the ``persons`` row stays,
                 status ``erased``, with an empty golden record);
- ``actor``      who erased; ``at`` when; ``reason`` the request reference (e.g. "SAR-2026-0042");
- ``evidence``   ``{"request": ..., "key_hashes": [...], "sources": [...], "counts": {...}}``.

Why a keyed hash of (source, key) and not the key: a source key is itself an identifier of
the person in that system, and keys are short and guessable ("HT" + 6 digits is a million
values), so a plain or salted hash stored next to its salt could be reversed by trying them
all. An HMAC with a secret kept outside the database cannot. The secret is
``JOINEDUP_ERASURE_KEY`` (production: from the secret store), else ``var/privacy/erasure.key``
(made on first use, owner-only). Back it up with the database: without it tombstones no
longer recognise their records.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from joinedup.mci.store import PersonEvent, QuarantinedRow
from joinedup.paths import var_dir

TOMBSTONE_KIND = "erased"
ERASED_RULE = "erased"
KEY_ENV = "JOINEDUP_ERASURE_KEY"


def key_file() -> Path:
    return var_dir() / "privacy" / "erasure.key"


def _secret() -> bytes:
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode("utf-8")
    path = key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def normalise_key(source_key: str) -> str:
    """The comparable form of a source key (the mappings trim and upper-case keys)."""
    return str(source_key).strip().upper()


def key_hash(source_system: str, source_key: str, secret: bytes | None = None) -> str:
    """HMAC-SHA256 of ``source_system|KEY`` under the installation's erasure secret."""
    message = f"{source_system}|{normalise_key(source_key)}".encode("utf-8")
    return hmac.new(secret or _secret(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Tombstone:
    event_id: int
    master_id: str
    erased_by: str
    erased_at: datetime
    request: str
    sources: list[str]
    key_hashes: list[str]
    counts: dict[str, int]

    def describe(self) -> str:
        return f"erased on {self.erased_at:%Y-%m-%d} under request {self.request} (tombstone {self.event_id})"


def _from_event(event: PersonEvent) -> Tombstone:
    ev: dict[str, Any] = event.evidence or {}
    return Tombstone(event.id, event.master_id, event.actor, event.at, ev.get("request") or event.reason or "",
                     list(ev.get("sources", [])), list(ev.get("key_hashes", [])), dict(ev.get("counts", {})))


def add_tombstone(session: Session, *, master_id: str, erased_by: str, request: str,
                  keys: list[tuple[str, str]], counts: dict[str, int]) -> PersonEvent:
    """Add the tombstone to the caller's transaction (it commits with the erasure itself)."""
    secret = _secret()
    event = PersonEvent(
        master_id=master_id, kind=TOMBSTONE_KIND, actor=erased_by[:80], reason=request, run_id=None,
        evidence={"request": request, "sources": sorted({s for s, _ in keys}),
                  "key_hashes": sorted({key_hash(s, k, secret) for s, k in keys}), "counts": counts})
    session.add(event)
    session.flush()
    return event


def list_tombstones(session: Session) -> list[Tombstone]:
    events = session.scalars(select(PersonEvent).where(PersonEvent.kind == TOMBSTONE_KIND).order_by(PersonEvent.id))
    return [_from_event(e) for e in events]


def tombstone_index(session: Session) -> dict[str, Tombstone]:
    """key hash -> its (first) tombstone."""
    index: dict[str, Tombstone] = {}
    for stone in list_tombstones(session):
        for digest in stone.key_hashes:
            index.setdefault(digest, stone)
    return index


def refuse_erased(session: Session, records: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """Staging's guard: the records whose (source, key) was erased are not staged but put in
    quarantine (rule ``erased``, the reason naming the date, request and tombstone; no key,
    no value), so a re-sync never silently brings an erased person back. Returns the rest."""
    if not records:
        return records
    index = tombstone_index(session)
    if not index:
        return records
    secret = _secret()
    kept: list[dict[str, Any]] = []
    for rec in records:
        stone = index.get(key_hash(rec["source_system"], rec.get("source_key") or "", secret))
        if stone is None:
            kept.append(rec)
            continue
        session.add(QuarantinedRow(
            run_id=run_id, source_system=rec["source_system"], source_key=None, rule=ERASED_RULE, field="source_key",
            reason=f"{stone.describe()}: the source system sent this record again. It was not staged. Ask the "
                   "source system to erase it too; if the person has a new relationship with the council, "
                   "record that decision under a new request before staging it.",
            landing_file=f"{rec['source_system']}/{run_id}", landing_row=0))
    return kept
