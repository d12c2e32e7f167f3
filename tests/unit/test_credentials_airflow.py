"""The synthetic council's credentials as an ``airflow connections import`` file: what Airflow
reads back from it is what the adapters would have read from JOINEDUP_CONN_<ID>."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from joinedup.adapters.credentials import (
    connections_from_environment,
    parse_connection_uri,
    write_airflow_connections,
)

REPO = Path(__file__).resolve().parents[2]
SECRET = "pa:ss/wo&rd%"

URIS = {
    "HOUSING_SOAP": "soap://housing-sync:pa%3Ass%2Fwo%26rd%25@127.0.0.1:40001/housing/service?wsdl",
    "REVENUES_REST": "rest://client-1:s3cr%40t@127.0.0.1:40002/api/v1?auth=oauth2&token_url=/oauth/token",
    "REVENUES_REST_APIKEY": "rest://:k3y@127.0.0.1:40002/api/v1?auth=api_key&header=X-API-Key",
    "SOCIALCARE_XML": "file:///srv/drops/council?pattern=socialcare_*.xml",
}

# Airflow's own loader (the one `airflow connections import` uses), then our reading of its
# Connection objects: run in a child so this test does not configure Airflow in-process.
READ_BACK = """
import json, sys
from airflow.secrets.local_filesystem import load_connections_dict
from joinedup.adapters.credentials import from_airflow_connection
from dataclasses import asdict
found = load_connections_dict(sys.argv[1])
print("READ:" + json.dumps({k: asdict(from_airflow_connection(k, c)) for k, c in found.items()}))
"""


def test_the_import_file_gives_airflow_the_same_connections_as_the_uris(tmp_path: Path) -> None:
    path = write_airflow_connections(URIS, tmp_path / "airflow_connections.json")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
           "JOINEDUP_HOME": str(REPO)}
    out = subprocess.run([sys.executable, "-c", READ_BACK, str(path)], env=env, capture_output=True, text=True,
                         timeout=120)
    line = next((l for l in out.stdout.splitlines() if l.startswith("READ:")), None)
    assert line, out.stderr[-2000:]
    read = json.loads(line[len("READ:"):])
    assert sorted(read) == ["housing_soap", "revenues_rest", "revenues_rest_apikey", "socialcare_xml"]
    for conn_id, uri in URIS.items():
        expected = asdict(parse_connection_uri(conn_id.lower(), uri, "x"))
        got = read[conn_id.lower()]
        assert {**got, "origin": "x"} == expected, conn_id
    assert read["housing_soap"]["password"] == SECRET
    assert read["revenues_rest"]["extra"] == {"auth": "oauth2", "token_url": "/oauth/token"}


def test_the_file_is_readable_by_its_owner_only_and_replaced_whole(tmp_path: Path) -> None:
    path = write_airflow_connections(URIS, tmp_path / "conns.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_airflow_connections({"HOUSING_SOAP": URIS["HOUSING_SOAP"]}, path)
    assert list(json.loads(path.read_text())) == ["housing_soap"]
    assert [p.name for p in tmp_path.iterdir()] == ["conns.json"]  # no partial file left


def test_connections_are_read_from_the_joinedup_conn_variables_only() -> None:
    environ = {"JOINEDUP_CONN_HOUSING_SOAP": URIS["HOUSING_SOAP"], "JOINEDUP_CONN_EMPTY": "",
               "JOINEDUP_HOME": "/x", "AIRFLOW_CONN_OTHER": "http://h"}
    assert connections_from_environment(environ) == {"housing_soap": URIS["HOUSING_SOAP"]}


def test_a_connection_never_shows_its_secret() -> None:
    conn = parse_connection_uri("housing_soap", URIS["HOUSING_SOAP"], "JOINEDUP_CONN_HOUSING_SOAP")
    assert conn.password == SECRET
    assert SECRET not in repr(conn) and SECRET not in str(conn) and "pa%3A" not in repr(conn)
