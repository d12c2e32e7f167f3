"""``joinedup adapter ...``: list, check and scaffold the council's sources."""
from __future__ import annotations

from typing import Annotated

import typer

adapter_app = typer.Typer(no_args_is_help=True, help="The council's sources: list, check, scaffold.")


@adapter_app.command("list")
def list_sources() -> None:
    """Every source in adapters/ (kind, connection, schedule) and the adapter kinds available."""
    from joinedup.adapters.config import adapters_dir, load_source
    from joinedup.adapters.registry import known_kinds
    from joinedup.configfile import ConfigError

    paths = sorted(p for p in adapters_dir().glob("*.yaml") if not p.name.startswith("_"))
    broken = 0
    typer.echo(f"sources in {adapters_dir()}:")
    for path in paths:
        try:
            c = load_source(path)
        except ConfigError as exc:
            broken += 1
            typer.echo(f"  {path.stem:<14} INVALID: {exc.problems[0]}" + (f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""))
            continue
        flags = (" full-extract" if c.extract == "full" else "") + (" special-category" if c.special_category else "")
        typer.echo(f"  {c.name:<14} {c.kind:<12} connection={c.connection_id or '-':<16} schedule={c.schedule or '-'}{flags}")
    if not paths:
        typer.echo("  (none: joinedup adapter new NAME --kind KIND)")
    typer.echo(f"adapter kinds: {', '.join(known_kinds())}")
    if broken:
        raise typer.Exit(1)


@adapter_app.command("check")
def check(name: str) -> None:
    """Connect, fetch one page, map it and validate it: a readable verdict (exit 1 on FAIL)."""
    from joinedup.adapters.check import check_source

    report = check_source(name)
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(1)


@adapter_app.command("new")
def new(
    name: str,
    kind: Annotated[str, typer.Option("--kind", "-k", help="soap, rest, csv, xml or fixed_width")],
) -> None:
    """Scaffold adapters/NAME.yaml, mappings/NAME.yaml and a test (never overwrites)."""
    from joinedup.adapters.scaffold import scaffold

    try:
        written = scaffold(name, kind)
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"next: edit them, then run: joinedup adapter check {name}")
