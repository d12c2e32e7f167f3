"""``mapping.reuse.FullExtractMapping`` gives, for every production mapping, exactly the rows
``map_records`` gives: night 1 of the synthetic council mapped with night 0's rows kept and
reused, against night 1 mapped whole, chunk by chunk as the check step maps."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from joinedup.simulators.council import SYSTEMS


def _digests(records: list[dict]) -> np.ndarray:
    """What the check step's survey takes: the digest of each record's landed line."""
    from joinedup.mapping.reuse import digests_of

    lines = (json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records)
    return digests_of(b"".join(hashlib.blake2b(line.encode("utf-8"), digest_size=16).digest() for line in lines))


def _distinct(records: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for r in records:
        seen.setdefault(json.dumps(r, ensure_ascii=False, sort_keys=True), r)
    return list(seen.values())


@pytest.mark.parametrize("system", SYSTEMS)
def test_reused_rows_are_the_rows_mapping_gives(tmp_path: Path, project: Path, system: str) -> None:
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.mapping.engine import map_records
    from joinedup.mapping.reuse import MAPPED, FullExtractMapping
    from joinedup.mapping.spec import load_mapping
    from joinedup.simulators.council import build_council
    from joinedup.simulators.history import RecordHistory

    spec = load_mapping(load_source(adapters_dir() / f"{system}.yaml").mapping_path())
    nights = [_distinct(build_council(400, 5, night=n, history=RecordHistory.named("full")).records[system])
              for n in (0, 1)]
    columns = list(dict.fromkeys(k for night in nights for r in night for k in r))
    whole = map_records(nights[1], spec, system, columns=columns)

    def check(night: list[dict], folder: Path, chunk: int) -> tuple[pd.DataFrame, FullExtractMapping]:
        mapping = FullExtractMapping(folder, spec, system)
        digests = _digests(night)
        parts = [mapping.map(night[i:i + chunk], digests[i:i + chunk],
                             lambda rs: map_records(rs, spec, system, columns=columns))
                 for i in range(0, len(night), chunk)]
        mapping.finish()
        return pd.concat(parts, ignore_index=True), mapping

    landing = tmp_path / "landing" / system
    check(nights[0], landing / "night-0" / "checked", 1000)
    assert (landing / "night-0" / "checked" / MAPPED).exists()
    for chunk in (1000, 17):
        got, mapping = check(nights[1], landing / f"night-1-{chunk}" / "checked", chunk)
        repeated = len({json.dumps(r, sort_keys=True) for r in nights[0]} & {json.dumps(r, sort_keys=True) for r in nights[1]})
        assert 0 < repeated < len(nights[1])  # most records repeat, some changed or are new
        assert mapping.reused == repeated and mapping.mapped == len(nights[1]) - repeated
        pd.testing.assert_frame_equal(got, whole)
        (landing / f"night-1-{chunk}" / "checked" / MAPPED).unlink()  # the next chunk size reads night 0's again
