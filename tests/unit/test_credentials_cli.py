"""`joinedup simulate connections`: the JOINEDUP_CONN_* variables that are set, as a file for
`airflow connections import`; nothing secret printed."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from typer.testing import CliRunner

from joinedup.cli.simulate import simulate_app

URI = "soap://housing-sync:s3cret-pa55word@127.0.0.1:40001/housing/service?wsdl"


def test_the_variables_become_an_import_file_and_the_secret_is_not_printed(tmp_path: Path, monkeypatch) -> None:
    for key in [k for k in os.environ if k.startswith("JOINEDUP_CONN_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("JOINEDUP_CONN_HOUSING_SOAP", URI)
    out = tmp_path / "conns.json"
    result = CliRunner().invoke(simulate_app, ["connections", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "housing_soap" in result.output and "s3cret-pa55word" not in result.output
    written = json.loads(out.read_text())
    assert written["housing_soap"]["password"] == "s3cret-pa55word" and written["housing_soap"]["port"] == 40001
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_without_variables_it_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    for key in [k for k in os.environ if k.startswith("JOINEDUP_CONN_")]:
        monkeypatch.delenv(key)
    result = CliRunner().invoke(simulate_app, ["connections", "--out", str(tmp_path / "c.json")])
    assert result.exit_code != 0 and "simulate serve" in result.output
    assert not (tmp_path / "c.json").exists()
