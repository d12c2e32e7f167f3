"""A landed value holding a Unicode line separator is one record, read back whole.

The landing writer keeps non-ASCII text as it is (``ensure_ascii=False``), so a value may hold
U+2028, U+2029, U+0085, a form feed or a vertical tab: Python's ``splitlines`` breaks at all
of them, and one record would come back as several broken lines (a parse error, the night
lost). Every reader of landed pages splits on newline only."""
from __future__ import annotations

from pathlib import Path

SEPARATORS = {"given_name": "Ann\u2028Marie", "addr_line1": "Flat 1\u2029", "town": "Caerdydd\x85",
              "addr_line2": "a\x0cb\x0bc\x1cd\x1de\x1ef", "last_name": "O\u2019Neil"}


def test_every_reader_gives_back_the_record_that_was_landed(project: Path) -> None:
    from joinedup.landing import LandingWriter, read_landed
    from joinedup.pipeline import _landed_lines
    from joinedup.quality.quarantine import landed_row

    records = [{"customer_ref": "500000001", **SEPARATORS}, {"customer_ref": "500000002", "town": "Newport"}]
    writer = LandingWriter("revenues", "separators-1", None)
    writer.write_page(records, "test")
    manifest = writer.complete(None)

    landed = list(read_landed(manifest))
    assert [r.record for r in landed] == records
    assert [r.row for r in landed] == [1, 2]
    assert len(list(_landed_lines(manifest))) == 2
    assert landed_row(landed[0].file, 1) == records[0]
    assert landed_row(landed[1].file, 2) == records[1]
