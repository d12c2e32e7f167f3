"""The same person-matching model on Splink's Spark backend, for a council that outgrows one machine.

Why: the DuckDB matcher (:mod:`joinedup.mci.probabilistic`) runs on one machine. Splink also
runs on Spark, so a council with tens of millions of records can score on a cluster with the
*same* model: the comparisons, the blocking rules with their block-size cap, and the trained
parameters read from the saved model file. Nothing is retrained here.

What has to be translated: the model's SQL is written for DuckDB (see
:mod:`joinedup.mci.model_settings`). Each level's condition is rewritten to Spark SQL with
sqlglot, plus two fixes sqlglot's DuckDB -> Spark translation gets wrong: DuckDB's
``list_has_any`` becomes ``arrays_overlap`` (sqlglot writes ``&&``, which Spark lacks), and
``jaro_winkler_similarity`` becomes the ``jaro_winkler`` UDF Splink ships in its similarity JAR.
Blocking is ours (not Splink's): the same rules and cap as :func:`joinedup.mci.blocking
.generate_pairs`, in Spark SQL, and the pairs are handed to Splink with
``register_blocked_pairs_for_predict`` exactly as the DuckDB path does.

Needs ``pyspark`` (the ``test`` extra) and Java 17. :func:`local_spark_session` makes a small
local session for tests and trials; in production pass your cluster's session.
"""
from __future__ import annotations

import copy
import logging
import shutil
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlglot
from sqlglot import exp

from joinedup.mci import model_settings as spec
from joinedup.mci.blocking import BlockingRule
from joinedup.mci.probabilistic import (
    TrainedModel,
    feature_casts,
    _check_features,
    _empty_pairs,
    _tidy_predictions,
)

if TYPE_CHECKING:  # pyspark is optional: imported only when Spark is used
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

FEATURES_VIEW = "joinedup_match_features"
PAIRS_VIEW = "joinedup_candidate_pairs"


class SparkUnavailableError(RuntimeError):
    """pyspark or Java is missing, so Spark cannot start."""


def java_problem() -> str | None:
    """Why Spark cannot start here (no Java, no pyspark), or None when it can."""
    import os

    java_home = os.environ.get("JAVA_HOME")
    java = shutil.which("java") or (java_home and os.path.join(java_home, "bin", "java"))
    if not java or not os.path.exists(java):
        return "Java not found: install a JDK 17 (Debian: openjdk-17-jre-headless) or set JAVA_HOME"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install 'joinedup[test]' (or pyspark>=3.5)"
    return None


def local_spark_session(
    *, cores: int = 1, shuffle_partitions: int = 1, driver_memory: str = "1g"
) -> "SparkSession":
    """A small local Spark session with Splink's similarity JAR, for tests and trials.

    One core and one shuffle partition: on a few thousand records Spark's overhead is in
    the scheduling of many small tasks, not the work.
    """
    problem = java_problem()
    if problem:
        raise SparkUnavailableError(problem)
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    session = (
        SparkSession.builder.master(f"local[{int(cores)}]")
        .appName("joinedup-splink")
        .config("spark.sql.shuffle.partitions", str(int(shuffle_partitions)))
        .config("spark.default.parallelism", str(int(shuffle_partitions)))
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        # a short-lived local JVM: the quick JIT tier and a serial collector start faster
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


# --------------------------------------------------------------------------
# Settings: DuckDB SQL -> Spark SQL
# --------------------------------------------------------------------------


def _to_spark_function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.ArrayOverlaps):  # DuckDB list_has_any; sqlglot would write &&
        return exp.Anonymous(this="arrays_overlap", expressions=[node.this, node.expression])
    if isinstance(node, exp.JarowinklerSimilarity):  # Splink's JAR registers jaro_winkler
        return exp.Anonymous(this="jaro_winkler", expressions=[node.this, node.expression])
    return node


def to_spark_sql(condition: str) -> str:
    """One comparison-level condition, from DuckDB SQL to Spark SQL."""
    if condition.strip().upper() == "ELSE":
        return condition
    tree = sqlglot.parse_one(condition, read="duckdb")
    return tree.transform(_to_spark_function).sql(dialect="spark")


def spark_settings(model: TrainedModel) -> dict[str, Any]:
    """The model's Splink settings (trained parameters included) in Spark's SQL dialect."""
    settings = copy.deepcopy(model.splink_settings)
    settings["sql_dialect"] = "spark"
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            level["sql_condition"] = to_spark_sql(level["sql_condition"])
    settings["blocking_rules_to_generate_predictions"] = []
    return settings


# --------------------------------------------------------------------------
# Features and blocking on Spark
# --------------------------------------------------------------------------


