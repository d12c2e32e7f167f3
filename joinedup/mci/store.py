"""The MCI database: SQLAlchemy models and the engine/session factory.

SQLite file under ``var/`` by default; any SQLAlchemy URL (PostgreSQL in production) through
``JOINEDUP_DB_URL``. Tables, in the order the data flows:

- ``landing_batches``   one row per landed extract (file path, rows, checksum, status)
- ``source_cursors``    the incremental watermark of each source
- ``source_records``    staging: the canonical record of each (source_system, source_key), and
                        whether its source still holds it
- ``quarantine``        rows the quality gate refused, with the rule and field (no values)
- ``persons``           one row per master ID, with its golden record
- ``person_events``     append-only history: created, linked, merged, split, golden changed
- ``review_pairs``      uncertain pairs waiting for a steward
- ``steward_decisions`` must-link / cannot-link constraints every later run honours
- ``runs``              each run's figures

The schema itself is made by the Alembic migrations in ``joinedup/mci/migrations`` (see
:mod:`joinedup.mci.schema`); a new table here needs a revision there.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from joinedup.paths import var_dir


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class LandingBatch(Base):
    __tablename__ = "landing_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_system: Mapped[str] = mapped_column(String(40), index=True)
    run_id: Mapped[str] = mapped_column(String(120))
    manifest_path: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    cursor_before: Mapped[str | None] = mapped_column(String(200))
    cursor_after: Mapped[str | None] = mapped_column(String(200))
    # landed -> staged | failed (a failed batch is kept and retried, never dropped)
    status: Mapped[str] = mapped_column(String(20), default="landed")
    status_reason: Mapped[str | None] = mapped_column(Text)
    landed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    staged_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("source_system", "run_id", name="uq_batch_source_run"),)


class SourceCursor(Base):
    __tablename__ = "source_cursors"
    source_system: Mapped[str] = mapped_column(String(40), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(200))
    run_id: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SourceRecord(Base):
    __tablename__ = "source_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_system: Mapped[str] = mapped_column(String(40))
    source_key: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    special_category: Mapped[bool] = mapped_column(Boolean, default=False)
    # pending: new or changed since the last match; matched: linked to master_id
    match_status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    master_id: Mapped[str | None] = mapped_column(ForeignKey("persons.master_id"), index=True)
    link_rule: Mapped[str | None] = mapped_column(String(80))
    link_score: Mapped[float | None] = mapped_column(Float)
    first_run_id: Mapped[str] = mapped_column(String(120))
    last_run_id: Mapped[str] = mapped_column(String(120))
    staged_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set when a full extract of its source no longer held the record (deleted in the source
    # system, as HR purges leavers): the run of that extract and when. The record, its link and
    # its history are kept; a record delivered again is cleared (joinedup.mci.gone).
    gone_run_id: Mapped[str | None] = mapped_column(String(120))
    gone_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("source_system", "source_key", name="uq_source_record"),)


class QuarantinedRow(Base):
    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(120), index=True)
    source_system: Mapped[str] = mapped_column(String(40), index=True)
    source_key: Mapped[str | None] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(120))
    field: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    landing_file: Mapped[str] = mapped_column(Text)
    landing_row: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | released
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Person(Base):
    __tablename__ = "persons"
    master_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | merged
    merged_into: Mapped[str | None] = mapped_column(String(20))
    golden: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    golden_sources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_run_id: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PersonEvent(Base):
    __tablename__ = "person_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    master_id: Mapped[str] = mapped_column(String(20), index=True)
    # indexed: the erasure tombstone scan reads by kind, the lookup API's /changes?since= by time
    kind: Mapped[str] = mapped_column(String(30), index=True)  # created linked merged split golden_changed erased
    other_master_id: Mapped[str | None] = mapped_column(String(20))
    source_record_id: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(120))
    actor: Mapped[str] = mapped_column(String(80), default="matcher")
    reason: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ReviewPair(Base):
    __tablename__ = "review_pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id_l: Mapped[int] = mapped_column(ForeignKey("source_records.id"))
    record_id_r: Mapped[int] = mapped_column(ForeignKey("source_records.id"))
    score: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(80))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open accepted rejected deferred
    run_id: Mapped[str] = mapped_column(String(120))
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("record_id_l", "record_id_r", name="uq_review_pair"),)


class StewardDecision(Base):
    __tablename__ = "steward_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # must_link | cannot_link
    record_id_l: Mapped[int] = mapped_column(ForeignKey("source_records.id"))
    record_id_r: Mapped[int] = mapped_column(ForeignKey("source_records.id"))
    decided_by: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(120))
    stage: Mapped[str] = mapped_column(String(40))  # source:<name> or merge
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (UniqueConstraint("run_id", "stage", name="uq_run_stage"),)


Index("ix_review_open", ReviewPair.status)


def active_person_pages(session: Session, size: int) -> Iterator[list[str]]:
    """The active persons' master IDs, a page of ``size`` at a time in master-ID order (keyset
    paging: each page is one indexed range read, whatever the caller commits in between)."""
    last: str | None = None
    while True:
        query = select(Person.master_id).where(Person.status == "active").order_by(Person.master_id).limit(size)
        if last is not None:
            query = query.where(Person.master_id > last)
        page = list(session.scalars(query))
        if not page:
            return
        yield page
        last = page[-1]


def database_url() -> str:
    """The MCI's SQLAlchemy URL: ``JOINEDUP_DB_URL``, else a SQLite file under var/."""
    return os.environ.get("JOINEDUP_DB_URL") or f"sqlite:///{var_dir() / 'mci.sqlite'}"


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    # The schema is made and changed only by the Alembic revisions (joinedup/mci/migrations);
    # once per process and database, so later get_engine() calls cost nothing.
    from joinedup.mci.schema import upgrade

    upgrade(engine)
    return engine


def get_engine(url: str | None = None) -> Engine:
    return _engine_for(url or database_url())


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


def redacted_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
