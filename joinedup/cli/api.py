"""``joinedup api ...``: serve the citizen lookup API and manage its keys.

Register with::

    from joinedup.cli.api import api_app
    app.add_typer(api_app, name="api")
"""
from __future__ import annotations

from typing import Annotated

import typer

api_app = typer.Typer(no_args_is_help=True, help="The citizen lookup API for the CRM (serve, keys, reindex).")
keys_app = typer.Typer(no_args_is_help=True, help="API keys: create (the token is shown once), list, revoke.")
api_app.add_typer(keys_app, name="keys")


def _sessions():  # noqa: ANN202
    from joinedup.api import models  # noqa: F401 - the api tables
    from joinedup.mci.schema import upgrade
    from joinedup.mci.store import get_engine, session_factory

    upgrade(get_engine())
    return session_factory()


@api_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 behind a TLS reverse proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8770,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (about one per core: search is CPU work).")] = 1,
    rate: Annotated[float, typer.Option(help="Requests per second allowed per key, per worker (token bucket).")] = 50.0,
    burst: Annotated[int, typer.Option(help="Burst allowed per key, per worker.")] = 100,
) -> None:
    """Serve /api/v1 (OpenAPI document at /api/v1/openapi.json)."""
    from joinedup.api.serve import serve as run
    from joinedup.mci.store import database_url, redacted_url

    typer.echo(f"Lookup API on http://{host}:{port}/api/v1 over {redacted_url(database_url())}, "
               f"{workers} worker(s)")
    run(host, port, workers=workers, rate=rate, burst=burst)


@api_app.command("reindex")
def reindex() -> None:
    """Rebuild the search-key index from every active person (after a bulk load)."""
    from joinedup.api.search_keys import build_search_keys

    with _sessions()() as session:
        n = build_search_keys(session)
        session.commit()
    typer.echo(f"search index rebuilt: {n} keys")


@keys_app.command("create")
def create(
    scope: Annotated[list[str], typer.Option("--scope", help="person:read, socialcare:read (repeat).")],
    label: Annotated[str, typer.Option(help="Who the key is for, e.g. 'CRM production'.")] = "",
) -> None:
    """Create a key; prints the token once (store it in the CRM's secret store)."""
    from joinedup.api.keys import ApiKeyError, create_key

    with _sessions()() as session:
        try:
            row, token = create_key(session, scope, label)
        except ApiKeyError as exc:
            raise typer.BadParameter(str(exc)) from None
        session.commit()
    typer.echo(f"key {row.key_id} scopes {','.join(row.scopes)}")
    typer.echo(f"token (shown once): {token}")


@keys_app.command("list")
def list_command() -> None:
    """Key ids, scopes, labels and state (never secrets)."""
    from joinedup.api.keys import list_keys

    with _sessions()() as session:
        for row in list_keys(session):
            state = "revoked" if row.revoked else "active"
            typer.echo(f"{row.key_id}\t{state}\t{','.join(row.scopes)}\t{row.created_at:%Y-%m-%d}\t{row.label}")


@keys_app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a key at once (its token is refused from the next request)."""
    from joinedup.api.keys import ApiKeyError, revoke_key

    with _sessions()() as session:
        try:
            revoke_key(session, key_id)
        except ApiKeyError as exc:
            raise typer.BadParameter(str(exc)) from None
        session.commit()
    typer.echo(f"key {key_id} revoked")
