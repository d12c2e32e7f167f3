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
