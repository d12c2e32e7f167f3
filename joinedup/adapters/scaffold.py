"""``joinedup adapter new NAME --kind KIND``: the three files a new source needs, filled in.

    adapters/NAME.yaml             the source, with every option of its kind commented
    mappings/NAME.yaml             a mapping stub (source_key only: map the rest)
    tests/test_source_NAME.py      the standard check as a test, for the council's CI

The generated YAML is valid as written (it passes ``load_source``), so the engineer starts
from something that loads and changes it step by step with ``joinedup adapter check NAME``.
Existing files are never overwritten.
"""
from __future__ import annotations

import re
from pathlib import Path

from joinedup.paths import project_root

KINDS = ("soap", "rest", "csv", "xml", "fixed_width")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_COMMON = """\
# {title}: describe the system and what it sends.
# yaml-language-server: $schema=../schemas/adapter.schema.json
name: {name}
kind: {kind}
description: {title} ({kind})
{connection}mapping: {name}.yaml
schedule: "0 2 * * *"
extract: changes                    # full: the source sends every record every night
special_category: false             # true for social care / health data
quality:
  max_failure_rate: 0.05            # share of a batch that may be quarantined before the load stops
retries: {{attempts: 3, delay_seconds: 300}}
timeout_minutes: 60
options:
"""

_OPTIONS = {
    "rest": """\
  path: records                     # listing path under the connection's URL
  records_path: data                # where the list is in each JSON answer
  page_size: 100
  paging: {style: cursor, cursor_param: cursor, next_cursor_path: next_cursor, size_param: limit}
  # paging: {style: page, page_param: page, size_param: page_size}
  # paging: {style: offset, offset_param: offset, size_param: limit}
  # paging: {style: link, size_param: page_size}
  incremental: {param: modified_since, field: modified_at}   # add key_field: for an exact cursor
  auth: from_connection             # or api_key, basic, oauth2, none
  http: {rate_limit_per_second: 5, retries: 5, connect_timeout_seconds: 10, read_timeout_seconds: 60}
""",
    "soap": """\
  operation: GetRecordsChangedSince # the WSDL operation that lists records
  records_path: Records.Record      # where the records are in the response
  page_size: 100
  paging: {size_param: pageSize, token_param: pageToken, next_token_field: nextPageToken}
  incremental: {param: since, field: LastModified}
  operation_timeout_seconds: 120
  http: {retries: 5, connect_timeout_seconds: 10, read_timeout_seconds: 120}
""",
    "csv": """\
  drop_folder: drops/{name}         # under var/
  file_pattern: "{name}_*.csv"
  encoding: auto                    # or utf-8, utf-8-sig, cp1252
  delimiter: ","
""",
    "xml": """\
  drop_folder: drops/{name}         # under var/
  file_pattern: "{name}_*.xml"
  record_element: Record            # local name of the element holding one record
  # xsd: sources/{name}.xsd         # validate against a schema under schemas/
  # count_attribute: recordCount    # root attribute stating the number of records
""",
    "fixed_width": """\
  drop_folder: drops/{name}         # under var/
  file_pattern: "{name}_*.dat"
  encoding: auto                    # auto = the layout's declared encoding
  layout: sources/{name}_layout.yaml
""",
}

_LAYOUT = """\
# The supplier's file specification for {name}: columns are 1-based, fields contiguous.
encoding: cp1252
line_terminator: "\\r\\n"
record_length: 20
header:
  - {{name: RECORD_TYPE, start: 1, width: 1, value: "H"}}
  - {{name: EXTRACT_DATE, start: 2, width: 8}}
detail:
  - {{name: RECORD_TYPE, start: 1, width: 1, value: "D"}}
  - {{name: ID, start: 2, width: 10}}
trailer:
  - {{name: RECORD_TYPE, start: 1, width: 1, value: "T"}}
  - {{name: RECORD_COUNT, start: 2, width: 9}}
"""

_MAPPING = """\
# {name} -> canonical person. Transforms: joinedup.mapping.transforms (trim, parse_date, ...).
# yaml-language-server: $schema=../schemas/mapping.schema.json
description: {title}
# columns: [ID, ...]                # every column the source sends (enables the drift check)
fields:
  source_key:     {{from: ID, transform: trim}}
  # given_name:   {{from: FORENAME, transform: [trim, title_case_name]}}
  # family_name:  {{from: SURNAME, transform: [trim, title_case_name]}}
  # date_of_birth: {{from: DOB, transform: {{parse_date: {{formats: ["%d/%m/%Y"]}}}}}}
  # postcode:     {{from: POSTCODE, transform: normalise_postcode}}
"""

_TEST = '''\
"""The standard adapter check for {name}, as a test (needs the source reachable)."""
from joinedup.adapters.check import check_source


def test_{name}_passes_the_standard_check() -> None:
    report = check_source("{name}")
    assert report.ok, report.render()
'''


def scaffold(name: str, kind: str, root: Path | None = None) -> list[Path]:
    """Write the new source's files under ``root`` (the project); return their paths."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"source name {name!r} must be lower case letters, digits and _ (start with a letter, "
                         "at most 40 characters)")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    root = root or project_root()
    title = name.replace("_", " ").capitalize()
    connection = f"connection_id: {name}                # JOINEDUP_CONN_{name.upper()} or Airflow\n" \
        if kind in ("rest", "soap") else ""
    files = {
        root / "adapters" / f"{name}.yaml": _COMMON.format(name=name, kind=kind, title=title, connection=connection)
        + _OPTIONS[kind].replace("{name}", name),
        root / "mappings" / f"{name}.yaml": _MAPPING.format(name=name, title=title),
        root / "tests" / f"test_source_{name}.py": _TEST.format(name=name),
    }
    if kind == "fixed_width":
        files[root / "schemas" / "sources" / f"{name}_layout.yaml"] = _LAYOUT.format(name=name)
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise FileExistsError(f"not overwriting existing file(s): {', '.join(existing)}")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
