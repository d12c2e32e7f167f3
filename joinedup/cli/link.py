"""``joinedup link INPUT.csv [INPUT2.csv ...] --out OUT.csv [--pairs PAIRS.csv]``.

Register with ``app.command(name="link")(joinedup.cli.link.link)``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer


def link(
    inputs: Annotated[list[Path], typer.Argument(help="Canonical person CSV files, one per source.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write source_system,source_key,master_id.")],
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Also write every decided pair here.")] = None,
    thresholds: Annotated[Path | None, typer.Option("--thresholds", help="Match thresholds YAML (default schemas/match.yaml).")] = None,
) -> None:
    """Link canonical CSV files into persons (no database; trains on the input itself)."""
    import warnings

    from joinedup.configfile import ConfigError
    from joinedup.mci.link_command import LinkInputError, link_files

    logging.getLogger("joinedup.mci.link_command").propagate = False  # warnings go through typer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome = link_files(inputs, out, pairs_path=pairs, thresholds_path=thresholds)
        except (LinkInputError, ConfigError) as exc:
            typer.echo(f"joinedup link: {exc}", err=True)
            raise typer.Exit(2) from None
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    figures = outcome.as_dict()
    figures.pop("warnings", None)
    typer.echo(json.dumps(figures, indent=2))
