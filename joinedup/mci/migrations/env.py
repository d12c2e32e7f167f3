"""Alembic environment for the MCI: runs on the connection joinedup.mci.schema hands over.

Alembic imports this file for every command. It never reads an alembic.ini: the connection
(or, failing that, the URL) comes from ``config.attributes`` / the main option
``sqlalchemy.url`` set by :func:`joinedup.mci.schema.alembic_config`.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from joinedup.mci.schema import import_all_models, migration_options

config = context.config
target_metadata = import_all_models()


def run_offline() -> None:
    """``--sql`` mode: write the DDL instead of running it (for a DBA to review)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        **migration_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, **migration_options())
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, **migration_options())
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
