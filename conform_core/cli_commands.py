"""The commands that conform_core itself provides: ``fit``, ``plugins``, ``data``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from .exceptions import ParameterError
from .registry import KINDS
from .validation import suggest

__all__ = ["add_core_commands"]

plugins_app = typer.Typer(
    help="List installed components, or scaffold a new third-party plugin.",
    invoke_without_command=True, no_args_is_help=False)
data_app = typer.Typer(help="Inspect datasets through any dataset plugin.", no_args_is_help=True)


def _check_kind(kind: str | None) -> str | None:
    if kind is not None and kind not in KINDS:
        raise ParameterError(
            f"--kind must be one of {', '.join(KINDS)}; got {kind!r}.{suggest(kind, KINDS)}"
        )
    return kind


@plugins_app.callback()
def plugins_list(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(
        "--kind", "-k", help=f"Only this kind: {', '.join(KINDS)}.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON list of objects (kind, name, version, distribution, ...).")] = False,
) -> None:
    """List every installed component: kind, name, version, distribution and module.

    The module is the public one to import the class from (never a ``_private`` module
    when the package re-exports the class). Writes nothing. Plugins that failed to load are
    listed after the table with the fix.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .plugins import default_registry

    registry = default_registry()
    entries = registry.entries(_check_kind(kind))
    if as_json:
        typer.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="conform components", show_lines=False)
    for column in ("kind", "name", "version", "distribution", "plugin", "module"):
        table.add_column(column)
    for e in entries:
        table.add_row(*(escape(str(v)) for v in (e.kind, e.name, e.version, e.distribution, e.plugin,
                                                 e.module)))
    console = Console()
    (console if console.is_terminal else Console(width=160)).print(table)


@plugins_app.command("new")
def plugins_new(
    name: Annotated[str, typer.Argument(help="Plugin name, e.g. 'my-denoiser' (package conform_my_denoiser).")],
    kind: Annotated[str, typer.Option("--kind", "-k", help=f"Component kind: {', '.join(KINDS)}.")],
    directory: Annotated[Path, typer.Option("--dir", help="Parent folder of the new project.")] = Path("."),
) -> None:
    """Write a third-party plugin project that passes the contract kit.

    The project has a pyproject with the entry point, a component skeleton and a test.

    Writes DIR/conform-NAME/. Then `pip install -e DIR/conform-NAME` and the component
    appears in `conform plugins`.
    """
    from .scaffold import write_plugin_project

    path = write_plugin_project(name, _check_kind(kind) or "", directory)
    typer.echo(f"Wrote {path}. Next: pip install -e {path} && pytest {path}")


