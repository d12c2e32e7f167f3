"""``joinedup api keys create/list/revoke`` through typer's runner, on a project's MCI."""
from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner


def test_keys_create_list_revoke(project: Path) -> None:
    from joinedup.api.keys import verify_token
    from joinedup.cli.api import api_app
    from joinedup.mci.store import session_factory

    runner = CliRunner()
    made = runner.invoke(api_app, ["keys", "create", "--scope", "person:read", "--label", "CRM test"])
    assert made.exit_code == 0, made.output
    token = made.output.split("token (shown once): ")[1].strip()
    key_id = token.split(".")[0]
    with session_factory()() as session:
        assert verify_token(session, token).scopes == {"person:read"}
    listed = runner.invoke(api_app, ["keys", "list"])
    assert key_id in listed.output and "active" in listed.output and token.split(".")[1] not in listed.output
    assert runner.invoke(api_app, ["keys", "revoke", key_id]).exit_code == 0
    with session_factory()() as session:
        assert verify_token(session, token) is None
    bad = runner.invoke(api_app, ["keys", "create", "--scope", "admin:all"])
    assert bad.exit_code != 0 and "person:read" in bad.output
