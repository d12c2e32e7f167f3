"""One Alembic revision per file; see ../README.md."""
