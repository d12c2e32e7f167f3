"""``joinedup mci train``: retrain the match model on the whole index, on demand.

Register with ``mci_app.command(name="train")(joinedup.cli.train.train)``.
"""
from __future__ import annotations

import json

import typer


def train() -> None:
    """Train the match model on every source record in the index; save a new versioned file."""
    from joinedup.mci.model_store import retrain_from_index

    try:
        figures = retrain_from_index()
    except ValueError as exc:
        typer.echo(f"joinedup mci train: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(figures, indent=2))
