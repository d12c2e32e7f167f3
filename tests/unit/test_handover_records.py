"""The stage step reads the check step's hand-over file into dicts without pandas' to_dict:
the rows must be exactly what ``to_dict("records")`` gives (same keys in the same order, same
values, same types), for any text the hand-over can hold."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from joinedup.pipeline import _handover_schema, handover_records

COLUMNS = ["source_key", "given_name", "family_name", "date_of_birth", "postcode", "mapping_issues"]
text = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                   max_size=12))


def _as_stage_reads_it(rows: list[dict], folder: Path) -> pd.DataFrame:
    """Written as the check step writes the hand-over, read back as the stage step reads it."""
    canonical = pd.DataFrame(rows, columns=COLUMNS).astype(object)
    table = pa.Table.from_pandas(canonical.drop(columns=["mapping_issues"]), schema=_handover_schema(canonical),
                                 preserve_index=False)
    pq.write_table(table, folder / "passed.parquet")
    passed = pd.read_parquet(folder / "passed.parquet").astype(object)
    return passed.where(passed.notna(), None)


def _same(passed: pd.DataFrame) -> None:
    ours, theirs = handover_records(passed), passed.to_dict("records")
    assert ours == theirs
    assert [list(r) for r in ours] == [list(r) for r in theirs]  # key order
    assert [[type(v) for v in r.values()] for r in ours] == [[type(v) for v in r.values()] for r in theirs]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({c: text for c in COLUMNS}), max_size=25))
def test_handover_records_are_to_dicts_records(tmp_path_factory, rows) -> None:  # noqa: ANN001
    _same(_as_stage_reads_it(rows, tmp_path_factory.mktemp("handover")))


def test_empty_and_all_empty_columns(tmp_path: Path) -> None:
    _same(_as_stage_reads_it([], tmp_path))
    rows = [{"source_key": "K1", "given_name": "Zoë", "family_name": None, "date_of_birth": None,
             "postcode": None, "mapping_issues": ""}, {"source_key": "K2"}]
    passed = _as_stage_reads_it(rows, tmp_path)
    assert handover_records(passed)[0]["given_name"] == "Zoë" and handover_records(passed)[1]["postcode"] is None
    _same(passed)
