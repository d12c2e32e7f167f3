"""The SOAP adapter's WSDL cache keeps a bounded number of documents and bytes (zeep's own
SqliteCache keeps every URL it ever fetched)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from joinedup.adapters.soap import bounded_wsdl_cache


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM request").fetchone()[0]


def test_the_cache_keeps_at_most_n_documents_dropping_the_least_recently_used(tmp_path: Path) -> None:
    path = tmp_path / "wsdl.sqlite"
    cache = bounded_wsdl_cache(path, 3600, max_entries=3)
    for port in (1001, 1002, 1003):
        cache.add(f"http://127.0.0.1:{port}/service?wsdl", b"<definitions/>")
    assert cache.get("http://127.0.0.1:1001/service?wsdl") == b"<definitions/>"  # 1001 is used again
    cache.add("http://127.0.0.1:1004/service?wsdl", b"<definitions/>")
    assert rows(path) == 3
    assert cache.get("http://127.0.0.1:1002/service?wsdl") is None  # the least recently used went
    assert set(cache.urls()) == {f"http://127.0.0.1:{p}/service?wsdl" for p in (1001, 1003, 1004)}
    for port in range(2000, 2050):  # a month of test runs on fresh ports: still 3
        cache.add(f"http://127.0.0.1:{port}/service?wsdl", b"<definitions/>")
    assert rows(path) == 3
    assert cache.urls()[0] == "http://127.0.0.1:2049/service?wsdl"


def test_the_cache_keeps_within_its_byte_bound_but_always_the_newest_document(tmp_path: Path) -> None:
    path = tmp_path / "wsdl.sqlite"
    stored = len(bounded_wsdl_cache(tmp_path / "probe.sqlite", 60)._encode_data(b"x" * 100))  # as kept on disk
    cache = bounded_wsdl_cache(path, 3600, max_entries=100, max_bytes=int(stored * 2.5))
    cache.add("http://a/?wsdl", b"x" * 100)
    cache.add("http://b/?wsdl", b"y" * 100)
    cache.add("http://c/?wsdl", b"z" * 100)
    assert set(cache.urls()) == {"http://b/?wsdl", "http://c/?wsdl"}
    cache.add("http://huge/?wsdl", b"h" * 1000)  # bigger than the bound on its own: kept alone
    assert cache.urls() == ["http://huge/?wsdl"] and cache.get("http://huge/?wsdl") == b"h" * 1000


def test_a_reopened_cache_still_serves_and_still_bounds(tmp_path: Path) -> None:
    path = tmp_path / "wsdl.sqlite"
    bounded_wsdl_cache(path, 3600, max_entries=2).add("http://a/?wsdl", b"<a/>")
    again = bounded_wsdl_cache(path, 3600, max_entries=2)
    assert again.get("http://a/?wsdl") == b"<a/>"
    again.add("http://b/?wsdl", b"<b/>")
    again.add("http://c/?wsdl", b"<c/>")
    assert sorted(again.urls()) == ["http://b/?wsdl", "http://c/?wsdl"]


def test_expired_documents_are_not_served_and_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "wsdl.sqlite"
    cache = bounded_wsdl_cache(path, 3600, max_entries=10)
    cache.add("http://old/?wsdl", b"<old/>")
    with sqlite3.connect(path) as conn:  # as if fetched two hours ago
        conn.execute("UPDATE request SET created = '2000-01-01 00:00:00.000000+00:00' WHERE url = 'http://old/?wsdl'")
    assert cache.get("http://old/?wsdl") is None
    cache.add("http://new/?wsdl", b"<new/>")
    assert cache.urls() == ["http://new/?wsdl"]


def test_a_bound_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        bounded_wsdl_cache(tmp_path / "w.sqlite", 60, max_entries=0)
