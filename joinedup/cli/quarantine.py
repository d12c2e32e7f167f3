"""``joinedup quarantine list|show|release``: what the gate refused, and re-admitting rows after
the mapping, a code list or the source was fixed.

``list`` and the top of ``show`` print keys, rules and fields only. ``show --raw`` prints the
landed row itself to this terminal (for the steward to see what is wrong); it is never logged.
"""
from __future__ import annotations

import json
from typing import Annotated

import typer

quarantine_app = typer.Typer(no_args_is_help=True, help="Rows the quality gate refused: list, show, release.")


def _session():  # noqa: ANN202
    from joinedup.mci.store import session_factory

    return session_factory()()


@quarantine_app.command("list")
def list_command(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="Only this rule.")] = None,
    status: Annotated[str, typer.Option(help="open, released, resolved, superseded, replayed or all.")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Quarantine entries, newest first: id, source, source key, rule, field, landed batch."""
    from joinedup.quality.quarantine import STATUSES, list_entries

    if status != "all" and status not in STATUSES:
        raise typer.BadParameter(f"unknown status {status!r}; known: {', '.join(STATUSES)}, all")
    with _session() as session:
        entries = list_entries(session, source=source, rule=rule, status=None if status == "all" else status, limit=limit)
        for e in entries:
            row = {"id": e.id, "source": e.source_system, "source_key": e.source_key, "rule": e.rule,
                   "field": e.field, "batch": e.run_id, "status": e.status}
            if as_json:
                typer.echo(json.dumps(row))
            else:
                typer.echo(f"{e.id:>7}  {e.source_system:<12} {e.source_key or '-':<14} {e.rule:<34} "
                           f"{e.field or '-':<16} {e.run_id}  {e.status}")
        if not as_json:
            typer.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
                       + (f" (the newest {limit}; use --limit)" if len(entries) == limit else ""), err=True)


@quarantine_app.command("show")
def show_command(
    entry_id: int,
    raw: Annotated[bool, typer.Option("--raw", help="Also print the whole landed row (personal data: on this terminal only).")] = False,
) -> None:
    """One entry: rule, field, why, source key, landing file and row; the source values behind
    the field (and with --raw the whole landed row), printed here and never logged."""
    from joinedup.mci.store import QuarantinedRow
    from joinedup.pipeline import source_config
    from joinedup.quality.quarantine import QuarantineError, batch_status, landed_row, source_columns_for

    with _session() as session:
        entry = session.get(QuarantinedRow, entry_id)
        if entry is None:
            typer.echo(f"no quarantine entry {entry_id}; see `joinedup quarantine list`", err=True)
            raise typer.Exit(1)
        typer.echo(f"entry:        {entry.id} ({entry.status})")
        typer.echo(f"source:       {entry.source_system}")
        typer.echo(f"source key:   {entry.source_key or '-'}")
        typer.echo(f"rule:         {entry.rule}")
        typer.echo(f"field:        {entry.field or '-'}")
        typer.echo(f"why:          {entry.reason}")
        typer.echo(f"batch:        {entry.run_id} (batch status: {batch_status(session, entry) or 'unknown'})")
        typer.echo(f"landed at:    {entry.landing_file}, row {entry.landing_row}")
        try:
            record = landed_row(entry.landing_file, entry.landing_row)
        except QuarantineError as exc:
            typer.echo(f"landed row:   not readable: {exc}", err=True)
            raise typer.Exit(1) from None
        try:
            columns = source_columns_for(entry.field, source_config(entry.source_system).mapping_path())
        except Exception:  # noqa: BLE001 - a source since removed: the raw row is still there
            columns = []
        for column in columns:
            typer.echo(f"  {column} = {record.get(column)!r}")
        if raw:
            typer.echo("landed row:")
            for column, value in record.items():
                typer.echo(f"  {column} = {value!r}")


@quarantine_app.command("release")
def release_command(
    entry_ids: Annotated[list[int], typer.Argument(help="Entry ids (every open entry of the same landed row is settled with it).")],
    night: Annotated[str | None, typer.Option(help="Run id to stage the admitted rows under (default: a new one).")] = None,
) -> None:
    """Re-map and re-validate the landed rows with today's mapping and suites: rows that pass are
    staged (matched by the next merge); rows that still fail stay open with the new reason."""
    from joinedup.pipeline import new_run_id
    from joinedup.quality.quarantine import QuarantineError, release

    with _session() as session:
        try:
            outcome = release(session, entry_ids, night or new_run_id("release"))
        except QuarantineError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        _audit_release(session, outcome)
    typer.echo(json.dumps(outcome.as_dict(), indent=2))
    if outcome.still_failing or outcome.new_entries:
        typer.echo("some rows still fail: see `joinedup quarantine show ID` for the new reason", err=True)


def _audit_release(session, outcome) -> None:  # noqa: ANN001
    """A release re-admits rows into the index: the audit log says who (the operating-system
    account running the command) and which entries, never the values."""
    import getpass

    from joinedup.steward.audit import record

    detail = {"released": outcome.released, "still_failing": outcome.still_failing,
              "resolved": outcome.resolved, "new_entries": outcome.new_entries}
    record(session, f"cli:{getpass.getuser()}", "quarantine_release", detail=detail)
    session.commit()
