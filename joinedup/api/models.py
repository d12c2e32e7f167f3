"""The lookup API's own tables, on the MCI's declarative Base so ``create_all`` makes them.

- ``api_keys``            callers of the API: a key id, a salted hash of the secret, scopes
- ``person_search_keys``  small index of search keys per master ID (name sound + given-name
                          root, date of birth, postcode, NI number, e-mail, phone), so a
                          search looks up a few index entries instead of scanning every person
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from joinedup.mci.store import Base, utcnow


class ApiKey(Base):
    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    # sha256(salt + secret), hex: the secret is a 256-bit random token, so a slow hash buys nothing
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    label: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class PersonSearchKey(Base):
    __tablename__ = "person_search_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    master_id: Mapped[str] = mapped_column(String(20), index=True)
    # "<kind>:<value>", e.g. "dob:1961-04-03", "nr:S530|WILLIAM" (surname sound + given root)
    key: Mapped[str] = mapped_column(String(200))
    # True when only special-category (social care) records give this key: such keys find a
    # person only for callers with socialcare:read, since being known to social care is itself
    # sensitive
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)


Index("ix_person_search_keys_key", PersonSearchKey.key, PersonSearchKey.restricted)
