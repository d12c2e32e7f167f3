"""Alembic migrations of the MCI database, shipped inside the package.

Nothing here needs an ``alembic.ini``: :mod:`joinedup.mci.schema` configures Alembic in code
and every entry point (the pipeline, ``joinedup serve``, ``joinedup api``, the API app) calls
``joinedup.mci.schema.upgrade`` once per process and database. See README.md beside this file
for how to add a table or a column.
"""
