"""``conform glmsingle``: single-trial betas from NIfTI/GIFTI/CIFTI runs and BIDS events.

Two ways in: run files with one ``events.tsv`` each (``RUNS... --events EVENTS...``), or one
subject (and session) of a dataset plugin (``--dataset bids --location DIR --subject S
[--session N]``). Before any fit the command prints the design check (which types the
design supports) and the predicted peak memory (``--mem`` chooses the chunking); ``--check``
stops there. Outputs are written atomically with ``provenance.json`` last; re-running the same
command on a complete folder skips it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from conform_core.exceptions import DataFileError, ParameterError

from ._jobs import (
    _complete,
    _Job,
    _kept,
    _key,
    _run_job,
    _Settings,
    check_out_folder,
    skip_if_complete,
    summarize_fit,
)

__all__ = ["check_out_folder", "glmsingle_command", "register", "run_glmsingle_dataset",
           "run_glmsingle_files", "summarize_fit"]


def run_glmsingle_files(runs: list[Path], events: list[Path], out: Path, *, tr: float | None,
                        stimdur: float | None, types: str = "D", sessions: list[int] | None = None,
                        id_column: str | None = None, options: dict[str, Any] | None = None,
                        verbose: bool = True, overwrite: bool = False, fmt: str = "npy",
                        mem: str | None = None, nthreads: int | None = None) -> list[Path]:
    """Fit GLMsingle on run files and write the outputs, trial and condition tables and maps.

    ``out`` must be new or empty unless ``overwrite`` (or hold a complete fit of the same
    inputs and options, which is then kept); the outputs are built in a temporary folder
    beside it that replaces ``out`` as a whole once complete. Returns the top-level paths
    written (folders for ``fmt="npy"``). Raises a ConformError (before writing anything) for
    bad input, an unsupported requested type or a ``mem`` budget that cannot fit.
    """
    settings = _Settings(types=types, stimdur=stimdur, options=options, fmt=fmt, mem=mem,
                         nthreads=nthreads, verbose=verbose, overwrite=overwrite)
    return _fit_files(runs, events, out, tr=tr, sessions=sessions, id_column=id_column,
                      settings=settings)[0]


def _file_identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _fingerprint_files(kwargs: dict[str, Any], label: str) -> str:
    """Hash the size and modification time of every file a dataset subject may read.

    Walks the dataset's location and every other path parameter, leaving out the folders of
    other subjects (``sub-X`` with another label) and conform's own outputs (e.g. this
    command's, under ``derivatives/``), so that a re-run notices an edited events file or
    sidecar without hashing gigabytes of images, and without reading a run.
    """
    from conform_core.analysis.lock import walk_inputs

    digest = hashlib.sha256()
    roots = sorted({Path(str(v)).expanduser().resolve() for v in kwargs.values()
                    if isinstance(v, (str, Path)) and str(v) and Path(str(v)).expanduser().exists()})
    own = f"sub-{label}"
    for root in roots:
        for path in walk_inputs(root, skip=lambda d: d.startswith("sub-") and d != own):
            try:
                st = path.stat()
            except OSError:
                continue
            rel = path.name if root.is_file() else path.relative_to(root).as_posix()
            digest.update(f"{root}/{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _fit_files(runs: list[Path], events: list[Path], out: Path, *, tr: float | None,
               sessions: list[int] | None, id_column: str | None,
               settings: _Settings) -> tuple[list[Path], dict[str, dict[str, Any]], int]:
    """:func:`run_glmsingle_files`, also returning the results and the exit status."""
    from ._io import group_hemispheres, load_runs, read_events, run_header

    if not settings.check and _complete(out, None) is None:
        check_out_folder(out, overwrite=settings.overwrite)  # before any work
    groups = group_hemispheres(list(runs))
    if len(groups) != len(events):
        raise ParameterError(f"Got {len(groups)} run file(s) but {len(events)} events file(s). Pass "
                             "one --events file per run, in the same order as the runs (a run "
                             "given as hemi-L and hemi-R GIFTI files counts once).")
    _kept(settings.types)
    heads = [run_header(g) for g in groups]
    if len({h["n_units"] for h in heads}) > 1:
        raise DataFileError(f"The runs have different numbers of units "
                            f"({sorted({h['n_units'] for h in heads})}); every run must cover "
                            "the same voxels/vertices. Check that all runs are in the same space.")
    header_trs = [h["tr"] for h in heads]
    if tr is None:
        tr = heads[0]["tr"]
        if not tr:
            raise ParameterError("The run files do not record the TR. Pass --tr SECONDS.")
        for g, t in zip(groups, header_trs):
            if not t or abs(float(t) - float(tr)) > 1e-3:  # headers store the TR as float32
                raise DataFileError(
                    f"The run files disagree on the TR: {g[0]!s} records {t} s but "
                    f"{groups[0][0]!s} records {tr} s. Runs of one fit must share a TR; check "
                    "the files (or pass --tr SECONDS if a header is wrong).")
    elif any(t and abs(float(t) - float(tr)) > 1e-3 for t in header_trs):
        settings.echo(f"note: --tr {tr:g} s differs from the TR in the run headers "
                      f"({sorted({float(t) for t in header_trs if t})} s); using --tr.")
    ev = [read_events(p, id_column) for p in events]
    if sessions:
        if len(sessions) != len(groups):
            raise ParameterError(f"--session needs one value per run ({len(groups)}); got "
                                 f"{len(sessions)}.")

    def load() -> tuple[list[Any], dict[str, Any]]:
        loaded = [load_runs(g) for g in groups]
        return [d for d, _ in loaded], loaded[0][1]

    identity = {"runs": [[_file_identity(Path(p)) for p in g] for g in groups],
                "events": [_file_identity(Path(p)) for p in events], "tr": float(tr),
                "sessions": list(sessions) if sessions else None, "id_column": id_column}
    job = _Job(load=load, n_units=int(heads[0]["n_units"]), n_times=[h["n_times"] for h in heads],
               tr=float(tr), onsets=[e[0] for e in ev], durations=[e[1] for e in ev],
               ids=[e[2] for e in ev], sessions=list(sessions) if sessions else None,
               identity=identity)
    return _run_job(job, out, settings)


def run_glmsingle_dataset(dataset: str, out: Path, *, subject: str, session: str | None = None,
                          location: str | None = None, params: list[str] | None = None,
                          settings: _Settings | None = None, registry: Any = None
                          ) -> tuple[list[Path], dict[str, dict[str, Any]], int, Path]:
    """Fit one subject (and session) of a dataset plugin into ``out/sub-S[/ses-N]``.

    Parameters
    ----------
    dataset : str
        Dataset plugin name (e.g. ``bids``, ``synthetic-folder``).
    out : Path
        Parent output folder; the fit goes to ``out/<subject>[/ses-<session>]``.
    subject : str
        Subject name, with or without the ``sub-`` prefix.
    session : str or None
        Session label; passed to the dataset as ``sessions=[session]`` (the dataset must
        have a ``sessions`` parameter).
    location : str or None
        The dataset's ``location``.
    params : list of str or None
        ``KEY=VALUE`` dataset parameters (values read as TOML).
    settings : _Settings or None
        Fit options (types, format, memory, threads, check, overwrite, echo).
    registry : ComponentRegistry or None
        Where to find the dataset (default: the installed plugins).

    Returns
    -------
    (paths written, results, exit status, the subject's output folder)

    Raises
    ------
    ParameterError
        For an unknown parameter, a dataset without sessions given ``--session``, or a
        subject without time series.
    """
    from conform_core.plugins import default_registry
    from conform_core.spec import parse_value
    from conform_core.validation import suggest

    settings = settings or _Settings()
    cls = (registry or default_registry()).get("dataset", dataset)
    accepted = list(cls.param_names())
    kwargs: dict[str, Any] = {}
    for item in params or []:
        key, sep, text = item.partition("=")
        if not sep or key.strip() not in accepted:
            raise ParameterError(f"--param takes KEY=VALUE with KEY one of "
                                 f"{', '.join(accepted)}; got {item!r}.{suggest(key.strip(), accepted)}")
        kwargs[key.strip()] = parse_value(text.strip())
    if location is not None:
        if "location" not in accepted:
            raise ParameterError(f"Dataset {dataset!r} has no 'location' parameter; drop "
                                 "--location (its parameters: " + ", ".join(accepted) + ").")
        kwargs["location"] = str(Path(location).expanduser().resolve())
    if session is not None:
        if "sessions" not in accepted:
            raise ParameterError(
                f"--session {session}: dataset {dataset!r} has no 'sessions' parameter, so it "
                f"cannot load one session alone. Drop --session to fit all of {subject}'s runs "
                f"together, or use a dataset that has sessions (its parameters: "
                + ", ".join(accepted) + ").")
        kwargs["sessions"] = [session]
    ds = cls(**kwargs)
    names = ds.subjects()
    name = subject if subject in names or f"sub-{subject}" not in names else f"sub-{subject}"
    target = out / name
    if session is not None:
        target = target / (session if str(session).startswith("ses-") else f"ses-{session}")
    label = name[len("sub-"):] if name.startswith("sub-") else name
    identity = {"dataset": dataset, "params": {k: str(v) for k, v in sorted(kwargs.items())},
                "subject": name, "session": session,
                "data_params": {k: str(v) for k, v in sorted(ds.data_params().items())},
                "files": _fingerprint_files(kwargs, label)}
    if skip_if_complete(target, _key(identity, _kept(settings.types), settings), settings):
        return [], {}, 0, target  # before reading any run
    ts = ds.load_subject(name).timeseries
    if ts is None:
        raise ParameterError(f"Subject {name} of dataset {dataset!r} has no time series "
                             "(only trials): GLMsingle needs fMRI runs and events.")
    space = getattr(ds, "output_space", None)

    def load() -> tuple[list[Any], dict[str, Any]]:
        runs = [np.asarray(r, np.float32) for r in ts.runs]
        meta = dict(space(name) or {}) if callable(space) else {}
        if meta and ts.units.indices is not None:  # the units are some voxels of that space
            meta["indices"] = np.asarray(ts.units.indices)
        return runs, meta

    sessions = None
    if ts.sessions is not None and np.unique(ts.sessions).size > 1:
        sessions = [int(x) for x in np.asarray(ts.sessions)]
    job = _Job(load=load, n_units=int(ts.n_units), n_times=[int(r.shape[1]) for r in ts.runs],
               tr=float(ts.tr), onsets=[e.onset for e in ts.events],
               durations=[e.duration for e in ts.events],
               ids=[e.stimulus_ids for e in ts.events], sessions=sessions, identity=identity,
               extra_regressors=list(ts.confounds) if ts.confounds is not None else None)
    written, results, code = _run_job(job, target, settings)
    return written, results, code, target


def glmsingle_command(
    runs: Annotated[list[Path] | None, typer.Argument(
        help="Run files: 4-D NIfTI, GIFTI (hemi-L and hemi-R files of a run are paired) or "
             "CIFTI time series, in run order. Not with --dataset.")] = None,
    events: Annotated[list[Path] | None, typer.Option(
        "--events", help="One BIDS events.tsv per run (onset, duration, stimulus_id or "
                         "trial_type).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output folder: new or empty (see --overwrite); with --dataset the fit "
                      "goes to OUT/sub-S[/ses-N].")] = None,
    tr: Annotated[float | None, typer.Option(
        "--tr", help="TR in seconds (default: from the NIfTI header).")] = None,
    stimdur: Annotated[float | None, typer.Option(
        "--stimdur", help="Trial duration in seconds (default: median event duration).")] = None,
    types: Annotated[str, typer.Option(
        "--types", help="GLMsingle types to compute and save, letters from ABCD.")] = "D",
    session: Annotated[list[str] | None, typer.Option(
        "--session", help="With run files: the session of each run (repeat once per run). "
                          "With --dataset: the one session to fit.")] = None,
    id_column: Annotated[str | None, typer.Option(
        "--id-column", help="Events column holding the stimulus id.")] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", help="Dataset plugin to read a subject from (e.g. bids).")] = None,
    location: Annotated[str | None, typer.Option(
        "--location", help="The dataset's folder.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A dataset parameter, KEY=VALUE (values read as TOML). "
                              "Repeatable.")] = None,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="With --dataset: the subject to fit (with or without sub-).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="Output files: npy (a folder of plain .npy per file, no pickle, any "
                         "size), hdf5, or npy-pickle (the official pickled .npy).")] = "npy",
    mem: Annotated[str | None, typer.Option(
        "--mem", help="Memory budget, e.g. 8GB: chooses the chunking, refuses before any work "
                      "when it cannot fit.")] = None,
    nthreads: Annotated[int | None, typer.Option(
        "--nthreads", help="BLAS threads (default 1; recorded in provenance.json).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="A GLMsingle option, KEY=VALUE (values read as TOML), e.g. "
                               "-o pcstop=-3 or -o 'fracs=[0.5]'. Repeatable; see "
                               "docs/glmsingle.md for the options.")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Print the design check and memory estimate, fit nothing; exit 0 when "
                        "the requested types are supported, 2 otherwise.")] = False,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Show a progress bar per stage.")] = True,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a non-empty --out folder as a whole.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="Show no progress (same as --no-progress).")] = False,
) -> None:
    """Estimate single-trial betas with GLMsingle.

    Prints the design check (which types the design supports, and why not) and the predicted
    peak memory, then writes OUT: the official files (DESIGNINFO, TYPEB_FITHRF ...
    TYPED_FITHRF_GLMDENOISE_RR, RUNWISEFIR) in --format, trials.tsv (trial order of the
    betas), conditions.tsv and CONDITIONS_TYPEX (betas averaged per condition, t-like maps),
    maps in the input's space (betas_typeX, condition_mean_typeX, condition_t_typeX as NIfTI,
    GIFTI per hemisphere or CIFTI) and provenance.json (last); then prints what the fit chose.
    OUT must be new or empty; --overwrite replaces it as a whole once the new outputs are
    complete. Re-running the same command on a complete OUT skips it.
    """
    if stimdur is not None and not stimdur >= 0:
        raise ParameterError(f"--stimdur must be a duration >= 0 s; got {stimdur!r}. Pass the "
                             "stimulus duration, or leave it out for the median event duration.")
    settings = _Settings(types=types, stimdur=stimdur, options=_glm_options(option or []),
                         fmt=fmt, mem=mem, nthreads=nthreads, check=check,
                         verbose=progress and not quiet, overwrite=overwrite, echo=typer.echo)
    if out is None and not check:
        raise ParameterError("Pass --out FOLDER for the outputs (or --check to only check the "
                             "design).")
    if dataset is not None:
        if runs or events:
            raise ParameterError("Pass either run files with --events, or --dataset with "
                                 "--subject, not both.")
        if subject is None:
            raise ParameterError("--dataset needs --subject S (one subject per command; loop or "
                                 "use an array job for several, see docs/cluster.md).")
        if session is not None and len(session) > 1:
            raise ParameterError(f"With --dataset, --session takes one session; got {session}.")
        written, results, code, target = run_glmsingle_dataset(
            dataset, out or Path("."), subject=subject, session=session[0] if session else None,
            location=location, params=param, settings=settings)
        out = target
    else:
        if subject is not None or location is not None or param:
            raise ParameterError("--subject, --location and --param need --dataset.")
        if not runs or not events:
            raise ParameterError("Pass run files and one --events file per run, or --dataset "
                                 "... --subject S.")
        file_runs, file_events = _split_events(list(runs), list(events))
        sessions = None
        if session:
            try:
                sessions = [int(s) for s in session]
            except ValueError:
                raise ParameterError(f"With run files, --session takes one whole number per "
                                     f"run; got {session}.") from None
        written, results, code = _fit_files(file_runs, file_events, out or Path("."), tr=tr,
                                            sessions=sessions, id_column=id_column,
                                            settings=settings)
    if check:
        raise typer.Exit(code)
    if written:
        typer.echo(f"Wrote {len(written)} file(s) to {out}")
    for line in summarize_fit(results):
        typer.echo(line)


def _glm_options(items: list[str]) -> dict[str, Any] | None:
    """Parse ``--option KEY=VALUE`` items and check them as ``GLM_single`` does."""
    from conform_core.spec import parse_value

    from ._options import check_options

    if not items:
        return None
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--option takes KEY=VALUE (e.g. -o pcstop=-3); got {item!r}.")
        options[key.strip()] = parse_value(text.strip())
    check_options(options)
    return options


def _split_events(runs: list[Path], events: list[Path]) -> tuple[list[Path], list[Path]]:
    """Support ``RUNS... --events E1 E2 ...``: click hands E2... to RUNS; move them back."""
    tsv = [p for p in runs if str(p).endswith((".tsv", ".tsv.gz"))]
    return [p for p in runs if p not in tsv], events + tsv


def register(app: typer.Typer) -> None:
    """Add ``conform glmsingle`` to the typer ``app``."""
    app.command("glmsingle")(glmsingle_command)
