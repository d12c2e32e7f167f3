"""The match thresholds: when a scored pair links, goes to a steward, or is left apart.

They are configuration (``schemas/match.yaml``), validated here, because where to draw the
lines is a council's choice between two harms: a wrong merge (one resident sees another's
data) and a missed one (a caller repeats themselves). Weights are Splink match weights in
bits (log2 of the odds that the two records are one person); probability = 1 / (1 + 2**-w).

    link_weight           pairs at or above link automatically        (8 bits ~ p 0.996)
    review_weight         pairs at or above (below link) go to review (0 bits ~ p 0.5)
                          pairs below it are left apart: a new person if nothing else links
    merge_weight          a link that would merge two persons already in the index needs
                          this much (or a deterministic rule, or a steward's must-link)
    min_records_for_model below this many records there is too little data to train the
                          model: deterministic rules alone decide, and the result says so
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from joinedup.configfile import load_model
from joinedup.paths import project_root

MATCH_CONFIG_FILE = "match.yaml"


class MatchThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    link_weight: float = Field(8.0, description="Match weight (bits) at or above which a pair links.")
    review_weight: float = Field(0.0, description="Match weight at or above which a pair goes to review.")
    merge_weight: float = Field(
        12.0, description="Match weight a link needs to merge two persons already in the index.")
    min_records_for_model: int = Field(
        1000, ge=2, description="Fewest records to train the probabilistic model on.")

    @model_validator(mode="after")
    def _ordered(self) -> "MatchThresholds":
        if not self.review_weight <= self.link_weight <= self.merge_weight:
            raise ValueError(
                "thresholds must satisfy review_weight <= link_weight <= merge_weight; got "
                f"review {self.review_weight}, link {self.link_weight}, merge {self.merge_weight}")
        return self

    def outcome(self, match_weight: float) -> str:
        """'link', 'review' or 'new person' for a pair's match weight."""
        if match_weight >= self.link_weight:
            return "link"
        if match_weight >= self.review_weight:
            return "review"
        return "new person"


def match_config_path() -> Path:
    return project_root() / "schemas" / MATCH_CONFIG_FILE


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> MatchThresholds:  # mtime: an edited file is re-read
    return load_model(Path(path), MatchThresholds)


def load_thresholds(path: str | Path | None = None) -> MatchThresholds:
    """The thresholds in ``path`` (default ``schemas/match.yaml``); defaults if that file is
    absent. A file with unknown keys or out-of-order values raises ConfigError (file, line)."""
    target = Path(path) if path else match_config_path()
    if path is None and not target.is_file():
        return MatchThresholds()
    if not target.is_file():
        raise FileNotFoundError(f"match thresholds file {target} not found")
    return _load(str(target.resolve()), target.stat().st_mtime_ns)
