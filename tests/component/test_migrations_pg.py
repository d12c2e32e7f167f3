"""The migrations on a real PostgreSQL (and SQLite): a fresh database matches the models,
and a database made by create_all before migrations is adopted without losing a row.

Runs on PostgreSQL when JOINEDUP_TEST_PG_URL (set by .ci/run) or a local server answers; the
``mci_db`` fixture gives each test its own new database.
"""
from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from joinedup.mci import schema


def test_fresh_database_matches_the_models(mci_db: str) -> None:
    assert schema.upgrade(mci_db) == schema.head_revision()
    diffs = schema.differences(mci_db)
    assert diffs == [], (
        "the models and the migrations differ on "
        + create_engine(mci_db).dialect.name
        + ": "
        + "; ".join(schema.describe_difference(d) for d in diffs)
        + ". Add a revision: joinedup mci db revision -m '...' (joinedup/mci/migrations/README.md)"
    )


def test_a_create_all_database_is_adopted(mci_db: str) -> None:
    engine = create_engine(mci_db)
    try:
        schema.import_all_models().create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO persons (master_id, seq, status, golden, golden_sources, "
                    "created_run_id, created_at, updated_at) VALUES ('M000001', 1, 'active', "
                    "'{}', '{}', 'night-1', '2024-01-01', '2024-01-01')"
                )
            )
        assert schema.current(engine) is None
        assert schema.upgrade(engine) == schema.head_revision()
        assert schema.VERSION_TABLE in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM persons")).scalar_one() == 1
        assert schema.differences(engine) == []
    finally:
        engine.dispose()


def test_concurrent_first_upgrades_of_one_database_both_succeed(mci_db: str) -> None:
    """Airflow runs source tasks in parallel processes; each may be the first on a new database.
    Two processes upgrade the same empty database at once: both end at head, no error."""
    import subprocess
    import sys

    code = "import sys; from joinedup.mci import schema; print(schema.upgrade(sys.argv[1]))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, mci_db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outcomes = [p.communicate(timeout=120) for p in procs]
    for (out, err), proc in zip(outcomes, procs):
        assert proc.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == schema.head_revision()
    assert schema.differences(mci_db) == []
