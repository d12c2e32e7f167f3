"""``joinedup mci ...``: look at the master citizen index."""
from __future__ import annotations

import json
from typing import Annotated

import typer

mci_app = typer.Typer(no_args_is_help=True, help="The master citizen index.")


def index_stats() -> dict:
    from sqlalchemy import func, select

    from joinedup.mci.store import Person, QuarantinedRow, ReviewPair, SourceRecord, session_factory

    with session_factory()() as session:
        count = lambda q: session.scalar(q) or 0  # noqa: E731
        by_source = dict(session.execute(select(SourceRecord.source_system, func.count()).group_by(SourceRecord.source_system)).all())
        return {
            "persons": count(select(func.count()).select_from(Person).where(Person.status == "active")),
            "persons_merged_away": count(select(func.count()).select_from(Person).where(Person.status == "merged")),
            "source_records": sum(by_source.values()),
            "source_records_by_system": by_source,
            "linked_records": count(select(func.count()).select_from(SourceRecord).where(SourceRecord.master_id.is_not(None))),
            "records_gone_from_source": count(select(func.count()).select_from(SourceRecord).where(SourceRecord.gone_run_id.is_not(None))),
            "pending_records": count(select(func.count()).select_from(SourceRecord).where(SourceRecord.match_status == "pending")),
            "review_pairs_open": count(select(func.count()).select_from(ReviewPair).where(ReviewPair.status == "open")),
            "quarantine_open": count(select(func.count()).select_from(QuarantinedRow).where(QuarantinedRow.status == "open")),
        }


@mci_app.command()
def stats(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Counts of persons, source records, links, review pairs and quarantine."""
    figures = index_stats()
    if as_json:
        typer.echo(json.dumps(figures, indent=2, sort_keys=True))
        return
    for key, value in figures.items():
        typer.echo(f"{key:28} {value}")


@mci_app.command("golden-refresh")
def golden_refresh() -> None:
    """Work out every person's golden record again under schemas/survivorship.yaml (run it
    after changing the rules; a `golden_changed` event for each person whose record changes)."""
    from datetime import datetime, timezone

    from joinedup.locks import run_lock
    from joinedup.mci.golden import refresh_all_golden
    from joinedup.mci.store import session_factory

    run_id = f"golden-refresh__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    with run_lock("merge", run_id), session_factory()() as session:  # not beside a night's merge
        persons, changed = refresh_all_golden(session, run_id)
    typer.echo(f"golden records worked out again for {persons:,} persons: {changed:,} changed (run {run_id})")


@mci_app.command("accept-gone")
def accept_gone(
    source: Annotated[str, typer.Argument(help="The full-extract source whose extract the guard held back.")],
    by: Annotated[str, typer.Option("--by", help="Who confirms the deletions (named in each record's history).")],
) -> None:
    """Confirm that the records the source's newest full extract lacks were really deleted,
    when more were lacking than its gone_guard allows: they are flagged gone from source now,
    and that night's stage passes on a rerun."""
    from joinedup.pipeline import accept_gone as accept

    try:
        out = accept(source, by)
    except ValueError as exc:
        typer.echo(f"accept-gone refused: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{out['gone_from_source']:,} records of {source} flagged gone from source "
               f"(the extract of run {out['run_id']}), accepted by {by}")


db_app = typer.Typer(no_args_is_help=True, help="The MCI database schema (Alembic migrations).")
mci_app.add_typer(db_app, name="db")

_URL_HELP = "SQLAlchemy URL (default: JOINEDUP_DB_URL or var/mci.sqlite)."


def _url(url: str | None) -> str:
    from joinedup.mci.store import database_url

    return url or database_url()


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    url: Annotated[str | None, typer.Option(help=_URL_HELP)] = None,
) -> None:
    """Bring the database to the newest revision (adopting one made before migrations)."""
    from joinedup.mci.schema import SchemaError, current, upgrade
    from joinedup.mci.store import redacted_url

    target = _url(url)
    before = current(target)
    try:
        after = upgrade(target, revision)
    except SchemaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    where = redacted_url(target)
    if before == after:
        typer.echo(f"{where}: already at {after}")
    else:
        typer.echo(f"{where}: {before or 'unversioned'} -> {after}")


@db_app.command("current")
def db_current(url: Annotated[str | None, typer.Option(help=_URL_HELP)] = None) -> None:
    """The revision the database is at, and the newest this version ships."""
    from joinedup.mci.schema import current, head_revision

    at, head = current(_url(url)), head_revision()
    state = "up to date" if at == head else "behind: run `joinedup mci db upgrade`"
    typer.echo(f"{at or 'unversioned'} (head {head}, {state})")


@db_app.command("stamp")
def db_stamp(
    revision: Annotated[str, typer.Argument(help="The revision the database already matches.")],
    url: Annotated[str | None, typer.Option(help=_URL_HELP)] = None,
) -> None:
    """Record the database's revision without running migrations (after fixing it by hand)."""
    from joinedup.mci.schema import stamp

    stamp(_url(url), revision)
    typer.echo(f"stamped {revision}")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision changes.")],
    empty: Annotated[bool, typer.Option(help="Write an empty revision (data migration) instead of comparing models.")] = False,
) -> None:
    """Write a new revision from the models (see joinedup/mci/migrations/README.md)."""
    from joinedup.mci.schema import NoSchemaChanges, SchemaError, new_revision

    try:
        path = new_revision(message, autogenerate=not empty)
    except NoSchemaChanges as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except SchemaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {path}: read it, then commit it with the model")
