"""The probabilistic (Fellegi–Sunter) person matcher, on Splink 5 + embedded DuckDB.

Three jobs, one function each:

* :func:`train` estimates the model from the match features: u by random sampling,
  the prior (probability that two random records are the same person) from
  deterministic rules, and m by EM on identifier/person blocks (never on
  address-only blocks: that teaches the model "same household"). The result is a
  :class:`TrainedModel`, saved as a versioned JSON file and read back with
  :func:`load_model`.
* :func:`score_pairs` blocks (see :mod:`joinedup.mci.blocking`) and scores
  candidate pairs; given ``new_ids`` it scores only pairs touching new or changed
  records (the incremental night).
* :func:`explain_pair` turns one scored pair into per-field evidence a steward can
  read: the level each field reached and the weight (bits) it contributed.

The model's shape (comparisons, fixed priors) lives in
:mod:`joinedup.mci.model_settings`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import duckdb
import pandas as pd

from joinedup.mci import model_settings as spec
from joinedup.mci.blocking import (
    DEFAULT_BLOCK_SIZE_CAP,
    DEFAULT_BLOCKING_RULES,
    FEATURES_TABLE,
    PAIRS_TABLE,
    BlockingReport,
    BlockingRule,
    count_comparisons,
    generate_pairs,
    open_duckdb,
)

logger = logging.getLogger(__name__)

MODEL_FILE_FORMAT = "joinedup.match_model"
MODEL_FILE_FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A saved model file cannot be used (wrong format, version or features)."""


class ModelSpecOutdated(ModelFileError):
    """A sound model file trained for an older model specification (an upgrade of JoinedUp
    changed the comparisons): the night retrains rather than stops."""


class FeatureFrameError(ValueError):
    """The match-feature frame does not follow the standardise() contract."""


@dataclass
class TrainedModel:
    """A trained, versioned matching model: Splink parameters plus our metadata."""

    splink_settings: dict[str, Any]
    model_version: str
    spec_version: str
    trained_at: str
    features: list[str]
    blocking_rules: list[BlockingRule]
    block_size_cap: int = DEFAULT_BLOCK_SIZE_CAP
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def prior_match_weight(self) -> float:
        p = float(self.splink_settings["probability_two_random_records_match"])
        return math.log2(p / (1.0 - p))

    @property
    def comparison_names(self) -> list[str]:
        return [c["output_column_name"] for c in self.splink_settings["comparisons"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FILE_FORMAT,
            "format_version": MODEL_FILE_FORMAT_VERSION,
            "model_version": self.model_version,
            "spec_version": self.spec_version,
            "trained_at": self.trained_at,
            "splink_version": _splink_version(),
            "features": list(self.features),
            "blocking_rules": [asdict(r) for r in self.blocking_rules],
            "block_size_cap": self.block_size_cap,
            "training": self.training,
            "splink_settings": self.splink_settings,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as JSON (atomically: a half-written model is never read)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False), "utf-8")
        os.replace(tmp, path)
        return path


def load_model(path: str | os.PathLike[str]) -> TrainedModel:
    """Read a model saved by :meth:`TrainedModel.save`, refusing incompatible files."""
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelFileError(
            f"no match model at {path}; train one first (joinedup.mci.probabilistic.train)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"match model {path} is not valid JSON ({exc})") from None
    if data.get("format") != MODEL_FILE_FORMAT:
        raise ModelFileError(
            f"{path} is not a JoinedUp match model (format={data.get('format')!r}, "
            f"expected {MODEL_FILE_FORMAT!r})"
        )
    if data.get("format_version") != MODEL_FILE_FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model file format version {data.get('format_version')!r}; "
            f"this JoinedUp reads version {MODEL_FILE_FORMAT_VERSION}. Retrain the model."
        )
    if data.get("spec_version") != spec.MODEL_SPEC_VERSION:
        raise ModelSpecOutdated(
            f"{path} was trained for model specification {data.get('spec_version')!r}; "
            f"the installed specification is {spec.MODEL_SPEC_VERSION!r}. Retrain the model."
        )
    missing = [c for c in data.get("features", []) if c not in spec.FEATURE_COLUMNS]
    if missing:
        raise ModelFileError(
            f"{path} uses features this version does not produce: {missing}. Retrain."
        )
    return TrainedModel(
        splink_settings=data["splink_settings"],
        model_version=data["model_version"],
        spec_version=data["spec_version"],
        trained_at=data["trained_at"],
        features=list(data["features"]),
        blocking_rules=[
            BlockingRule(r["name"], tuple(r["keys"]), r.get("where"))
            for r in data["blocking_rules"]
        ],
        block_size_cap=int(data.get("block_size_cap", DEFAULT_BLOCK_SIZE_CAP)),
        training=data.get("training", {}),
    )


