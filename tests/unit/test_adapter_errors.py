"""Pure pieces of the adapters: fault classification, cursors, Link headers, connection URIs."""
from __future__ import annotations

import pytest
from zeep.exceptions import Fault

from joinedup.adapters.base import FatalSourceError, RetriableSourceError
from joinedup.adapters.credentials import MissingConnection, get_connection, parse_connection_uri
from joinedup.adapters.http import RateLimiter
from joinedup.adapters.rest import Watermark, dig, parse_link_next, split_cursor
from joinedup.adapters.soap import fault_error


@pytest.mark.parametrize("code, kind", [
    ("soap:Server", RetriableSourceError), ("soap:Receiver", RetriableSourceError),
    ("{http://schemas.xmlsoap.org/soap/envelope/}Server", RetriableSourceError),
    ("soap:Client", FatalSourceError), ("soap:Sender", FatalSourceError),
    ("soap:VersionMismatch", FatalSourceError), (None, FatalSourceError),
])
def test_faults_are_sorted_by_who_is_to_blame(code, kind) -> None:
    error = fault_error("housing", Fault("something failed", code=code))
    assert type(error) is kind
    assert error.__class__ is not RetriableSourceError or "try again later" in str(error)


def test_fault_message_is_cut_short() -> None:
    error = fault_error("housing", Fault("x" * 5000, code="soap:Client"))
    assert len(str(error)) < 400


def test_watermark_keeps_the_largest_position_and_skips_what_was_landed() -> None:
    mark = Watermark(None, with_key=True)
    for stamp, key in [("2024-01-02T00:00:00Z", "b"), ("2024-01-01T00:00:00Z", "z"), ("2024-01-02T00:00:00Z", "a")]:
        mark.advance(stamp, key)
    assert mark.text == "2024-01-02T00:00:00Z|b"
    resumed = Watermark(mark.text, with_key=True)
    assert resumed.seen_before("2024-01-02T00:00:00Z", "a") and resumed.seen_before("2024-01-02T00:00:00+00:00", "b")
    assert not resumed.seen_before("2024-01-02T00:00:00Z", "c")
    assert not resumed.seen_before("2024-01-02T00:00:01Z", "a")
    mark.advance("not a date", "q")
    assert mark.unparseable == 1 and mark.text == "2024-01-02T00:00:00Z|b"


def test_watermark_without_key_never_skips() -> None:
    mark = Watermark("2024-01-02T00:00:00Z", with_key=False)
    assert not mark.seen_before("2024-01-01T00:00:00Z", None)
    mark.advance("2024-01-03T00:00:00Z", "k")
    assert mark.text == "2024-01-03T00:00:00Z"
    assert split_cursor("2024-01-03T00:00:00Z|k") == ("2024-01-03T00:00:00Z", "k")


def test_dig_and_link_header() -> None:
    assert dig({"a": {"b": [1]}}, "a.b") == [1] and dig([1], "") == [1] and dig({"a": 1}, "a.b") is None
    header = '<http://x/api?page=2>; rel="next", <http://x/api?page=9>; rel="last"'
    assert parse_link_next(header) == "http://x/api?page=2"
    assert parse_link_next('<http://x/api?page=9>; rel="last"') is None


def test_connection_uri_is_decoded_and_never_shown() -> None:
    conn = parse_connection_uri("revenues_rest", "rest://id%2Fx:p%40ss%3Aw@127.0.0.1:8080/api/v1?auth=oauth2&token_url=/oauth/token", "env")
    assert (conn.login, conn.password, conn.host, conn.port, conn.path) == ("id/x", "p@ss:w", "127.0.0.1", 8080, "/api/v1")
    assert conn.extra == {"auth": "oauth2", "token_url": "/oauth/token"}
    assert conn.http_url() == "http://127.0.0.1:8080/api/v1"
    assert "p@ss" not in repr(conn) and "p@ss" not in str(conn)
    soap = parse_connection_uri("h", "soaps://u:p@h.example/svc?wsdl", "env")
    assert soap.http_url() == "https://h.example/svc" and "wsdl" in soap.extra


def test_missing_connection_names_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("JOINEDUP_CONN_HR_FILES", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    with pytest.raises(MissingConnection, match="set JOINEDUP_CONN_HR_FILES"):
        get_connection("hr_files")
    monkeypatch.setenv("JOINEDUP_CONN_HR_FILES", "::not a uri")
    with pytest.raises(FatalSourceError, match="connection hr_files") as caught:
        get_connection("hr_files")
    assert "not a uri" not in str(caught.value)


def test_rate_limiter_spaces_calls() -> None:
    limiter = RateLimiter(1000)
    waits = [limiter.wait() for _ in range(5)]
    assert waits[0] == 0 and limiter.interval == pytest.approx(0.001)
    assert RateLimiter(None).wait() == 0
