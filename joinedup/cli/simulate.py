"""``joinedup simulate ...`` and ``joinedup evaluate``: the synthetic council and its truth."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from joinedup.demo import DEFAULT_RESIDENTS, DEFAULT_SEED

simulate_app = typer.Typer(no_args_is_help=True, help="The synthetic council: generate it, serve its systems.")

HISTORY_HELP = ("Record history the systems keep from before night 0: 'none' (default, about 1.0 "
                "record per resident) or 'full' (closed accounts, ended tenancies, leavers, closed "
                "cases, people who left or died: about 2.5 records per resident).")


def history_profile(profile: str):  # noqa: ANN202 - a RecordHistory
    from joinedup.simulators.history import RecordHistory

    try:
        return RecordHistory.named(profile)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--history") from None


@simulate_app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder for <system>.jsonl, truth.csv, twins.csv.")] = Path("var/council/generated"),
    residents: Annotated[int, typer.Option(min=1, max=2_000_000)] = DEFAULT_RESIDENTS,
    seed: Annotated[int, typer.Option()] = DEFAULT_SEED,
    night: Annotated[int, typer.Option(min=0, help="0 = the first night; k = after k nights of changes.")] = 0,
    history: Annotated[str, typer.Option(help=HISTORY_HELP)] = "none",
) -> None:
    """Write the council's records (streaming: bounded memory even at 1,000,000 residents)."""
    from joinedup.simulators.council import write_council

    manifest = write_council(out, residents, seed, night=night, history=history_profile(history))
    typer.echo(json.dumps(manifest, indent=2, default=str))


@simulate_app.command()
def serve(
    residents: Annotated[int, typer.Option(min=1, max=200_000)] = DEFAULT_RESIDENTS,
    seed: Annotated[int, typer.Option()] = DEFAULT_SEED,
    night: Annotated[int, typer.Option(min=0)] = 0,
    history: Annotated[str, typer.Option(help=HISTORY_HELP)] = "none",
) -> None:
    """Serve the four systems on loopback until Ctrl-C; prints the connection variables."""
    from joinedup.paths import var_dir
    from joinedup.simulators.council import build_council
    from joinedup.simulators.servers import serve_forever

    council = build_council(residents, seed, night=night, history=history_profile(history))
    serve_forever(council.records, var_dir() / "drops" / "council")


@simulate_app.command()
def connections(
    out: Annotated[Path, typer.Option(help="The file to write (JSON, readable by its owner only).")] = Path("var/airflow_connections.json"),
    load: Annotated[bool, typer.Option("--import", help="Also run `airflow connections import --overwrite` on it.")] = False,
) -> None:
    """Write the JOINEDUP_CONN_* variables that are set (e.g. the export lines `joinedup
    simulate serve` prints) as a file for `airflow connections import`. `make run` writes the
    same file for its own council to var/council/airflow_connections.json."""
    from joinedup.adapters.credentials import connections_from_environment, write_airflow_connections

    uris = connections_from_environment()
    if not uris:
        raise typer.BadParameter("no JOINEDUP_CONN_* variable is set: paste the export lines that "
                                 "`joinedup simulate serve` prints, then run this again")
    path = write_airflow_connections(uris, out)
    typer.echo(f"wrote {len(uris)} connection(s) to {path}: {', '.join(sorted(uris))}")
    if load:
        from joinedup.demo import import_connections_into_airflow

        import_connections_into_airflow(path)
        typer.echo("imported into Airflow (airflow connections list shows them)")


def evaluate_index(truth_folder: Path | None = None) -> tuple[object, list[str]]:
    """Score the MCI against the synthetic council's truth, over the systems in the index."""
    from sqlalchemy import select

    from joinedup.demo import council_dir
    from joinedup.evaluate import evaluate, read_truth, read_twins
    from joinedup.mci.store import SourceRecord, session_factory

    folder = truth_folder or council_dir()
    if not (folder / "truth.csv").exists():
        raise typer.BadParameter(f"no truth.csv in {folder}: run `make run` (or `joinedup run`) first")
    with session_factory()() as session:
        assignments = [tuple(r) for r in session.execute(
            select(SourceRecord.source_system, SourceRecord.source_key, SourceRecord.master_id))]
    systems = sorted({a[0] for a in assignments})
    truth = [t for t in read_truth(folder / "truth.csv") if t[0] in systems]
    return evaluate(assignments, truth, read_twins(folder / "twins.csv")), systems


def evaluate_command(
    truth: Annotated[Path | None, typer.Option(help="Folder with truth.csv and twins.csv (default var/council).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Precision, recall and F1 of the index against the synthetic council's ground truth."""
    result, systems = evaluate_index(truth)
    if as_json:
        typer.echo(json.dumps({**result.as_dict(), "systems": systems}, indent=2))
        return
    typer.echo(f"systems in the index: {', '.join(systems)}")
    typer.echo(result.summary())