# --------------------------------------------------------------------------
# Feature frame -> DuckDB
# --------------------------------------------------------------------------


def _check_features(features: pd.DataFrame) -> None:
    missing = [c for c in spec.FEATURE_COLUMNS if c not in features.columns]
    if missing:
        raise FeatureFrameError(
            f"match features are missing columns {missing}; expected the output of "
            "joinedup.mci.standardise.standardise()"
        )
    ids = features["record_id"]
    if ids.isna().any():
        raise FeatureFrameError(
            f"match features have {int(ids.isna().sum())} rows without a record_id"
        )
    if ids.duplicated().any():
        raise FeatureFrameError(
            f"match features have {int(ids.duplicated().sum())} duplicated record_id "
            "values; record_id must be unique"
        )


def _load_features(con: duckdb.DuckDBPyConnection, features: pd.DataFrame) -> None:
    """Copy the features into DuckDB with fixed types (an all-None column stays text)."""
    _check_features(features)
    frame = features[list(spec.FEATURE_COLUMNS)]
    con.register("__features_df", frame)
    con.execute(f"DROP TABLE IF EXISTS {FEATURES_TABLE}")
    con.execute(
        f"CREATE TABLE {FEATURES_TABLE} AS SELECT {', '.join(feature_casts('VARCHAR'))} FROM __features_df"
    )
    con.unregister("__features_df")  # the table holds the copy; let the frame go


def feature_casts(text_type: str) -> list[str]:
    """The SQL select list that gives every feature column its fixed type (integers, booleans
    defaulting to false, text with blanks as NULL); ``text_type`` is the engine's string type
    (DuckDB VARCHAR, Spark STRING), so both backends read the features alike."""
    casts = []
    for col in spec.FEATURE_COLUMNS:
        if col in spec.INTEGER_COLUMNS:
            casts.append(f"TRY_CAST({col} AS BIGINT) AS {col}")
        elif col in spec.BOOLEAN_COLUMNS:
            casts.append(f"coalesce(TRY_CAST({col} AS BOOLEAN), false) AS {col}")
        else:
            casts.append(f"NULLIF(TRIM(CAST({col} AS {text_type})), '') AS {col}")
    return casts


def _linker(con: duckdb.DuckDBPyConnection, settings: Mapping[str, Any]):
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(FEATURES_TABLE)
    # log_level=None: Splink does not reconfigure our logging.
    return db_api, Linker(sdf, dict(settings), log_level=None)