@data_app.command("info")
def data_info(
    dataset: Annotated[str, typer.Argument(help="Dataset plugin name, e.g. 'synthetic' or 'mosaic'.")],
    location: Annotated[Path | None, typer.Argument(help="Folder (or file) the dataset reads.")] = None,
    params: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A dataset parameter, KEY=VALUE (values read as TOML), e.g. "
                              "--param atlas=/data/atlas.npy. Repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Describe a dataset: subjects, trials, stimuli, units, splits. Writes nothing."""
    from .plugins import default_registry
    from .spec import parse_value

    cls = default_registry().get("dataset", dataset)
    kwargs = {}
    accepted = list(cls.param_names())
    for item in params or []:
        key, sep, text = item.partition("=")
        if not sep or key.strip() not in accepted:
            raise ParameterError(
                f"--param takes KEY=VALUE with KEY one of {', '.join(accepted)}; got {item!r}."
                f"{suggest(key.strip(), accepted)}"
            )
        kwargs[key.strip()] = parse_value(text.strip())
    if location is not None:
        kwargs["location"] = str(location)
    summary = cls(**kwargs).describe()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    extra = {k: v for k, v in summary.items() if k != "subjects"}
    for key, value in extra.items():
        if isinstance(value, list):  # e.g. what a dataset found but cannot use: one per line
            console.print(Text(f"{key}", style="bold") + Text(f": {'none' if not value else ''}"),
                          highlight=False)
            for item in value:
                console.print(Text(f"  - {item}"), highlight=False)
            continue
        console.print(Text(f"{key}", style="bold") + Text(f": {value}"), highlight=False)
    rows = summary.get("subjects", [])
    if rows:
        table = Table(title=f"{dataset} subjects")
        for column in rows[0]:
            table.add_column(str(column))
        for row in rows:
            table.add_row(*[escape(str(v)) for v in row.values()])
        console.print(table)


def add_core_commands(app: typer.Typer) -> None:
    """Add conform_core's own commands to the root app."""
    app.command("fit")(fit)
    app.add_typer(plugins_app, name="plugins")
    app.add_typer(data_app, name="data")


def fit(
    spec: Annotated[list[Path], typer.Argument(
        help="Analysis spec (TOML), or a results folder's spec.lock.toml to re-run it; with "
             "--merge, the results folders to merge.", show_default=False)],
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="Swap or tune a stage: STAGE=PLUGIN, STAGE=P1,P2 (compare), STAGE.PARAM=VALUE "
                      "(every entry of the stage), STAGE[LABEL].PARAM=VALUE (one entry of a compared "
                      "stage, e.g. denoiser[pca].n_components=5), analysis.seed=N, "
                      "dataset.location=DIR. Repeatable.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Results folder (default: results/<analysis name>). Never overwritten silently.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1,
        help="1: run in this process; N>1: a local Dask cluster of N single-threaded workers.")] = 1,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Join an existing Dask scheduler at this address (e.g. tcp://host:8786).")] = None,
    threads: Annotated[int, typer.Option(
        "--threads", "--nthreads", min=1,
        help="BLAS threads per task (recorded in provenance.json). Results reproduce bit for bit "
             "at equal settings.")] = 1,
    subjects: Annotated[list[str] | None, typer.Option(
        "--subject", help="Run only this subject (repeatable): one task of a cluster job array. "
                          "The folder also holds parts/ for --merge. Refused with aligners, which "
                          "need every subject at once.")] = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Merge the results folders given as arguments (written with --subject, "
                        "every subject once) into --out: the folder a single run writes, with a "
                        "byte-identical results.csv.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing results folder.")] = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Only check the spec (plugins, every cell's parameters, paths, ROIs, features, "
                        "subjects) and exit: 0 if it would run, 2 if not. Writes nothing.")] = False,
    allow_failures: Annotated[bool, typer.Option(
        "--allow-failures", help="Exit 0 even when some cells failed (for exploration); they are "
                                 "still listed and recorded in results.csv.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="Show no progress (no bar on a terminal, no per-task lines on stderr "
                        "otherwise); the summary is still printed.")] = False,
    mem: Annotated[str | None, typer.Option(
        "--mem", help="Memory the analysis may use, e.g. 8GB or 500MB (binary units, as "
                      "SLURM's); default: the memory available now. Shared by the --workers; "
                      "with --scheduler, each worker's memory. A cell whose predicted peak "
                      "exceeds its share is refused before any work (exit 2).")] = None,
) -> None:
    """Run a declared analysis and compare denoisers x aligners x encoders on held-out stimuli.

    Writes OUT/results.csv (long format: subject, roi, denoiser, aligner, encoder, metric,
    value), OUT/report.md with figures, OUT/spec.lock.toml (re-run it, or swap one stage with
    --set), OUT/provenance.json, OUT/timings.csv and OUT/unit_scores.parquet.

    On a cluster, `--subject S` runs one subject per job (not with aligners) and
    `conform fit --merge DIR DIR ... --out OUT` combines the folders into the one a single
    run writes (see docs/cluster.md).

    Everything that can be checked is checked before any work starts, memory included: each
    stage's predicted peak for each subject's data against --mem (default: the memory
    available) shared by the --workers. Re-running the same
    command on a folder it completed (same spec, subjects and inputs; no failed cell) skips
    it and exits 0. Exit codes: 0 every
    cell succeeded; 2 the spec or data cannot run (nothing written); 3 the analysis ran but
    some cells failed (results written, failures listed; --allow-failures makes this 0),
    or every subject failed (nothing written, an existing results folder kept);
    130/143 interrupted (nothing written).
    """
    from rich.console import Console

    from .analysis import AlreadyComplete, prepare_analysis
    from .memory import parse_bytes

    budget = None if mem is None else parse_bytes(mem)  # a bad --mem before anything is read
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    if merge:
        _check_merge_options(sets, subjects, workers, scheduler, out, mem)
        assert out is not None
        _run_merge(console, spec, out, overwrite, check, allow_failures)
        return
    if len(spec) != 1:
        raise typer.BadParameter(
            f"takes one spec; got {len(spec)} ({', '.join(map(str, spec[:3]))}). To combine "
            "results folders, pass --merge: conform fit --merge DIR DIR ... --out OUT.",
            param_hint="SPEC")
    spec_path = spec[0]
    if check:
        try:
            job = prepare_analysis(spec_path, overrides=sets or [], out=out, overwrite=overwrite,
                                   subjects=subjects, mem=budget, workers=workers,
                                   scheduler=scheduler)
        except AlreadyComplete as done:
            typer.echo(f"{spec_path}: OK. {done} (a run would skip it.)")
            return
        plan = job.plan
        grid = " x ".join(f"{len(plan.stages.get(st, ()))} {st}(s)" for st in ("denoiser", "aligner", "encoder")
                          if plan.stages.get(st))
        if plan.context_sizes:
            grid += (f"; few-shot fits on N = {', '.join(map(str, plan.context_sizes))} training "
                     f"stimuli ({plan.context_draws} draw(s) each)")
        typer.echo(f"{spec_path}: OK. {len(plan.subjects)} subject(s), {grid}; {len(job.checksums)} "
                   f"input file(s) fingerprinted; results would go to {job.out}. Nothing was run.")
        if job.memory is not None:
            typer.echo(job.memory.summary())
        return
    try:
        _run_fit(console, spec_path, sets or [], out, workers, scheduler, threads, overwrite,
                 allow_failures, quiet, subjects=subjects, mem=budget)
    except AlreadyComplete as done:
        console.print(Text(f"Skipped: {done}"))


