"""The synthetic council for ``make run``: generate the residents, bring their four systems
up on loopback (SOAP, REST, file drops), point the adapters' connections at them, and keep
the ground truth under ``var/council/`` so ``joinedup evaluate`` can score the index.
"""
from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from joinedup.paths import var_dir

DEFAULT_RESIDENTS = 10_000
DEFAULT_SEED = 2026


def council_dir() -> Path:
    path = var_dir() / "council"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_truth(council, folder: Path) -> None:  # noqa: ANN001
    with open(folder / "truth.csv.tmp", "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["source_system", "source_key", "person_id"])
        out.writerows(council.truth)
    with open(folder / "twins.csv.tmp", "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["person_id_a", "person_id_b"])
        out.writerows(sorted(tuple(sorted(pair)) for pair in council.twins))
    for name in ("truth.csv", "twins.csv"):
        (folder / f"{name}.tmp").replace(folder / name)


def _write_csv_drop(records: list[dict], folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.partial"
    fields = list(records[0]) if records else []
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)
    tmp.replace(target)
    return target


@contextlib.contextmanager
def synthetic_council(residents: int = DEFAULT_RESIDENTS, seed: int = DEFAULT_SEED, night: int = 0) -> Iterator[dict]:
    """Serve the council's systems for the duration of the block; yields a description."""
    from joinedup.adapters import load_sources
    from joinedup.simulators.council import build_council, night_datetime
    from joinedup.simulators.servers import CouncilOptions, start_council_servers

    council = build_council(residents, seed, night=night)
    _write_truth(council, council_dir())
    extract_day: date = night_datetime(night).date()
    drop_dir = var_dir() / "drops" / "council"
    configs = {c.name: c for c in load_sources()}
    for name, cfg in configs.items():
        if cfg.kind == "csv" and name in council.records:
            folder = Path(cfg.options.get("drop_folder", f"drops/{name}"))
            folder = folder if folder.is_absolute() else var_dir() / folder
            _write_csv_drop(council.records[name], folder, f"{name}_{extract_day:%Y%m%d}.csv")
    with start_council_servers(council.records, drop_dir, options=CouncilOptions(extract_date=extract_day)) as running:
        saved = {k: os.environ.get(k) for k in running.env()}
        os.environ.update(running.env())
        try:
            yield {"residents": council.residents, "night": night,
                   "records": {k: len(v) for k, v in council.records.items()}, "truth": str(council_dir())}
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