def _splink_version() -> str:
    import splink

    return getattr(splink, "__version__", "unknown")


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def train(
    features: pd.DataFrame,
    *,
    blocking_rules: Iterable[BlockingRule] = DEFAULT_BLOCKING_RULES,
    block_size_cap: int = DEFAULT_BLOCK_SIZE_CAP,
    u_max_pairs: float = 5e6,
    em_max_pairs: float | None = 5e6,
    min_em_pairs: int = 20,
    seed: int = 42,
    model_version: str | None = None,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
) -> TrainedModel:
    """Estimate the model's parameters from a frame of match features.

    * u: random sampling of up to ``u_max_pairs`` pairs (seeded: reproducible).
    * prior: deterministic rules (same NI + DOB, same NHS + DOB, same full name + DOB)
      with an assumed recall of 0.8; left at its default if they find nothing.
    * m: EM on each block of ``model_settings.EM_TRAINING_BLOCKS`` that yields at
      least ``min_em_pairs`` pairs (address-only blocks are never used); the
      residence, phone and twin-pattern parameters are fixed, not trained. A level whose m
      EM drives below what Splink accepts (clean data: the level is never seen among
      matches) is pinned at its fallback m and the block rerun (see :func:`_em_guarded`);
      ``training["em_underflow_pinned"]`` lists those levels.
    * afterwards every unobserved, non-finite or over-confident parameter is filled or
      floored (``model_settings.apply_judgement``; listed in
      ``training["judgement_adjustments"]``) and the result checked before it is returned.
    """
    started = datetime.now(timezone.utc)
    con = open_duckdb(memory_limit=memory_limit, temp_directory=temp_directory)
    try:
        _load_features(con, features)
        n_records = int(con.execute(f"SELECT count(*) FROM {FEATURES_TABLE}").fetchall()[0][0])
        if n_records < 2:
            raise FeatureFrameError(f"cannot train on {n_records} record(s); need many")
        _, linker = _linker(con, spec.settings_dict())
        summary: dict[str, Any] = {"records": n_records, "seed": seed}

        try:
            linker.training.estimate_probability_two_random_records_match(
                list(spec.DETERMINISTIC_RULES), recall=spec.DETERMINISTIC_RECALL
            )
            summary["prior_source"] = "deterministic rules"
        except Exception as exc:  # Splink raises when the rules find no pair
            logger.warning(
                "prior not estimated from deterministic rules (%s); using the default",
                type(exc).__name__,
            )
            summary["prior_source"] = "default"

        linker.training.estimate_u_using_random_sampling(
            max_pairs=u_max_pairs, seed=seed
        )

        em_used, em_skipped = [], []
        pinned: list[dict[str, Any]] = []
        for name, keys in spec.EM_TRAINING_BLOCKS:
            rule = BlockingRule(name, keys)
            counted = count_comparisons(
                con, [rule], block_size_cap=10**12
            ).rules[0].comparisons
            if counted < min_em_pairs:
                em_skipped.append({"rule": name, "pairs": counted})
                continue
            sql = " AND ".join(f"l.{k} = r.{k}" for k in keys)
            trained = _em_guarded(
                linker,
                sql,
                block=name,
                max_pairs=em_max_pairs if em_max_pairs and counted > em_max_pairs else None,
                pinned=pinned,
            )
            if trained:
                em_used.append({"rule": name, "pairs": counted})
            else:
                em_skipped.append({"rule": name, "pairs": counted, "reason": "underflow"})
        summary["em_blocks_used"] = em_used
        summary["em_blocks_skipped"] = em_skipped
        summary["em_underflow_pinned"] = pinned
        if not em_used:
            logger.warning(
                "no EM training block had %d pairs; m probabilities are defaults",
                min_em_pairs,
            )

        settings = linker.misc.save_model_to_json()
        summary["untrained_levels"] = _untrained_levels(settings)
        summary["judgement_adjustments"] = spec.apply_judgement(settings)
        _check_parameters(settings)
        if pinned or any(s.get("reason") == "underflow" for s in em_skipped):
            logger.warning(
                "EM drove %d parameter(s) below what Splink accepts; pinned at fallback "
                "values: %s; EM blocks given up: %d; %d parameter(s) filled or floored after EM",
                len(pinned),
                ", ".join(f"{p['comparison']}/{p['level']}" for p in pinned) or "none",
                sum(1 for s in em_skipped if s.get("reason") == "underflow"),
                len(summary["judgement_adjustments"]),
            )
        summary["training_seconds"] = round(
            (datetime.now(timezone.utc) - started).total_seconds(), 2
        )
    finally:
        con.close()

    trained_at = started.isoformat(timespec="seconds")
    return TrainedModel(
        splink_settings=settings,
        model_version=model_version
        or f"{spec.MODEL_SPEC_VERSION}+{started.strftime('%Y%m%dT%H%M%SZ')}",
        spec_version=spec.MODEL_SPEC_VERSION,
        trained_at=trained_at,
        features=list(spec.FEATURE_COLUMNS),
        blocking_rules=list(blocking_rules),
        block_size_cap=block_size_cap,
        training=summary,
    )


#: Pinning one level per retry, an EM block is retried at most this many times.
MAX_UNDERFLOW_RETRIES = 12

#: Part of the message Splink 5 raises when an m or u falls below its minimum
#: (``splink.internals.comparison_level._validate_m_u_probability``; M_U_CLAMP_MIN 1e-300).
_UNDERFLOW_MESSAGE = "is below the minimum allowed value"


