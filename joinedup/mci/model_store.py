"""Where the trained match model lives: versioned files under ``var/models/``.

Every training writes a NEW file, ``match_model_<version>.json`` (never overwriting one a
past night used, so any past link's evidence can still name and open its model), and then
points ``var/models/CURRENT`` at it. Nights read the current model; ``joinedup mci train``
retrains on demand. The file name is recorded in every link's evidence.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from joinedup.mci.probabilistic import TrainedModel, load_model
from joinedup.paths import var_dir

CURRENT_POINTER = "CURRENT"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def models_dir() -> Path:
    path = var_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_model(model: TrainedModel, folder: Path | None = None) -> Path:
    """Write ``model`` as a new versioned file and make it the current one; its path."""
    folder = folder or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"match_model_{_UNSAFE.sub('_', model.model_version)}"
    path, n = folder / f"{stem}.json", 1
    while path.exists():  # two trainings in one second: keep both
        n += 1
        path = folder / f"{stem}-{n}.json"
    model.save(path)
    pointer = folder / CURRENT_POINTER
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(path.name + "\n", encoding="utf-8")
    os.replace(tmp, pointer)
    return path


def current_model_path(folder: Path | None = None) -> Path | None:
    """The current model file, or None if no model has been trained yet."""
    folder = folder or models_dir()
    pointer = folder / CURRENT_POINTER
    if not pointer.is_file():
        return None
    path = folder / pointer.read_text(encoding="utf-8").strip()
    if not path.is_file():
        raise FileNotFoundError(
            f"{pointer} names {path.name}, which is missing; retrain with `joinedup mci train`")
    return path


def current_model(folder: Path | None = None) -> tuple[TrainedModel, Path] | None:
    """(model, its file) for the current model, or None if none was trained yet."""
    path = current_model_path(folder)
    if path is None:
        return None
    return load_model(path), path


def retrain_from_index(url: str | None = None) -> dict:
    """Train a new model on every source record in the MCI and make it current.

    Records keep their links: the new model is used from the next merge on. Refuses an
    index smaller than ``min_records_for_model`` (say so rather than train on too little).
    """
    import pandas as pd
    from sqlalchemy import select

    from joinedup.mci.match import choose_model
    from joinedup.mci.standardise import standardise
    from joinedup.mci.store import SourceRecord, session_factory
    from joinedup.mci.thresholds import load_thresholds

    with session_factory(url)() as session:
        rows = session.execute(select(SourceRecord.id, SourceRecord.record)).all()
    frame = pd.DataFrame([{**rec, "record_id": rid} for rid, rec in rows])
    thresholds = load_thresholds()
    if len(frame) < thresholds.min_records_for_model:
        raise ValueError(f"the index holds {len(frame)} source records, fewer than the "
                         f"{thresholds.min_records_for_model} needed to train the match model "
                         "(min_records_for_model in schemas/match.yaml)")
    choice = choose_model(standardise(frame), thresholds, load_current=lambda: None,
                          save=save_model, force_train=True)
    return {"records": len(frame), "model_version": choice.model.model_version,
            "model_file": str(choice.path), "training": choice.model.training}
