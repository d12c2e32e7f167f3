"""The index the workbench tests look at, built by the real pipeline (CSV drops -> landing ->
mapping -> gate -> staging -> match), with a special-category social-care source beside the
revenues one. Other workbench test modules import ``build_index`` from here."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.conftest import REPO, csv_drop_source

HEADER = ("customer_ref,title,first_name,last_name,dob,ni_no,uprn,addr_line1,addr_line2,addr_line3,town,postcode,"
          "email,phone_number,account_opened,modified_at")
# revenues: pairs the rules send for review (same family name and date of birth, nothing else)
REVENUES_EXTRA = [
    "500000013,Mr,Dafydd,Morgan,14/02/1982,,,4 Heol Fach,,,Swansea,SA2 0AA,,,2019-01-01,2026-01-04T10:00:00Z",
    "500000014,Ms,Catherine,Hughes,22/05/1985,,,7 Oak Way,,,Cardiff,CF14 2AB,,,2019-01-01,2026-01-04T10:00:00Z",
    "500000015,Ms,Kate,Hughes,22/05/1985,,,12 Elm Close,,,Cardiff,CF23 9HH,,,2019-01-01,2026-01-03T10:00:00Z",
    "500000016,Mr,Gareth,Price,01/03/1970,,,2 Bryn Road,,,Wrexham,LL11 1AA,,,2019-01-01,2026-01-04T10:00:00Z",
    "500000017,Mr,Owen,Price,01/03/1970,,,9 Station Road,,,Llandrindod Wells,LD1 5AA,,,2019-01-01,2026-01-04T10:00:00Z",
]
# social care (special category): one record linked to William Smith by NI number and date of
# birth, with a newer address (so his golden address comes from social care), and one that
# the rules send for review against Dafydd Morgan
SOCIALCARE = [
    "SC0000001,Mr,William,Smith,03/04/1961,AB123456C,,Room 4 Ty Gwyn Care Home,,,Cardiff,CF5 2QQ,,,2019-01-01,2026-01-05T09:00:00Z",
    "SC0000002,Mr,David,Morgan,14/02/1982,,,Flat 9 Harbour View,,,Swansea,SA1 8ZZ,,,2019-01-01,2026-01-04T10:00:00Z",
]
SECRET_VALUES = ("Ty Gwyn", "CF5 2QQ", "Harbour View", "SA1 8ZZ", "SC0000001", "SC0000002")


def build_index(project: Path, night: str = "night-1") -> dict:
    """Run one night over revenues + socialcare; returns the merge figures."""
    from joinedup.pipeline import merge, sync_source

    for other in (project / "adapters").glob("*.yaml"):
        other.unlink()
    # the social-care rows come in the revenues CSV layout, under a mapping of their own name:
    # the per-layout quality suite (named after the mapping) checks revenues' key shape
    revenues_mapping = (project / "mappings" / "revenues.yaml").read_text(encoding="utf-8")
    (project / "mappings" / "socialcare_as_csv.yaml").write_text(revenues_mapping, encoding="utf-8")
    for name, mapping, special, rows in (
        ("revenues", "revenues.yaml", False, (REPO / "tests" / "fixtures" / "revenues_small.csv").read_text(encoding="utf-8").splitlines()[1:] + REVENUES_EXTRA),
        ("socialcare", "socialcare_as_csv.yaml", True, SOCIALCARE),
    ):
        csv_drop_source(project, name, mapping=mapping, special_category=special, max_failure_rate=0.2)
        folder = project / "var" / "drops" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}_20260105.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
        sync_source(name, night)
    return merge(night)


def records_by_key(session) -> dict:  # noqa: ANN001
    from joinedup.mci.store import SourceRecord

    return {r.source_key: r for r in session.scalars(select(SourceRecord))}


def test_the_index_has_review_pairs_and_special_category_records(project: Path, mci_db: str) -> None:
    from joinedup.mci.store import ReviewPair, session_factory

    figures = build_index(project)
    assert figures["review_pairs_added"] == 3
    with session_factory()() as session:
        recs = records_by_key(session)
        assert recs["SC0000001"].special_category and not recs["500000001"].special_category
        assert recs["SC0000001"].master_id == recs["500000001"].master_id
        pairs = {(recs_l, recs_r) for recs_l, recs_r in session.execute(select(ReviewPair.record_id_l, ReviewPair.record_id_r))}
        keys = {r.id: k for k, r in recs.items()}
        assert {frozenset((keys[a], keys[b])) for a, b in pairs} == {
            frozenset(("500000013", "SC0000002")), frozenset(("500000014", "500000015")),
            frozenset(("500000016", "500000017"))}
