"""``joinedup adapter list/check/new`` and the standard check, on the real simulators."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from joinedup.adapters.check import check_source
from joinedup.adapters.config import load_source
from joinedup.adapters.scaffold import KINDS, scaffold
from joinedup.cli.adapter import adapter_app
from joinedup.mapping.spec import load_mapping
from joinedup.simulators import file_drops as fd
from joinedup.simulators.council import build_council
from joinedup.simulators.servers import start_council_servers

runner = CliRunner()


@pytest.fixture(scope="module")
def council():
    return build_council(600, 9)


def test_list_shows_every_source_and_kind(project: Path) -> None:
    result = runner.invoke(adapter_app, ["list"])
    assert result.exit_code == 0, result.output
    for name in ("housing", "socialcare", "hr", "revenues"):
        assert f"  {name}" in result.output
    assert "special-category" in result.output and "fixed_width" in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("  ")}
    assert [n for n, line in lines.items() if "full-extract" in line] == ["hr", "socialcare"]  # sorted by file


def test_list_fails_on_an_invalid_source_and_says_where(project: Path) -> None:
    (project / "adapters" / "broken.yaml").write_text("name: broken\nkind: ftp\nmapping: x.yaml\n")
    result = runner.invoke(adapter_app, ["list"])
    assert result.exit_code == 1 and "broken" in result.output and "unknown adapter kind 'ftp'" in result.output


def test_check_passes_on_each_simulated_source(project: Path, council, monkeypatch) -> None:
    drops = project / "var" / "drops" / "council"
    with start_council_servers(council.records, drops) as running:
        for key, value in running.env().items():
            monkeypatch.setenv(key, value)
        for name in ("housing", "socialcare", "hr", "revenues"):
            report = check_source(name)
            assert report.ok, report.render()
            assert [s.name for s in report.steps][-2:] == ["schema", "quality"]
        waiting = sorted(p.name for p in drops.iterdir())
        result = runner.invoke(adapter_app, ["check", "hr"])
    assert result.exit_code == 0 and "verdict: PASS" in result.output
    assert sorted(p.name for p in drops.iterdir()) == waiting  # the check moved nothing
    for person in council.records["hr"][:20]:
        assert person["SURNAME"] not in result.output  # counts and names of rules only


def test_check_says_what_failed_and_stops(project: Path, monkeypatch) -> None:
    monkeypatch.delenv("JOINEDUP_CONN_HOUSING_SOAP", raising=False)
    report = check_source("housing")
    assert not report.ok and report.steps[-1].name == "connection"
    assert "set JOINEDUP_CONN_HOUSING_SOAP" in report.steps[-1].detail
    result = runner.invoke(adapter_app, ["check", "housing"])
    assert result.exit_code == 1 and "verdict: FAIL" in result.output


def test_check_fails_on_schema_drift(project: Path, council) -> None:
    drops = project / "var" / "drops" / "council"
    drops.mkdir(parents=True)
    fd.write_hr_extract(council.records["hr"], drops, fd.date(2024, 1, 1))
    mapping = project / "mappings" / "hr.yaml"
    mapping.write_text(mapping.read_text().replace("EMPNO, SURNAME", "EMPLOYEE_NO, EMPNO, SURNAME"))
    report = check_source("hr")
    assert not report.ok and report.steps[-1].name == "schema" and "EMPLOYEE_NO" in report.steps[-1].detail


@pytest.mark.parametrize("kind", KINDS)
def test_new_scaffolds_files_that_load(project: Path, kind: str) -> None:
    result = runner.invoke(adapter_app, ["new", f"trial_{kind}", "--kind", kind])
    assert result.exit_code == 0, result.output
    config = load_source(project / "adapters" / f"trial_{kind}.yaml")
    assert config.kind == kind
    assert "source_key" in load_mapping(config.mapping_path()).fields
    assert (project / "tests" / f"test_source_trial_{kind}.py").exists()
    again = runner.invoke(adapter_app, ["new", f"trial_{kind}", "--kind", kind])
    assert again.exit_code == 2 and "not overwriting" in again.output


def test_new_refuses_bad_names_and_kinds(project: Path) -> None:
    with pytest.raises(ValueError, match="known: soap, rest, csv, xml, fixed_width"):
        scaffold("ok_name", "ftp", project)
    with pytest.raises(ValueError, match="lower case"):
        scaffold("Bad-Name", "csv", project)
