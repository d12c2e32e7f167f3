"""``joinedup serve`` (the steward workbench) and ``joinedup users ...`` (its local users).

Register with::

    from joinedup.cli.serve import serve, users_app
    app.command()(serve)
    app.add_typer(users_app, name="users")
"""
from __future__ import annotations

import getpass
from typing import Annotated

import typer

users_app = typer.Typer(no_args_is_help=True, help="Local users of the steward workbench.")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 behind a reverse proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """The data steward's workbench: night report, review queue, persons, search, audit."""
    import uvicorn

    from joinedup.mci.store import database_url, redacted_url
    from joinedup.steward.web import create_app

    typer.echo(f"Steward workbench on http://{host}:{port}/ over {redacted_url(database_url())}")
    try:
        app = create_app()
    except ValueError as exc:  # a JOINEDUP_SSO_* / JOINEDUP_LOGIN_* / proxy setting that does not parse
        raise typer.BadParameter(str(exc)) from None
    if app.state.sso is not None:
        typer.echo(f"Single sign-on: user header {app.state.sso.user_header}, trusted from "
                   f"{', '.join(str(n) for n in app.state.sso.proxies.networks)}")
    # proxy_headers=False: the app reads X-Forwarded-For itself, from trusted proxies only
    # (joinedup.steward.web.proxy), and must see the TCP peer to trust an SSO header
    uvicorn.run(app, host=host, port=port, proxy_headers=False, server_header=False, log_level="info")


def _password(given: str | None) -> str:
    if given:
        return given
    first = getpass.getpass("Password (at least 10 characters): ")
    if first != getpass.getpass("Again: "):
        raise typer.BadParameter("the two passwords differ")
    return first


@users_app.command("add")
def add(
    username: str,
    role: Annotated[str, typer.Option(help="viewer, steward or admin.")] = "steward",
    socialcare: Annotated[bool, typer.Option("--socialcare/--no-socialcare", help="May see special-category (social care) records.")] = False,
    password: Annotated[str | None, typer.Option(help="Prompted for when not given (prefer the prompt: shell history keeps options).", envvar="JOINEDUP_NEW_PASSWORD")] = None,
) -> None:
    """Add a workbench user."""
    from joinedup.mci.store import session_factory
    from joinedup.steward import models  # noqa: F401 - the users table
    from joinedup.steward.users import UserError, add_user

    from joinedup.mci.schema import upgrade
    from joinedup.mci.store import get_engine

    upgrade(get_engine())
    with session_factory()() as session:
        try:
            add_user(session, username, _password(password), role, socialcare=socialcare)
        except UserError as exc:
            raise typer.BadParameter(str(exc)) from None
        session.commit()
    typer.echo(f"added {username} ({role}{', social care' if socialcare else ''})")


@users_app.command("list")
def list_(
) -> None:
    """The workbench users, their roles and permissions."""
    from joinedup.mci.schema import upgrade
    from joinedup.mci.store import get_engine, session_factory
    from joinedup.steward import models  # noqa: F401
    from joinedup.steward.users import list_users

    upgrade(get_engine())
    with session_factory()() as session:
        for user in list_users(session):
            flags = ["social care" if user.socialcare else "", "" if user.active else "disabled"]
            typer.echo(f"{user.username:24} {user.role:8} {' '.join(f for f in flags if f)}".rstrip())


@users_app.command("set-password")
def set_password_cmd(
    username: str,
    password: Annotated[str | None, typer.Option(help="Prompted for when not given.", envvar="JOINEDUP_NEW_PASSWORD")] = None,
) -> None:
    """Change a user's password (their open sessions end)."""
    from joinedup.mci.schema import upgrade
    from joinedup.mci.store import get_engine, session_factory
    from joinedup.steward import models  # noqa: F401
    from joinedup.steward.users import UserError, set_password

    upgrade(get_engine())
    with session_factory()() as session:
        try:
            set_password(session, username, _password(password))
        except UserError as exc:
            raise typer.BadParameter(str(exc)) from None
        session.commit()
    typer.echo(f"password of {username} changed")
