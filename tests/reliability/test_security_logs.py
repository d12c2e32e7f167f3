"""A whole night of the synthetic council (direct mode, small) with every logger at DEBUG, then
a search of everything it wrote for people to read: the log records and their tracebacks,
stdout/stderr, quarantine reasons, rejected-file reasons, the runs' figures. None may hold a
resident's name, date of birth or NI number (taken from the council's own records), nor a
connection secret (SOAP password, OAuth2 client secret, API key); landing files may hold
personal data (they are the data) but never a secret."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

RESIDENTS, SEED = 150, 21
NAME_FIELDS = {"Forename", "Surname", "first_name", "last_name", "GivenName", "FamilyName", "PreferredName",
               "FORENAMES", "SURNAME"}
DOB_FIELDS = {"DateOfBirth", "dob", "BirthDate", "DOB"}
NI_FIELDS = {"NINumber", "ni_no", "NINO"}


# Two libraries echo whole payloads at DEBUG: SQLAlchemy's engine logger prints every
# statement's bound parameters (unless create_engine(hide_parameters=True)), zeep.transports
# prints every SOAP answer (all the tenants). Checked on their own below: defects reported for
# joinedup/mci/store.py and joinedup/adapters/soap.py (or the logging set-up), not fixed here.
SQL_ECHO = ("sqlalchemy.engine", "zeep.transports")


def personal_values(records: dict[str, list[dict]]) -> set[str]:
    """Names (4+ letters, as written and in capitals), DOBs in every layout, NI numbers."""
    found: set[str] = set()
    for rows in records.values():
        for row in rows:
            for key, value in row.items():
                if not value:
                    continue
                value = str(value).strip()
                if key in NAME_FIELDS:
                    found |= {part for part in re.split(r"[\s-]+", value) if len(part) >= 4}
                elif key in DOB_FIELDS or key in NI_FIELDS:
                    found.add(value.replace(" ", ""))
    return found


def _figures_and_reasons() -> list[str]:
    from sqlalchemy import select

    from joinedup.mci.store import QuarantinedRow, Run, session_factory

    with session_factory()() as session:
        out = [q.reason for q in session.scalars(select(QuarantinedRow))]
        out += [json.dumps(r.figures, default=str) for r in session.scalars(select(Run))]
    return out


def test_a_night_writes_no_personal_data_or_secrets_where_people_read(
        project: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> None:
    from joinedup.adapters import load_sources
    from joinedup.demo import synthetic_council
    from joinedup.mci import schema
    from joinedup.night import run_night
    from joinedup.simulators.council import build_council

    schema.upgrade()
    caplog.set_level(logging.DEBUG)  # root: every logger, DEBUG and up
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).setLevel(logging.DEBUG)
    sources = [c.name for c in load_sources()]
    with synthetic_council(RESIDENTS, SEED, connections="env") as council:
        running = council["servers"]
        secrets = {running.housing.options.password, running.revenues.options.client_secret,
                   running.revenues.options.api_key}
        outcome = run_night(sources, night="night-sec", via_airflow=False)
    out, err = capfd.readouterr()
    people = personal_values(build_council(RESIDENTS, SEED, night=0).records)
    assert len(people) > 300 and all(len(s) >= 8 for s in secrets)

    records = [r for r in caplog.records if not r.name.startswith(SQL_ECHO)]
    logs = [r.getMessage() for r in records]
    logs += [logging.Formatter().formatException(r.exc_info) for r in records if r.exc_info]
    reasons = [p.read_text(encoding="utf-8") for p in (project / "var").rglob("*.reason.txt")]
    readable = {"log": "\n".join(logs), "stdout": out, "stderr": err,
                "reasons": "\n".join(reasons + _figures_and_reasons())}
    assert len(caplog.records) > 20, "the night logged almost nothing: is logging captured?"
    assert outcome is not None

    leaks = {}
    for where, text in readable.items():
        tokens = set(re.findall(r"[\w'’-]+|\d{2}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2}", text))
        hits = sorted(people & tokens)
        hits += sorted(s for s in secrets if s in text)
        if hits:
            leaks[where] = hits[:10]
            if where == "log":
                leaks["loggers"] = sorted({r.name for r in records if any(h in r.getMessage() for h in hits)})
    assert leaks == {}, f"personal data or secrets found in what a night writes for people: {leaks}"
    echoed = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(SQL_ECHO))
    sql_leaks = sorted(people & set(re.findall(r"[\w'’-]+|\d{4}-\d{2}-\d{2}", echoed)))

    landed = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in (project / "var" / "landing").rglob("*") if p.is_file())
    assert landed, "nothing was landed"
    assert not [s for s in secrets if s in landed], "a connection secret was written to a landing file"
    assert echoed, "sqlalchemy/zeep logged nothing at DEBUG: the payload check proved nothing"
    assert sql_leaks == [], (f"DEBUG logs of sqlalchemy.engine / zeep.transports show {len(sql_leaks)} "
                             "personal value(s): joinedup.log_safety must drop their payload")
