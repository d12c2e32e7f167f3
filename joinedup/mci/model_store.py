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
