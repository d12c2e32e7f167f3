"""The SOAP adapter (zeep) against the real housing simulator on loopback."""
from __future__ import annotations

from pathlib import Path

import pytest

from joinedup.adapters.base import FatalSourceError, RetriableSourceError
from joinedup.adapters.config import SourceConfig
from joinedup.adapters.soap import SoapAdapter, SoapOptions
from joinedup.simulators.housing_soap import HOUSING_FIELDS, HousingSoapOptions, HousingSoapServer
from joinedup.simulators.servers import FailurePlan

USER, PASSWORD = "housing-sync", "pa:ss/wo&rd"
FAST = {"retries": 2, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05, "jitter_seconds": 0.01,
        "connect_timeout_seconds": 2, "read_timeout_seconds": 5}


def tenant(i: int) -> dict:
    record = dict.fromkeys(HOUSING_FIELDS)
    record.update(TenantRef=f"HT{i:06d}", Forename="Siân", Surname="O’Brien", DateOfBirth="1970-01-31",
                  LastModified=f"2024-03-{1 + (i // 5) % 28:02d}T10:00:{(i // 5) % 60:02d}")
    return record


def tenants(n: int) -> list[dict]:
    return [tenant(i) for i in range(n)]


def expected(records: list[dict]) -> list[str]:
    return [r["TenantRef"] for r in sorted(records, key=lambda r: (r["LastModified"], r["TenantRef"]))]


def soap_adapter(monkeypatch, server: HousingSoapServer, *, password: str = PASSWORD, **options) -> SoapAdapter:
    quoted = password.replace("/", "%2F").replace(":", "%3A").replace("&", "%26")
    monkeypatch.setenv("JOINEDUP_CONN_HOUSING_TEST", f"soap://{USER}:{quoted}@127.0.0.1:{server.port}/housing/service?wsdl")
    raw = {"operation": "GetTenantsChangedSince", "records_path": "Tenants.Tenant", "page_size": 12,
           "paging": {"size_param": "pageSize", "token_param": "pageToken", "next_token_field": "nextPageToken"},
           "incremental": {"param": "since", "field": "LastModified", "key_field": "TenantRef"},
           "operation_timeout_seconds": 5, "http": FAST, **options}
    config = SourceConfig(name="housing", kind="soap", mapping="housing.yaml", connection_id="housing_test", options=raw)
    return SoapAdapter(config, SoapOptions.model_validate(raw))


def refs(pages) -> list[str]:
    return [r["TenantRef"] for p in pages for r in p.records]


def server_for(records, **failures) -> HousingSoapServer:
    return HousingSoapServer(records, options=HousingSoapOptions(username=USER, password=PASSWORD,
                                                                 failures=FailurePlan(**failures)))


def test_paging_to_the_end_with_native_fields(monkeypatch, project: Path) -> None:
    records = tenants(50)
    with server_for(records) as server:
        a = soap_adapter(monkeypatch, server)
        pages = list(a.extract(None))
    assert refs(pages) == expected(records)
    assert len(pages) == 5 and a.calls == 5
    first = pages[0].records[0]
    assert list(first) == list(HOUSING_FIELDS)  # plain dicts, native names, in WSDL order
    assert first["Forename"] == "Siân" and first["Title"] is None
    last = max(records, key=lambda r: (r["LastModified"], r["TenantRef"]))
    assert pages[-1].cursor == f"{last['LastModified']}|{last['TenantRef']}"
    assert (project / "var" / "cache" / "zeep-wsdl.sqlite").exists()  # the WSDL is cached under var/


def test_checked_in_wsdl_with_the_connection_as_endpoint(monkeypatch, project: Path) -> None:
    records = tenants(20)
    with server_for(records) as server:
        a = soap_adapter(monkeypatch, server, wsdl="sources/housing.wsdl")
        assert refs(a.extract(None)) == expected(records)


def test_incremental_and_exact_resume(monkeypatch, project: Path) -> None:
    records = tenants(40)
    with server_for(records) as server:
        pages = list(soap_adapter(monkeypatch, server).extract(None))
        for cut in (1, 2):
            again = list(soap_adapter(monkeypatch, server).extract(pages[cut - 1].cursor))
            assert refs(pages[:cut]) + refs(again) == expected(records)
        assert list(soap_adapter(monkeypatch, server).extract(pages[-1].cursor)) == []
        changed = [dict(r) for r in records]
        changed[7]["LastModified"] = "2024-04-02T08:00:00"
        server.set_records(changed)
        assert refs(soap_adapter(monkeypatch, server).extract(pages[-1].cursor)) == [records[7]["TenantRef"]]


def test_wrong_password_is_a_fatal_client_fault(monkeypatch, project: Path) -> None:
    with server_for(tenants(5)) as server:
        with pytest.raises(FatalSourceError, match="Client.*WS-Security authentication failed.*connection") as caught:
            list(soap_adapter(monkeypatch, server, password="nope").extract(None))
    assert "nope" not in str(caught.value)


def test_unknown_operation_is_fatal_and_lists_the_known_ones(monkeypatch, project: Path) -> None:
    with server_for(tenants(5)) as server:
        with pytest.raises(FatalSourceError, match="no operation 'GetTenants'; known: GetTenantsChangedSince"):
            list(soap_adapter(monkeypatch, server, operation="GetTenants").extract(None))


@pytest.mark.parametrize("failure", ["drop", "http500"])
def test_server_that_dies_mid_run_is_retriable(monkeypatch, project: Path, failure: str) -> None:
    records = tenants(60)
    with server_for(records, fail_after_n_requests=2, failure=failure) as server:
        a = soap_adapter(monkeypatch, server)
        got = []
        with pytest.raises(RetriableSourceError, match="try again later"):
            for page in a.extract(None):
                got.append(page)
        assert refs(got) == expected(records)[:24]
        # the server comes back: resuming from the last landed page's cursor completes the set
        server.failures.fail_after_n_requests = None
        rest = list(soap_adapter(monkeypatch, server).extract(got[-1].cursor))
    assert refs(got) + refs(rest) == expected(records)


def test_server_down_is_retriable(monkeypatch, project: Path) -> None:
    with server_for(tenants(5), down=True) as server:
        a = soap_adapter(monkeypatch, server)
        with pytest.raises(RetriableSourceError, match="WSDL could not be fetched"):
            list(a.extract(None))
        assert not a.health().ok
