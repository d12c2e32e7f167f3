"""Dependency audit: ``pip-audit`` over everything installed in this environment, against the
PyPI vulnerability service (the JSON API that pip already reaches; OSV is not reachable from
every build machine). Accepted exceptions live in ``pip_audit_exceptions.toml`` with their
reasons; anything else found fails the test. Skipped, with the reason printed, only when the
service cannot be reached at all."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import requests

EXCEPTIONS = Path(__file__).with_name("pip_audit_exceptions.toml")


def accepted() -> list[dict]:
    entries = tomllib.loads(EXCEPTIONS.read_text(encoding="utf-8")).get("exception", [])
    for entry in entries:
        missing = {"id", "package", "reason", "review_by"} - set(entry)
        assert not missing, f"{EXCEPTIONS.name}: exception {entry.get('id', '?')} lacks {sorted(missing)}"
    return entries


def test_the_exceptions_file_is_well_formed() -> None:
    assert isinstance(accepted(), list)


def test_no_known_vulnerability_outside_the_written_exceptions(tmp_path: Path) -> None:
    try:
        requests.get("https://pypi.org/pypi/pip/json", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        reason = f"PyPI's JSON API (pip-audit's vulnerability service) is unreachable: {type(exc).__name__}"
        print(reason)
        pytest.skip(reason)
    audit = shutil.which("pip-audit", path=str(Path(sys.executable).parent))
    assert audit, "pip-audit is not installed: it is in the 'test' extra of pyproject.toml"
    args = [audit, "--local", "--format", "json", "--progress-spinner", "off", "-s", "pypi",
            "--cache-dir", str(tmp_path / "cache")]
    for entry in accepted():
        args += ["--ignore-vuln", entry["id"]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert done.stdout.strip(), f"pip-audit printed nothing: {done.stderr[-1000:]}"
    report = json.loads(done.stdout)
    assert len(report["dependencies"]) > 50  # it really looked at this environment
    found = [f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or ['?'])})"
             for d in report["dependencies"] for v in d.get("vulns", [])]
    assert found == [], "known vulnerabilities (upgrade, or write an exception with its reason):\n" + "\n".join(found)
