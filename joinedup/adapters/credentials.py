"""Connection ids -> credentials. The YAML names a connection id; the values live elsewhere.

Under Airflow, a connection id is looked up in Airflow's Connections (its metadata DB, its
secrets backend or its ``AIRFLOW_CONN_<ID>`` variables) through the Task SDK. Outside Airflow
(the CLI, tests, ``joinedup adapter check``) it comes from the environment variable
``JOINEDUP_CONN_<ID>`` holding a URI in Airflow's shape::

    conn-type://login:password@host:port/path?extra_key=value

with login and password percent-encoded. Under Airflow the variable is the fallback when
Airflow does not know the id.

A ``Connection`` never shows its password or its URI in ``repr``/``str``, and no function here
logs values: only ids.

For Airflow, ``write_airflow_connections`` turns such URIs into a file for
``airflow connections import`` (the synthetic council writes one:
var/council/airflow_connections.json; ``joinedup simulate connections`` writes one from the
JOINEDUP_CONN_* variables that are set).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from joinedup.adapters.base import FatalSourceError

ENV_PREFIX = "JOINEDUP_CONN_"


class MissingConnection(FatalSourceError):
    """The connection id is not defined where we looked; the message says how to define it."""


@dataclass(frozen=True)
class Connection:
    """The parts of a connection an adapter uses. ``path`` keeps its leading '/'."""

    conn_id: str
    conn_type: str = ""
    host: str = ""
    port: int | None = None
    login: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    origin: str = ""  # where it was found: "airflow" or the environment variable's name

    def __str__(self) -> str:  # never the secret parts
        return f"connection {self.conn_id} ({self.conn_type or 'no type'} at {self.host or 'local'}, from {self.origin})"

    def http_base(self, secure_types: tuple[str, ...] = ("https", "rests", "soaps")) -> str:
        """``scheme://host[:port]`` for an HTTP connection: https when the type says so."""
        scheme = "https" if self.conn_type in secure_types or self.extra.get("tls") in ("1", "true", True) else "http"
        if not self.host:
            raise FatalSourceError(f"connection {self.conn_id} has no host; its URI must look like "
                                   f"{self.conn_type or 'rest'}://login:password@host:port/path")
        port = f":{self.port}" if self.port else ""
        return f"{scheme}://{self.host}{port}"

    def http_url(self) -> str:
        """``scheme://host[:port]/path``."""
        return self.http_base() + self.path


def env_var_name(conn_id: str) -> str:
    return ENV_PREFIX + conn_id.upper()


def parse_connection_uri(conn_id: str, uri: str, origin: str) -> Connection:
    """An Airflow-style connection URI -> Connection. Errors name the id, never the URI."""
    try:
        parts = urlsplit(uri.strip())
        port = parts.port
    except ValueError:
        raise FatalSourceError(f"connection {conn_id} (from {origin}) is not a valid URI; expected "
                               "conn-type://login:password@host:port/path?key=value") from None
    if not parts.scheme:
        raise FatalSourceError(f"connection {conn_id} (from {origin}) has no type: expected "
                               "conn-type://login:password@host:port/path?key=value")
    return Connection(
        conn_id=conn_id,
        conn_type=parts.scheme.lower().replace("-", "_"),
        host=parts.hostname or "",
        port=port,
        login=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        path=unquote(parts.path or ""),
        extra=dict(parse_qsl(parts.query, keep_blank_values=True)),
        origin=origin,
    )


def under_airflow() -> bool:
    """True inside an Airflow task (its runner has set the AIRFLOW_CTX_* variables, or the
    Task SDK's supervisor channel is open)."""
    if os.environ.get("AIRFLOW_CTX_DAG_ID"):
        return True
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _from_airflow(conn_id: str) -> Connection | None:
    from airflow.sdk import Connection as AirflowConnection

    try:
        found = AirflowConnection.get(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and its relatives
        if "isn't defined" in str(exc) or type(exc).__name__ == "AirflowNotFoundException":
            return None
        raise FatalSourceError(f"connection {conn_id}: Airflow could not read it ({type(exc).__name__})") from None
    return from_airflow_connection(conn_id, found)


def from_airflow_connection(conn_id: str, found: Any) -> Connection:
    """An Airflow Connection (Task SDK or model: same attribute names) -> Connection.
    Airflow's ``schema`` is our ``path`` (without its leading '/'), its extra our query string."""
    extra = found.extra_dejson if getattr(found, "extra", None) else {}
    return Connection(
        conn_id=conn_id, conn_type=(found.conn_type or "").lower().replace("-", "_"), host=found.host or "",
        port=found.port, login=found.login or "", password=found.password or "",
        path=("/" + found.schema.lstrip("/")) if found.schema else "", extra=dict(extra), origin="airflow",
    )


def airflow_connection_fields(conn: Connection) -> dict[str, Any]:
    """A Connection as one entry of an ``airflow connections import`` JSON file (the inverse of
    ``from_airflow_connection``: importing the entry gives back the same Connection)."""
    fields: dict[str, Any] = {"conn_type": conn.conn_type}
    for key, value in (("host", conn.host), ("port", conn.port), ("login", conn.login),
                       ("password", conn.password), ("schema", conn.path.lstrip("/"))):
        if value:
            fields[key] = value
    if conn.extra:
        fields["extra_dejson"] = dict(conn.extra)
    return fields


def write_airflow_connections(uris: dict[str, str], path: Path) -> Path:
    """Write ``{connection id: URI}`` (ids as the adapters' YAML spells them: lower case) as a
    file for ``airflow connections import PATH``. The file holds secrets: it is created
    readable by its owner only (0600) and replaced atomically; nothing is logged but its path
    and the ids."""
    entries = {}
    for conn_id, uri in sorted(uris.items()):
        conn_id = conn_id.lower()
        entries[conn_id] = airflow_connection_fields(parse_connection_uri(conn_id, uri, "the council"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(entries, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def connections_from_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Every ``JOINEDUP_CONN_<ID>`` variable as ``{id: URI}`` (e.g. the ``export`` lines that
    ``joinedup simulate serve`` prints), for ``write_airflow_connections``."""
    environ = os.environ if environ is None else environ
    return {k[len(ENV_PREFIX):].lower(): v for k, v in environ.items() if k.startswith(ENV_PREFIX) and v}


def get_connection(conn_id: str) -> Connection:
    """The connection ``conn_id``: from Airflow under Airflow, else ``JOINEDUP_CONN_<ID>``."""
    if under_airflow():
        found = _from_airflow(conn_id)
        if found is not None:
            return found
    name = env_var_name(conn_id)
    uri = os.environ.get(name)
    if uri:
        return parse_connection_uri(conn_id, uri, name)
    where = "Airflow's Connections or " if under_airflow() else ""
    raise MissingConnection(
        f"connection {conn_id} is not defined in {where}the environment: set {name} to a URI such as "
        f"rest://login:password@host:port/path?key=value (or add the connection {conn_id!r} to Airflow: "
        f"airflow connections add {conn_id} --conn-uri ...)"
    )


class ConnectedAdapter:
    """What every adapter that talks to a server shares: its source's name, and its
    connection read once, when first needed (never at construction, never logged)."""

    config: Any
    _conn: Connection | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def connection(self) -> Connection | None:
        if self._conn is None and self.config.connection_id:
            self._conn = get_connection(self.config.connection_id)
        return self._conn
