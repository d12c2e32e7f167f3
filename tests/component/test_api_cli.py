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


def test_serve_with_two_workers_answers_on_loopback(project: Path) -> None:
    """`joinedup api serve --workers 2` as a real process: both workers share the port."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    joinedup = str(Path(sys.executable).with_name("joinedup"))
    server = subprocess.Popen([joinedup, "api", "serve", "--port", str(port), "--workers", "2"],
                              env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    health = None
    try:
        for _ in range(1200):
            assert server.poll() is None, server.stdout.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert health is not None, "the server did not answer within 120 s"
        assert health.status_code == 200 and health.headers["cache-control"] == "no-store"
        refused = httpx.get(f"http://127.0.0.1:{port}/api/v1/changes", timeout=5)
        assert refused.status_code == 401
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "2 worker(s)" in output
