"""Records per second for each adapter kind on 100,000 records, against the real simulators on
loopback (SOAP, REST) and real files (CSV, XML, fixed width); for the file kinds, the ratio to
a bare pandas / lxml parse of the same file (what our safety and checks cost).

    .venv/bin/python benchmarks/adapter_bench.py [N]

Run on purpose, not in the test suite. Prints one line per kind.
"""
from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000


def tile(records: list[dict], n: int, key: str, make_key, stamp: str | None = None, make_stamp=None) -> list[dict]:
    """n records cycling through ``records`` with unique keys (and spread timestamps)."""
    out = []
    for i in range(n):
        r = dict(records[i % len(records)])
        r[key] = make_key(i)
        if stamp:
            r[stamp] = make_stamp(i)
        out.append(r)
    return out


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="joinedup-bench-"))
    repo = Path(__file__).resolve().parents[1]
    os.environ["JOINEDUP_HOME"] = str(repo)
    os.environ["JOINEDUP_VAR"] = str(home / "var")

    from lxml import etree
    import pandas as pd

    from joinedup.adapters.config import SourceConfig
    from joinedup.adapters.files import CsvAdapter, CsvOptions
    from joinedup.adapters.fixed_width import FixedWidthAdapter, FixedWidthOptions
    from joinedup.adapters.rest import RestAdapter, RestOptions
    from joinedup.adapters.soap import SoapAdapter, SoapOptions
    from joinedup.adapters.xml_file import XmlFileAdapter, XmlOptions
    from joinedup.simulators import file_drops as fd
    from joinedup.simulators.council import build_council
    from joinedup.simulators.housing_soap import HousingSoapOptions, HousingSoapServer
    from joinedup.simulators.revenues_rest import REVENUES_FIELDS, RevenuesRestOptions, RevenuesRestServer

    council = build_council(4000, 1)
    stamp = lambda i: f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}"  # noqa: E731
    rows: list[tuple[str, int, float, str]] = []

    # -- REST --------------------------------------------------------------------------------
    revenues = tile(council.records["revenues"], N, "customer_ref", lambda i: f"5{i:08d}", "modified_at", lambda i: stamp(i) + "Z")
    with RevenuesRestServer(revenues, options=RevenuesRestOptions(api_key="bench")) as server:
        os.environ["JOINEDUP_CONN_BENCH_REST"] = f"rest://:bench@127.0.0.1:{server.port}/api/v1?auth=api_key"
        raw = {"path": "customers", "page_size": 1000, "paging": {"style": "cursor"},
               "incremental": {"param": "modified_since", "field": "modified_at", "key_field": "customer_ref"}}
        a = RestAdapter(SourceConfig(name="bench", kind="rest", mapping="revenues.yaml", connection_id="bench_rest", options=raw),
                        RestOptions.model_validate(raw))
        got, secs = timed(lambda: sum(len(p.records) for p in a.extract(None)))
    rows.append(("rest (cursor, 1000/page)", got, secs, ""))

    # -- SOAP --------------------------------------------------------------------------------
    housing = tile(council.records["housing"], N, "TenantRef", lambda i: f"HT{i:06d}"[:8] if i < 10**6 else f"HT{i}",
                   "LastModified", stamp)
    with HousingSoapServer(housing, options=HousingSoapOptions(username="u", password="p")) as server:
        os.environ["JOINEDUP_CONN_BENCH_SOAP"] = f"soap://u:p@127.0.0.1:{server.port}/housing/service?wsdl"
        raw = {"operation": "GetTenantsChangedSince", "records_path": "Tenants.Tenant", "page_size": 1000,
               "incremental": {"param": "since", "field": "LastModified", "key_field": "TenantRef"}}
        a = SoapAdapter(SourceConfig(name="bench", kind="soap", mapping="housing.yaml", connection_id="bench_soap", options=raw),
                        SoapOptions.model_validate(raw))
        got, secs = timed(lambda: sum(len(p.records) for p in a.extract(None)))
    rows.append(("soap (zeep, 1000/page)", got, secs, ""))

    drops = home / "drops"
    drops.mkdir(parents=True)

    # -- CSV ---------------------------------------------------------------------------------
    csv_path = drops / "revenues_20240101.csv"
    with open(csv_path, "w", encoding="cp1252", errors="replace", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(REVENUES_FIELDS))
        writer.writeheader()
        writer.writerows(revenues)
    raw = {"drop_folder": str(drops), "file_pattern": "revenues_*.csv", "encoding": "cp1252"}
    a = CsvAdapter(SourceConfig(name="bench", kind="csv", mapping="revenues.yaml", options=raw), CsvOptions.model_validate(raw))
    got, secs = timed(lambda: len(a.read_file(csv_path)))
    _, bare = timed(lambda: pd.read_csv(csv_path, dtype=str, encoding="cp1252", keep_default_na=False))
    rows.append(("csv", got, secs, f"bare pandas.read_csv {N / bare:,.0f} rec/s; adapter takes {secs / bare:.1f}x"))

    # -- XML ---------------------------------------------------------------------------------
    social = tile(council.records["socialcare"], N, "ClientId", lambda i: f"SC{i:07d}")
    xml_path = fd.write_socialcare_extract(social, drops, date(2024, 1, 1), validate=False)
    raw = {"drop_folder": str(drops), "file_pattern": "socialcare_*.xml", "record_element": "Client",
           "xsd": "sources/socialcare.xsd", "count_attribute": "recordCount", "fields": list(fd.SOCIALCARE_FIELDS)}
    a = XmlFileAdapter(SourceConfig(name="bench", kind="xml", mapping="socialcare.yaml", options=raw), XmlOptions.model_validate(raw))
    got, secs = timed(lambda: len(a.read_file(xml_path)))
    no_xsd = XmlFileAdapter(SourceConfig(name="bench", kind="xml", mapping="socialcare.yaml", options=raw),
                            XmlOptions.model_validate({**raw, "xsd": None}))
    _, secs_no_xsd = timed(lambda: len(no_xsd.read_file(xml_path)))

    def bare_xml() -> int:
        root = etree.parse(str(xml_path)).getroot()
        return len([{etree.QName(c).localname: c.text for c in client} for client in root])

    _, bare = timed(bare_xml)
    rows.append(("xml (streamed + XSD)", got, secs, f"bare lxml parse {N / bare:,.0f} rec/s; adapter takes {secs / bare:.1f}x "
                 f"({secs_no_xsd / bare:.1f}x without the XSD)"))

    # -- fixed width -------------------------------------------------------------------------
    hr = tile(council.records["hr"], N, "EMPNO", lambda i: f"E{i:07d}")
    dat_path = fd.write_hr_extract(hr, drops, date(2024, 1, 1))
    raw = {"drop_folder": str(drops), "file_pattern": "hr_*.dat", "layout": "sources/hr_layout.yaml"}
    a = FixedWidthAdapter(SourceConfig(name="bench", kind="fixed_width", mapping="hr.yaml", options=raw),
                          FixedWidthOptions.model_validate(raw))
    got, secs = timed(lambda: len(a.read_file(dat_path)))
    layout = fd.read_hr_layout()
    colspecs = [(f.start - 1, f.start - 1 + f.width) for f in layout.detail[1:]]
    names = [f.name for f in layout.detail[1:]]
    _, bare = timed(lambda: pd.read_fwf(dat_path, colspecs=colspecs, names=names, dtype=str, encoding="cp1252",
                                        skiprows=1, nrows=N, keep_default_na=False))
    rows.append(("fixed_width (cp1252)", got, secs, f"bare pandas.read_fwf {N / bare:,.0f} rec/s; adapter takes {secs / bare:.2f}x"))

    print(f"adapter benchmark: {N:,} records per kind (2-core shared machine; one run)")
    for kind, count, seconds, note in rows:
        assert count == N, f"{kind}: {count} records, expected {N}"
        print(f"  {kind:<26} {count / seconds:>10,.0f} rec/s  ({seconds:5.2f} s)  {note}")


if __name__ == "__main__":
    main()