def _register_features(spark: "SparkSession", records: "pd.DataFrame | SparkDataFrame") -> None:
    """The match features as a Spark view, typed as the DuckDB path types them."""
    if isinstance(records, pd.DataFrame):
        _check_features(records)
        frame = records[list(spec.FEATURE_COLUMNS)].astype(object).where(records.notna(), None)
        schema = ", ".join(
            f"{c} {'BIGINT' if c in spec.INTEGER_COLUMNS else 'BOOLEAN' if c in spec.BOOLEAN_COLUMNS else 'STRING'}"
            for c in spec.FEATURE_COLUMNS
        )
        source = spark.createDataFrame(
            [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False)], schema=schema
        )
    else:
        missing = [c for c in spec.FEATURE_COLUMNS if c not in records.columns]
        if missing:
            raise ValueError(f"the Spark frame of match features is missing columns {missing}")
        source = records
    source.createOrReplaceTempView("__joinedup_raw_features")
    spark.sql(f"SELECT {', '.join(feature_casts('STRING'))} FROM __joinedup_raw_features").createOrReplaceTempView(
        FEATURES_VIEW
    )


def _plain(value: Any) -> Any:
    """numpy scalars -> Python values, for Spark's row conversion."""
    return value.item() if hasattr(value, "item") else value


def _keyed_sql(rule: BlockingRule, index: int) -> str:
    """(rule index, one text key, record_id) for every record the rule can block.

    The rule's key expressions are joined into one text key with a separator no value
    holds, so all rules share one window and one self-join below instead of one each.
    """
    key_text = ", ".join(f"CAST({k} AS STRING)" for k in rule.key_names)
    return (
        f"SELECT {index} AS rule_index, concat_ws('\\u001f', {key_text}) AS block_key, record_id "
        f"FROM ({rule.keyed_select_sql(FEATURES_VIEW)}) keyed_{index}"
    )


def candidate_pairs(
    spark: "SparkSession", rules: list[BlockingRule], block_size_cap: int
) -> "SparkDataFrame":
    """Distinct candidate pairs, as :func:`joinedup.mci.blocking.generate_pairs` makes them:
    the same rules, blocks above the cap skipped, each pair credited to the first rule that
    finds it. Columns match_key (rule index as text), join_key_l < join_key_r."""
    keyed = " UNION ALL ".join(_keyed_sql(rule, i) for i, rule in enumerate(rules))
    spark.sql(
        f"""
        SELECT rule_index, block_key, record_id FROM (
            SELECT *, count(*) OVER (PARTITION BY rule_index, block_key) AS block_n
            FROM ({keyed}) all_keys
        ) WHERE block_n BETWEEN 2 AND {int(block_size_cap)}
        """
    ).createOrReplaceTempView("__joinedup_blocks")
    return spark.sql(
        """
        SELECT CAST(min(a.rule_index) AS STRING) AS match_key,
               a.record_id AS join_key_l, b.record_id AS join_key_r
        FROM __joinedup_blocks a
        JOIN __joinedup_blocks b
          ON a.rule_index = b.rule_index AND a.block_key = b.block_key
         AND a.record_id < b.record_id
        GROUP BY a.record_id, b.record_id
        """
    )


# --------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------


def predict_with_spark(
    model: TrainedModel,
    records_frame: "pd.DataFrame | SparkDataFrame",
    spark: "SparkSession",
    *,
    threshold_weight: float | None = None,
    block_size_cap: int | None = None,
) -> pd.DataFrame:
    """Score candidate pairs on Spark with the saved model; same columns as
    :func:`joinedup.mci.probabilistic.score_pairs` (record_id_l < record_id_r, match_weight,
    match_probability, blocking_rule, gamma_/mw_ evidence per field).

    ``records_frame``: match features (the output of ``standardise()``), as pandas or as a
    Spark DataFrame with the same columns. The pairs come back to the driver as pandas: keep
    ``threshold_weight`` high enough on a large index, or write ``candidate_pairs`` and the
    predictions to storage instead.
    """
    from splink import Linker
    from splink.backends.spark import SparkAPI

    cap = block_size_cap or model.block_size_cap
    _register_features(spark, records_frame)
    pairs = candidate_pairs(spark, list(model.blocking_rules), cap)
    pairs.createOrReplaceTempView(PAIRS_VIEW)
    n_pairs = pairs.count()
    logger.info("Spark blocking produced %d candidate pairs", n_pairs)
    if n_pairs == 0:
        return _empty_pairs(model)
    db_api = SparkAPI(
        spark_session=spark,
        break_lineage_method="persist",
        num_partitions_on_repartition=int(spark.conf.get("spark.sql.shuffle.partitions")),
    )
    features_sdf = db_api.register(FEATURES_VIEW)
    # log_level=None: Splink does not reconfigure our logging.
    linker = Linker(features_sdf, spark_settings(model), log_level=None)
    pairs_sdf = db_api.register(PAIRS_VIEW)
    linker.table_management.register_blocked_pairs_for_predict(pairs_sdf)
    predictions = linker.inference.predict(
        threshold_match_weight=threshold_weight, warning_mode="never"
    )
    frame = predictions.as_pandas_dataframe()
    return _tidy_predictions(model, frame)
