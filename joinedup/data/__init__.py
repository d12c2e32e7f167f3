"""Reference data files shipped with the engine (name variants)."""