def _check_merge_options(sets: list[str] | None, subjects: list[str] | None, workers: int,
                         scheduler: str | None, out: Path | None, mem: str | None = None) -> None:
    """Refuse options that mean nothing to ``--merge``, and a missing ``--out``."""
    given = [name for name, used in (("--set", sets), ("--subject", subjects),
                                     ("--workers", workers != 1), ("--scheduler", scheduler),
                                     ("--mem", mem))
             if used]
    if given:
        raise typer.BadParameter(
            f"{given[0]} does not apply to --merge, which only combines finished results "
            "folders. Drop it, or run the parts with it first.", param_hint="--merge")
    if out is None:
        raise typer.BadParameter(
            "--merge needs --out, the merged results folder: conform fit --merge DIR DIR ... "
            "--out OUT.", param_hint="--out")


def _run_merge(console: Any, folders: list[Path], out: Path, overwrite: bool, check: bool,
               allow_failures: bool) -> None:
    from .analysis import AlreadyComplete
    from .analysis.merge import merge_results

    try:
        path, result = merge_results(folders, out, overwrite=overwrite, check_only=check)
    except AlreadyComplete as done:
        console.print(Text(f"Skipped: {done}"))
        return
    subjects = sorted({r["subject"] for r in result.rows})
    if check:
        typer.echo(f"OK: {len(folders)} folder(s) of one analysis, {len(subjects)} subject(s), "
                   f"each once; the merge would go to {path}. Nothing was written.")
        return
    _print_summary(console, result)
    _print_failures(console, result.failures)
    console.print(Text(f"Merged {len(folders)} folder(s) ({len(subjects)} subjects) into {path} "
                       f"(report: {path / 'report.md'})"))
    if result.failures and not allow_failures:
        console.print(Text(f"{len(result.failures)} failed cell(s) in the parts (listed above and "
                           f"in {path / 'results.csv'}).", style="red"))
        raise typer.Exit(3)