def _em_guarded(
    linker: Any,
    sql: str,
    *,
    block: str,
    max_pairs: float | None,
    pinned: list[dict[str, Any]],
) -> bool:
    """Run one EM block; when EM drives a level's m below what Splink accepts, pin that level.

    On very clean data a rare level (date of birth "within ten years" among same-name pairs)
    is never seen among matches: each EM iteration multiplies its m by a tiny factor until it
    underflows (below 1e-300), and Splink raises ValueError from inside its maximisation
    step, so no model at all comes out and a night that retrains fails. The linker's
    settings are restored to what they were before the failed block; the level is then
    fixed at its fallback m (what
    ``apply_judgement`` would have floored it to anyway, in the same order of magnitude) and
    the block is run again. Returns False if the block had to be given up (the level could
    not be named); the comparisons keep what other blocks learnt, or the fallbacks.
    """
    settings = linker._settings_obj
    for _ in range(MAX_UNDERFLOW_RETRIES):
        # Splink's EM session trims the linker's own settings while it runs (drops the
        # comparisons the block uses, swaps in a block-adjusted prior) and puts them back only
        # when it succeeds: a failed session must be undone from this copy.
        before = settings.core_model_settings.copy()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                sql, max_pairs=max_pairs
            )
            return True
        except ValueError as exc:
            settings.core_model_settings = before
            if _UNDERFLOW_MESSAGE not in str(exc):
                raise
            where = _underflowed_level(exc)
            if where is None or not _pin_level(linker, *where, pinned=pinned, block=block):
                logger.warning(
                    "EM block %r given up: a parameter underflowed and its level could not "
                    "be identified to pin it",
                    block,
                )
                return False
    logger.warning("EM block %r given up after %d underflow retries", block, MAX_UNDERFLOW_RETRIES)
    return False


def _underflowed_level(exc: BaseException) -> tuple[str, int, str] | None:
    """(comparison, comparison vector value, "m" or "u") of the level whose parameter Splink
    refused, read from the innermost traceback frame that is setting one level's m/u
    (``populate_m_u_from_lookup``: locals ``cl`` and ``output_column_name``). None if
    Splink's internals no longer look like that."""
    parameter = "u" if str(exc).lstrip().startswith("u_probability") else "m"
    found = None
    tb = exc.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        level, comparison = local.get("cl"), local.get("output_column_name")
        gamma = getattr(level, "comparison_vector_value", None)
        if isinstance(comparison, str) and isinstance(gamma, int):
            found = (comparison, gamma, parameter)
        tb = tb.tb_next
    return found


def _pin_level(
    linker: Any,
    comparison: str,
    gamma: int,
    parameter: str,
    *,
    pinned: list[dict[str, Any]],
    block: str,
) -> bool:
    """Fix one level's m (or u) at its fallback in the linker's settings, so that later EM
    leaves it alone; records it in ``pinned``. False if the level is not found or already
    pinned (pinning again would loop)."""
    for cc in linker._settings_obj.comparisons:
        if cc.output_column_name != comparison:
            continue
        for cl in cc._comparison_levels_excluding_null:
            if cl.comparison_vector_value != gamma:
                continue
            flag = f"_fix_{parameter}_probability"
            if getattr(cl, flag, None) is not False:
                return False
            label = cl.label_for_charts
            is_else = cl.sql_condition.strip().upper() == "ELSE"
            value = (
                spec.m_fallback(comparison, label, is_else) if parameter == "m" else spec.U_FLOOR
            )
            setattr(cl, f"{parameter}_probability", value)
            setattr(cl, flag, True)
            pinned.append(
                {
                    "comparison": comparison,
                    "level": label,
                    "parameter": parameter,
                    "value": value,
                    "block": block,
                }
            )
            return True
    return False


def _check_parameters(settings: Mapping[str, Any]) -> None:
    """Every non-null level's m and u is a finite number Splink accepts, or training fails
    here with the level named (rather than at the next night's predict)."""
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            for param in ("m_probability", "u_probability"):
                value = level.get(param)
                if not (
                    isinstance(value, (int, float))
                    and math.isfinite(value)
                    and 1e-300 <= value <= 1.0 + 1e-9
                ):
                    raise ValueError(
                        f"training left {param} of {comparison['output_column_name']}: "
                        f"{level.get('label_for_charts', level['sql_condition'])} at {value!r}; "
                        "expected a probability Splink accepts. This is a bug in "
                        "model_settings.apply_judgement."
                    )


