"""The workbench's own tables, on the MCI's declarative Base so ``create_all`` makes them.

- ``steward_users``  local users of the workbench: role, social-care permission, hashed password
- ``audit_log``      who did or looked at what, when: actions and ids only, never personal values
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from joinedup.mci.store import Base, utcnow

ROLES = ("viewer", "steward", "admin")


class StewardUser(Base):
    __tablename__ = "steward_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))  # viewer | steward | admin
    socialcare: Mapped[bool] = mapped_column(Boolean, default=False)  # may see special-category data
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(80), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    master_id: Mapped[str | None] = mapped_column(String(20), index=True)
    pair_id: Mapped[int | None] = mapped_column(Integer)
    # counts and ids only (records moved, results found); never names, dates or numbers
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