def _run_fit(console: Any, spec: Path, sets: list[str], out: Path | None, workers: int,
             scheduler: str | None, threads: int, overwrite: bool, allow_failures: bool,
             quiet: bool = False, subjects: list[str] | None = None,
             mem: int | None = None) -> None:
    from .analysis import count_cells, fit_analysis
    from .analysis.runner import count_tasks
    from .exceptions import AnalysisFailedError
    from .progress import progress

    state: dict[str, Any] = {"plan": None}
    # a bar on a terminal; one line per finished task on stderr otherwise; nothing with --quiet
    with progress("conform fit", quiet=quiet, console=console) as tick:

        def on_plan(plan: Any) -> None:
            state["plan"] = plan
            tick.set_total(count_tasks(plan))

        try:
            path, result = fit_analysis(spec, overrides=sets, out=out, workers=workers,
                                        scheduler=scheduler, threads=threads, overwrite=overwrite,
                                        progress=tick, on_plan=on_plan, subjects=subjects,
                                        mem=mem)
        except AnalysisFailedError as exc:
            tick.stop()
            _print_failures(console, getattr(exc.result, "failures", []))
            console.print(Text("Error: ", style="red") + Text(str(exc)))
            raise typer.Exit(3) from None
    _print_summary(console, result)
    _print_failures(console, result.failures)
    console.print(Text(f"Results written to {path} (report: {path / 'report.md'})"))
    failed, total = count_cells(state["plan"], result)
    if failed:
        console.print(Text(f"{failed} of {total} cells failed (listed above and in "
                           f"{path / 'results.csv'}).", style="red"))
        if not allow_failures:
            raise typer.Exit(3)


def _print_summary(console: Any, result: Any) -> None:
    """Print the summary: denoised responses, encoding models, aligners (see report.md)."""
    from .analysis.report import (
        nc_r2_description,
        nc_r2_exclusions,
        noise_ceiling_summary,
        rank_zero_notes,
    )
    from .analysis.summary import as_rich, summary_tables, uncertainty_note

    for table in summary_tables(result):
        console.print(as_rich(table))
        for note in table.notes:
            console.print(Text(note))
        console.print()
    console.print(Text(uncertainty_note(result)))
    ceiling = noise_ceiling_summary(result)
    if ceiling is not None:
        console.print(Text(nc_r2_description(ceiling)))
    excluded = nc_r2_exclusions(result)
    if excluded:
        console.print(Text(excluded))
    for note in rank_zero_notes(result):
        console.print(Text(f"Flagged: {note}", style="yellow"))
    _print_few_shot(console, result)


def _print_few_shot(console: Any, result: Any) -> None:
    """Print the few-shot table and notes (with ``[evaluation] context_sizes`` only)."""
    from rich.table import Table

    from .analysis.report import few_shot_ceiling, few_shot_notes, few_shot_table

    few_shot = few_shot_table(result)
    if few_shot is None:
        return
    metric, header, body = few_shot
    table = Table(title=f"Few-shot: held-out {metric} by number of training stimuli N "
                        "(mean over subjects ± s.e.m.)")
    for column in header:
        table.add_column(column, justify="left" if column in ("denoiser", "encoder") else "right")
    for row in body:
        table.add_row(*[escape(c) for c in row])
    console.print(table)
    ceiling = few_shot_ceiling(result, metric)
    if ceiling is not None:
        console.print(Text(f"Noise ceiling in {metric} units: {ceiling:.3f}"))
    for note in few_shot_notes(result):
        console.print(Text(note))


def _print_failures(console: Any, failures: list[dict[str, Any]]) -> None:
    for failure in failures:
        console.print(Text("failed ", style="red") + Text(
            f"{failure['subject']} / {failure['denoiser']} / {failure['aligner']} / "
            f"{failure['encoder']}: {failure['status']}"))