def _untrained_levels(settings: Mapping[str, Any]) -> list[str]:
    """Levels whose m or u could not be estimated (not observed in the data)."""
    out = []
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            for param in ("m_probability", "u_probability"):
                if not isinstance(level.get(param), (int, float)):
                    out.append(
                        f"{comparison['output_column_name']}: "
                        f"{level.get('label_for_charts', level['sql_condition'])} ({param})"
                    )
    return out


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


@dataclass
class ScoringResult:
    pairs: pd.DataFrame
    blocking: BlockingReport


def score_pairs(
    model: TrainedModel,
    features: pd.DataFrame,
    *,
    new_ids: set[int] | None = None,
    threshold_weight: float | None,
    block_size_cap: int | None = None,
    max_comparisons: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
    blocked_pairs: pd.DataFrame | None = None,
    term_frequencies: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Score candidate pairs and return those with ``match_weight >= threshold_weight``
    (every blocked pair when it is None).

    Columns: record_id_l < record_id_r, match_weight, match_probability,
    blocking_rule, and per comparison ``gamma_<field>`` (the level reached),
    ``mw_<field>`` (its weight in bits) and, for fields with term-frequency
    adjustment, ``mw_tf_adj_<field>``. With ``new_ids``, only pairs with at least
    one side in ``new_ids`` are blocked and scored; ``features`` must still hold the
    whole index (the other sides, and the term frequencies).

    The blocking report (comparisons per rule, oversized blocks) is attached as
    ``result.attrs["blocking"]``.

    An incremental night against the stored index (:mod:`joinedup.mci.features`) passes
    ``blocked_pairs`` (the pairs the stored block keys found: match_key, join_key_l,
    join_key_r) and ``term_frequencies`` (column -> Splink tf table counted over the whole
    index); ``features`` then holds only the records those pairs touch.
    """
    result = score_pairs_with_report(
        model,
        features,
        new_ids=new_ids,
        threshold_weight=threshold_weight,
        block_size_cap=block_size_cap,
        max_comparisons=max_comparisons,
        memory_limit=memory_limit,
        temp_directory=temp_directory,
        blocked_pairs=blocked_pairs,
        term_frequencies=term_frequencies,
    )
    result.pairs.attrs["blocking"] = result.blocking
    return result.pairs


def score_pairs_with_report(
    model: TrainedModel,
    features: pd.DataFrame,
    *,
    new_ids: set[int] | None = None,
    threshold_weight: float | None,
    block_size_cap: int | None = None,
    max_comparisons: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
    explicit_pairs: list[tuple[int, int]] | None = None,
    blocked_pairs: pd.DataFrame | None = None,
    term_frequencies: Mapping[str, pd.DataFrame] | None = None,
) -> ScoringResult:
    """As :func:`score_pairs`, returning the blocking report beside the pairs.

    ``explicit_pairs`` scores exactly those (record_id, record_id) pairs instead
    of blocking (used to explain a pair no rule found).
    """
    cap = block_size_cap or model.block_size_cap
    con = open_duckdb(memory_limit=memory_limit, temp_directory=temp_directory)
    try:
        _load_features(con, features)
        if blocked_pairs is not None:
            report = _register_blocked_pairs(con, blocked_pairs, cap)
        elif explicit_pairs is not None:
            report = _register_explicit_pairs(con, explicit_pairs, cap)
        else:
            report = generate_pairs(
                con,
                model.blocking_rules,
                block_size_cap=cap,
                new_ids=new_ids,
                max_comparisons=max_comparisons,
            )
        db_api, linker = _linker(con, model.splink_settings)
        if report.distinct_pairs == 0:
            return ScoringResult(_empty_pairs(model), report)
        for column, table in (term_frequencies or {}).items():
            tf_sdf = db_api.register(table, table_name=f"__tf_lookup_{column}")
            linker.table_management.register_term_frequency_lookup(tf_sdf, column)
        pairs_sdf = db_api.register(PAIRS_TABLE)
        linker.table_management.register_blocked_pairs_for_predict(pairs_sdf)
        predictions = linker.inference.predict(
            threshold_match_weight=threshold_weight, warning_mode="never"
        )
        frame = _kept_predictions(con, predictions.physical_name, model)
    finally:
        con.close()
    return ScoringResult(_tidy_predictions(model, frame), report)


def _kept_predictions(con: duckdb.DuckDBPyConnection, table: str, model: TrainedModel) -> pd.DataFrame:
    """The columns of Splink's prediction table that the scored pairs keep, read from
    DuckDB. The table also holds both sides' compared values and Splink's intermediate
    columns (the settings retain them for Splink's charts): read whole into pandas, they
    were the merge's peak (a first build of 100,000 residents with record history, 297,705
    pairs: 2,052 MB, against 1,578 MB reading these columns only; the same pairs, same
    order)."""
    present = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
    wanted = ["record_id_l", "record_id_r", "match_weight", "match_probability", "match_key",
              *(c for c in _evidence_columns(model) if c in present)]
    return con.execute(f"SELECT {', '.join(wanted)} FROM {table}").df()


def _register_explicit_pairs(
    con: duckdb.DuckDBPyConnection, pairs: list[tuple[int, int]], cap: int
) -> BlockingReport:
    ordered = sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b})
    frame = pd.DataFrame(
        {
            "match_key": pd.Series(["-1"] * len(ordered), dtype="object"),
            "join_key_l": pd.Series([p[0] for p in ordered], dtype="int64"),
            "join_key_r": pd.Series([p[1] for p in ordered], dtype="int64"),
        }
    )
    con.register("__explicit_pairs", frame)
    con.execute(f"DROP TABLE IF EXISTS {PAIRS_TABLE}")
    con.execute(
        f"CREATE TABLE {PAIRS_TABLE} AS SELECT p.match_key, p.join_key_l, p.join_key_r "
        f"FROM __explicit_pairs p "
        f"SEMI JOIN {FEATURES_TABLE} f ON f.record_id = p.join_key_l "
    )
    con.unregister("__explicit_pairs")
    n = int(con.execute(f"SELECT count(*) FROM {PAIRS_TABLE}").fetchall()[0][0])
    return BlockingReport(block_size_cap=cap, distinct_pairs=n)


def _register_blocked_pairs(
    con: duckdb.DuckDBPyConnection, pairs: pd.DataFrame, cap: int
) -> BlockingReport:
    """Pairs blocked elsewhere (the stored index), in the layout generate_pairs makes."""
    frame = pd.DataFrame(
        {
            "match_key": pairs["match_key"].astype(str).astype(object),
            "join_key_l": pairs["join_key_l"].astype("int64"),
            "join_key_r": pairs["join_key_r"].astype("int64"),
        }
    )
    con.register("__blocked_pairs", frame)
    con.execute(f"DROP TABLE IF EXISTS {PAIRS_TABLE}")
    con.execute(
        f"CREATE TABLE {PAIRS_TABLE} AS SELECT CAST(match_key AS VARCHAR) AS match_key, "
        f"join_key_l, join_key_r FROM __blocked_pairs"
    )
    con.unregister("__blocked_pairs")
    return BlockingReport(block_size_cap=cap, distinct_pairs=len(frame))


def _evidence_columns(model: TrainedModel) -> list[str]:
    cols = []
    for comparison in model.splink_settings["comparisons"]:
        name = comparison["output_column_name"]
        cols += [f"gamma_{name}", f"mw_{name}"]
        if any(l.get("tf_adjustment_column") for l in comparison["comparison_levels"]):
            cols.append(f"mw_tf_adj_{name}")
    return cols


def _empty_pairs(model: TrainedModel) -> pd.DataFrame:
    cols = [
        "record_id_l",
        "record_id_r",
        "match_weight",
        "match_probability",
        "blocking_rule",
        *_evidence_columns(model),
    ]
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})


def _tidy_predictions(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    rule_names = {str(i): r.name for i, r in enumerate(model.blocking_rules)}
    rule_names["-1"] = "explicit pair"
    out = pd.DataFrame(
        {
            "record_id_l": frame["record_id_l"].astype("int64"),
            "record_id_r": frame["record_id_r"].astype("int64"),
            "match_weight": frame["match_weight"].astype("float64"),
            "match_probability": frame["match_probability"].astype("float64"),
            "blocking_rule": frame["match_key"].astype(str).map(rule_names),
        }
    )
    for col in _evidence_columns(model):
        out[col] = frame[col] if col in frame.columns else 0.0
    return out.sort_values(["record_id_l", "record_id_r"], ignore_index=True)


# --------------------------------------------------------------------------
# Explanation for stewards
# --------------------------------------------------------------------------


def _level_labels(comparison: Mapping[str, Any]) -> dict[int, str]:
    """gamma value -> readable label, numbered as Splink numbers levels."""
    levels = comparison["comparison_levels"]
    non_null = [l for l in levels if not l.get("is_null_level")]
    labels: dict[int, str] = {}
    counter = len(non_null) - 1
    for level in levels:
        label = level.get("label_for_charts") or level["sql_condition"]
        if level.get("is_null_level"):
            labels[-1] = label
        else:
            labels[counter] = label
            counter -= 1
    return labels


def field_evidence(
    model: TrainedModel, scored_pair: Mapping[str, Any]
) -> list[tuple[str, str, float, float]]:
    """(field, level reached in words, match weight in bits incl. tf, tf adjustment) per
    comparison of one scored pair: :func:`explain_pair`'s field rows, without a frame."""
    labels = model.__dict__.get("_level_labels")
    if labels is None:
        labels = [
            (c["output_column_name"], _level_labels(c))
            for c in model.splink_settings["comparisons"]
        ]
        model.__dict__["_level_labels"] = labels
    out = []
    for name, by_gamma in labels:
        gamma = int(scored_pair[f"gamma_{name}"])
        tf_adj = float(scored_pair.get(f"mw_tf_adj_{name}", 0.0) or 0.0)
        weight = float(scored_pair[f"mw_{name}"]) + tf_adj
        out.append((name, by_gamma.get(gamma, f"level {gamma}"), weight, tf_adj))
    return out


def explain_pair(model: TrainedModel, scored_pair: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
    """Per-field evidence for one scored pair (a row of :func:`score_pairs`).

    One row per field plus the prior and the total: ``field``, ``level`` (what the
    two records have in common, in words), ``match_weight`` (bits; positive is for
    the same person), ``bayes_factor`` (2**match_weight) and ``tf_adjustment`` (the
    part of the weight due to how common the value is). Rows sum to the pair's
    match weight, like Splink's waterfall chart.
    """
    rows = [
        {
            "field": "prior",
            "level": "Probability two random records are the same person",
            "match_weight": model.prior_match_weight,
            "tf_adjustment": 0.0,
        }
    ]
    for comparison in model.splink_settings["comparisons"]:
        name = comparison["output_column_name"]
        gamma = int(scored_pair[f"gamma_{name}"])
        tf_adj = float(scored_pair.get(f"mw_tf_adj_{name}", 0.0) or 0.0)
        weight = float(scored_pair[f"mw_{name}"]) + tf_adj
        rows.append(
            {
                "field": name,
                "level": _level_labels(comparison).get(gamma, f"level {gamma}"),
                "match_weight": weight,
                "tf_adjustment": tf_adj,
            }
        )
    frame = pd.DataFrame(rows)
    total = float(frame["match_weight"].sum())
    frame = pd.concat(
        [
            frame,
            pd.DataFrame(
                [
                    {
                        "field": "total",
                        "level": f"match probability {spec.weight_to_probability(total):.6f}",
                        "match_weight": total,
                        "tf_adjustment": float(frame["tf_adjustment"].sum()),
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    frame["bayes_factor"] = [2.0 ** min(w, 1000.0) for w in frame["match_weight"]]
    return frame[["field", "level", "match_weight", "bayes_factor", "tf_adjustment"]]


def explain_records(
    model: TrainedModel,
    features: pd.DataFrame,
    record_id_l: int,
    record_id_r: int,
    **scoring_options: Any,
) -> pd.DataFrame:
    """Score one pair directly (blocked or not) and explain it; ``features`` should
    hold the whole index so term frequencies are those the night used."""
    result = score_pairs_with_report(
        model,
        features,
        threshold_weight=None,
        explicit_pairs=[(record_id_l, record_id_r)],
        **scoring_options,
    )
    if result.pairs.empty:
        raise KeyError(
            f"records {record_id_l} and {record_id_r} are not both in the features"
        )
    return explain_pair(model, result.pairs.iloc[0])
