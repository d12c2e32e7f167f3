"""The ``joinedup`` command: the front door for everything."""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Annotated

import typer

from joinedup.cli.adapter import adapter_app
from joinedup.cli.airflow_cmd import airflow
from joinedup.cli.api import api_app
from joinedup.cli.link import link
from joinedup.cli.mci import mci_app
from joinedup.cli.privacy import erase, retention_app
from joinedup.cli.quarantine import quarantine_app
from joinedup.cli.serve import serve, users_app
from joinedup.cli.simulate import evaluate_command, simulate_app
from joinedup.cli.train import train

app = typer.Typer(no_args_is_help=True, add_completion=False, help="JoinedUp: council integration hub and master citizen index.")
app.add_typer(mci_app, name="mci")
app.add_typer(simulate_app, name="simulate")
app.add_typer(adapter_app, name="adapter")
app.add_typer(users_app, name="users")
app.add_typer(api_app, name="api")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(retention_app, name="retention")
app.command("erase")(erase)
app.command("evaluate")(evaluate_command)
app.command("link")(link)
app.command("serve")(serve)
app.command("airflow", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(airflow)
mci_app.command("train")(train)


def _sources(only: list[str] | None) -> list[str]:
    from joinedup.adapters import load_sources

    names = [c.name for c in load_sources()]
    if only:
        unknown = [s for s in only if s not in names]
        if unknown:
            raise typer.BadParameter(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(names)}")
        return only
    return names


@app.command()
def run(
    direct: Annotated[bool, typer.Option(help="Run the stages in this process instead of through Airflow.")] = False,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Only these sources (repeatable).")] = None,
    demo: Annotated[bool, typer.Option(help="Serve the synthetic council's systems on loopback for the run.")] = True,
    residents: Annotated[int, typer.Option(min=100, max=200_000, help="Synthetic council size.")] = 10_000,
    council_night: Annotated[int, typer.Option(min=0, help="Which night of the synthetic council to serve.")] = 0,
    night: Annotated[str | None, typer.Option(help="Night id (default: a new one).")] = None,
    history: Annotated[str, typer.Option(help="The synthetic council's record history: 'none' (default, "
                                              "~1.0 record per resident) or 'full' (~2.5).")] = "none",
) -> None:
    """The nightly sync: every source, then the merge; prints a summary and the report path."""
    import contextlib

    from joinedup.night import print_summary, run_night

    started = time.monotonic()
    council = contextlib.nullcontext(None)
    if demo:
        from joinedup.cli.simulate import history_profile
        from joinedup.demo import DEFAULT_SEED, synthetic_council

        typer.echo(f"Synthetic council: {residents:,} residents, night {council_night}, record history "
                   f"{history}, systems on 127.0.0.1")
        council = synthetic_council(residents, DEFAULT_SEED, council_night, history=history_profile(history))
    with council:
        outcome = run_night(_sources(source), night=night, via_airflow=not direct)
    print_summary(outcome, seconds=time.monotonic() - started)
    if demo:
        from joinedup.cli.simulate import evaluate_index

        result, systems = evaluate_index()
        typer.echo(f"\nAgainst the synthetic council's truth ({', '.join(systems)}):")
        typer.echo(result.summary())
    if outcome.failed_sources or outcome.merge_failed:
        raise typer.Exit(1)


@app.command()
def sync(name: str, night: Annotated[str | None, typer.Option()] = None) -> None:
    """One source's stages (land, check, stage) in this process."""
    from joinedup.pipeline import new_run_id, sync_source

    typer.echo(json.dumps(sync_source(_sources([name])[0], night or new_run_id()), indent=2))


@app.command()
def replay(
    name: str,
    landed: Annotated[list[str] | None, typer.Option("--landed", help="Only batches landed by this night (repeatable).")] = None,
    night: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Re-run mapping, the quality gate and staging from landed data, without the source."""
    from joinedup.pipeline import new_run_id, replay as do_replay

    typer.echo(json.dumps(do_replay(_sources([name])[0], night or new_run_id("replay"), nights=landed), indent=2))


@app.command()
def merge(night: Annotated[str | None, typer.Option()] = None) -> None:
    """Match, cluster, golden records and the report, in this process."""
    from joinedup.pipeline import merge as do_merge, new_run_id

    typer.echo(json.dumps(do_merge(night or new_run_id()), indent=2))


# Errors that are the operator's news, not a bug: one clear line and exit status 1 instead of a
# traceback. (module, class): checked only when the module is loaded, so nothing heavy is imported.
OPERATOR_ERRORS = (
    ("joinedup.locks", "RunLocked"),
    ("joinedup.adapters.base", "SourceError"),
    ("joinedup.quality.gate", "QualityGateFailed"),
    ("joinedup.configfile", "ConfigError"),
    ("joinedup.mapping.engine", "SchemaDriftError"),
)


def operator_error(exc: BaseException) -> str | None:
    """The one line to print for an expected failure, or None for a bug (keep its traceback)."""
    for module, name in OPERATOR_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return str(exc)
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.OperationalError):
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
        return f"the MCI database could not be used ({first}); check it is running and JOINEDUP_DB_URL"
    return None


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - sorted into operator news and bugs just below
        message = operator_error(exc)
        if message is None:
            raise
        print(f"joinedup: {message}", file=sys.stderr)
        sys.exit(1)
