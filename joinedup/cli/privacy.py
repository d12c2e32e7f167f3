"""``joinedup retention apply`` and ``joinedup erase``: the privacy commands (counts, ids and
keyed hashes only are ever printed; never a name, a date or a number of the person)."""
from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer

retention_app = typer.Typer(no_args_is_help=True, help="Delete what is older than schemas/retention.yaml allows.")


@retention_app.command("apply")
def retention_apply(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted and kept; delete nothing.")] = False,
) -> None:
    """Delete old landing batches, drop files, reports, settled quarantine and audit rows;
    keep what is still needed (un-staged batches, open quarantine...) and say why."""
    from joinedup.privacy.retention import apply_retention

    typer.echo(json.dumps(apply_retention(dry_run=dry_run), indent=2))


def erase(
    master_id: Annotated[str | None, typer.Option("--master-id", help="Erase this person (all their source records).")] = None,
    source: Annotated[str | None, typer.Option("--source", help="With --key: erase one source record.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="The source record's key in --source.")] = None,
    request: Annotated[str | None, typer.Option("--request", help="The erasure request's reference (kept in the tombstone).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who is erasing (default: the operating-system user).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the tombstones (who, when, request, master ID).")] = False,
) -> None:
    """Right to erasure: remove a person (or one source record) from landing, drop files,
    staging, quarantine, the index and reports, leaving an auditable tombstone."""
    from joinedup.privacy.erasure import ErasureError, erase as do_erase

    if list_:
        from joinedup.mci.store import session_factory
        from joinedup.privacy.tombstones import list_tombstones

        with session_factory()() as session:
            for t in list_tombstones(session):
                typer.echo(f"{t.event_id}\t{t.erased_at:%Y-%m-%d %H:%M}\t{t.master_id or '-'}\t{t.request}\t"
                           f"{t.erased_by}\t{','.join(t.sources)}\t{len(t.key_hashes)} key(s)")
        return
    try:
        outcome = do_erase(master_id=master_id, source=source, key=key, erased_by=by or getpass.getuser(),
                           request=request or "")
    except ErasureError as exc:
        typer.echo(f"erase: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(outcome.as_dict(), indent=2))
