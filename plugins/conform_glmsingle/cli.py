"""``conform glmsingle``: single-trial betas from NIfTI/GIFTI/CIFTI runs and BIDS events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from conform_core.exceptions import ConformError, DataFileError, ParameterError
from conform_core.io import atomic_directory

__all__ = ["check_out_folder", "glmsingle_command", "register", "run_glmsingle_files", "summarize_fit"]

_TYPES = {"A": 0, "B": 1, "C": 2, "D": 3}


def run_glmsingle_files(runs: list[Path], events: list[Path], out: Path, *, tr: float | None,
                        stimdur: float | None, types: str = "D", sessions: list[int] | None = None,
                        id_column: str | None = None, options: dict[str, Any] | None = None,
                        verbose: bool = True, overwrite: bool = False) -> list[Path]:
    """Fit GLMsingle on run files and write the official outputs, a trial table and betas.

    ``out`` must be new or empty unless ``overwrite``; the outputs are built in a temporary
    folder beside it that replaces ``out`` as a whole once complete. Returns the paths written.
    Raises a ConformError (before writing anything) for bad input.
    """
    return _fit_files(runs, events, out, tr=tr, stimdur=stimdur, types=types, sessions=sessions,
                      id_column=id_column, options=options, verbose=verbose,
                      overwrite=overwrite)[0]


def _fit_files(runs: list[Path], events: list[Path], out: Path, *, tr: float | None,
               stimdur: float | None, types: str, sessions: list[int] | None,
               id_column: str | None, options: dict[str, Any] | None, verbose: bool,
               overwrite: bool) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """:func:`run_glmsingle_files`, also returning the fit's results (for the summary)."""
    from ._io import events_to_design, load_run, read_events

    target = check_out_folder(out, overwrite=overwrite)  # before any work
    if len(runs) != len(events):
        raise ParameterError(f"Got {len(runs)} run file(s) but {len(events)} events file(s). Pass "
                             "one --events file per run, in the same order as the runs.")
    kept = sorted({t.upper() for t in types})
    if not kept or any(t not in _TYPES for t in kept):
        raise ParameterError(f"--types must be letters from ABCD (e.g. D or BD); got {types!r}.")
    loaded = [load_run(p) for p in runs]
    data = [d for d, _ in loaded]
    meta = loaded[0][1]
    if tr is None:
        tr = meta.get("tr")
        if not tr:
            raise ParameterError("The run files do not record the TR. Pass --tr SECONDS.")
    ev = [read_events(p, id_column) for p in events]
    design, conditions = events_to_design([e[0] for e in ev], [e[2] for e in ev],
                                          [d.shape[1] for d in data], float(tr))
    if stimdur is None:
        stimdur = float(np.median(np.concatenate([e[1] for e in ev])))
    flags = [int(t in kept) for t in "ABCD"]
    params: dict[str, Any] = dict(options or {})
    params.update(wantfileoutputs=flags, wantmemoryoutputs=flags, verbose=verbose)
    if "C" not in kept and "D" not in kept:
        params.update(wantglmdenoise=0, wantfracridge=0)
    elif "D" not in kept:
        params["wantfracridge"] = 0
    if sessions:
        if len(sessions) != len(runs):
            raise ParameterError(f"--session needs one value per run ({len(runs)}); got {len(sessions)}.")
        params["sessionindicator"] = [s - min(sessions) + 1 for s in sessions]
    try:
        with atomic_directory(target, overwrite=target.exists()) as tmp:
            results, written = _fit_into(tmp, params, design, data, conditions, meta, kept,
                                         float(stimdur), float(tr))
    except ConformError:
        raise
    except OSError as exc:  # full disk, no permission: name the folder, not a traceback
        raise DataFileError(f"Cannot write the outputs to {str(out)!r} ({exc}). Check the free "
                            "space and permissions there, or choose another --out folder.") from None
    return [target / p.relative_to(tmp) for p in written], results


def _fit_into(folder: Path, params: dict[str, Any], design: list[Any], data: list[Any],
              conditions: Any, meta: dict[str, Any], kept: list[str], stimdur: float,
              tr: float) -> tuple[dict[str, dict[str, Any]], list[Path]]:
    """Fit and write every output into ``folder``; return (results, paths written)."""
    import gzip

    from conform_core.io import atomic_write, write_text

    from .api import GLM_single

    glm = GLM_single(params)
    results = glm.fit(design, data, stimdur, tr, outputdir=folder)
    written = [Path(p) for p in glm.written_]
    rows = ["trial\trun\tonset\tstimulus_id"]
    trial = 0
    for r, m in enumerate(design):
        for t in np.flatnonzero(m.any(axis=1)):
            rows.append(f"{trial}\t{r}\t{t * tr:g}\t{conditions[int(np.argmax(m[t]))]}")
            trial += 1
    written.append(write_text(folder / "trials.tsv", "\n".join(rows) + "\n"))
    best = max(kept, key=lambda t: _TYPES[t])
    key = "type" + best.lower()
    if meta["kind"] == "nifti" and key in results and best != "A":
        import nibabel as nib

        betas = np.asarray(results[key]["betasmd"], np.float32)
        img = nib.Nifti1Image(betas.reshape(*meta["shape"], -1), meta["affine"])
        path = folder / f"betas_type{best}.nii.gz"
        with atomic_write(path, "wb") as handle:
            handle.write(gzip.compress(img.to_bytes(), compresslevel=6))
        written.append(path)
    return results, written


def check_out_folder(out: Path, *, overwrite: bool) -> Path:
    """Check that ``--out`` may be written; return it resolved (symbolic links followed).

    Raises
    ------
    DataFileError
        If ``out`` is a file, a non-empty folder without ``overwrite``, or holds the current
        folder (which cannot be replaced).
    """
    if out.exists() and not out.is_dir():
        raise DataFileError(f"--out {str(out)!r} is a file, not a folder. Pass a folder name, "
                            "e.g. --out glmsingle_out.")
    target = out.resolve()
    if not target.is_dir():
        return target
    try:
        filled = any(target.iterdir())
    except OSError as exc:
        raise DataFileError(f"Cannot list the --out folder {str(out)!r} ({exc}). Check its "
                            "permissions, or choose another --out folder.") from None
    if filled and not overwrite:
        raise DataFileError(
            f"Output folder {str(out)!r} is not empty. Pass --overwrite to replace it as a whole "
            "(its current content is deleted once the new outputs are complete), or choose "
            "another --out folder.")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise DataFileError(f"--out {str(out)!r} holds the current folder, which cannot be "
                            "replaced. Choose another --out folder, e.g. --out glmsingle_out.")
    return target


def summarize_fit(results: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-text lines on what the fit chose: HRF per unit, noise PC count, ridge fractions.

    Parameters
    ----------
    results : dict
        What :meth:`GLM_single.fit` returned (``{"typeb": ..., "typed": ...}``).

    Returns
    -------
    list of str
        Empty when only type A was kept (it chooses nothing).
    """
    fitted = [results[k] for k in ("typed", "typec", "typeb") if k in results]
    if not fitted or "HRFindex" not in fitted[0]:
        return []
    lines = []
    hrf = np.asarray(fitted[0]["HRFindex"]).ravel().astype(np.int64)
    values, counts = np.unique(hrf, return_counts=True)
    top = int(np.argmax(counts))
    lines.append(f"HRF index per unit (0-based, {hrf.size} units): median {np.median(hrf):g}, "
                 f"most common {values[top]} ({counts[top]} units), range {hrf.min()}-{hrf.max()}")
    denoised = [r for r in fitted if "pcnum" in r]
    if denoised:
        if "noisepool" in denoised[0] and denoised[0]["noisepool"] is None:
            lines.append("Noise PCs (GLMdenoise): none, GLMdenoise was off")
        else:
            lines.append(f"Noise PCs (GLMdenoise): {int(np.asarray(denoised[0]['pcnum']).ravel()[0])}")
    if "typed" in results and "FRACvalue" in results["typed"]:
        frac = np.asarray(results["typed"]["FRACvalue"], np.float64).ravel()
        frac = frac[np.isfinite(frac)]
        if frac.size:
            lines.append(f"Ridge fraction per unit ({frac.size} units): median {np.median(frac):.2f}, "
                         f"range {frac.min():.2f}-{frac.max():.2f}")
    return lines


def glmsingle_command(
    runs: Annotated[list[Path], typer.Argument(
        help="Run files: 4-D NIfTI, GIFTI or CIFTI time series, in run order.")],
    events: Annotated[list[Path], typer.Option(
        "--events", help="One BIDS events.tsv per run (onset, duration, stimulus_id or trial_type).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder: new or empty (see --overwrite).")],
    tr: Annotated[float | None, typer.Option(
        "--tr", help="TR in seconds (default: from the NIfTI header).")] = None,
    stimdur: Annotated[float | None, typer.Option(
        "--stimdur", help="Trial duration in seconds (default: median event duration).")] = None,
    types: Annotated[str, typer.Option(
        "--types", help="GLMsingle types to compute and save, letters from ABCD.")] = "D",
    session: Annotated[list[int] | None, typer.Option(
        "--session", help="Session of each run (repeat once per run).")] = None,
    id_column: Annotated[str | None, typer.Option(
        "--id-column", help="Events column holding the stimulus id.")] = None,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Show a progress bar per stage.")] = True,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a non-empty --out folder as a whole.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="Show no progress (same as --no-progress).")] = False,
) -> None:
    """Estimate single-trial betas with GLMsingle.

    Writes OUT: the official files (DESIGNINFO.npy, TYPEA_ONOFF.npy ...
    TYPED_FITHRF_GLMDENOISE_RR.npy for the kept types), trials.tsv (trial order of the betas)
    and, for NIfTI input, betas_typeX.nii.gz; then prints what the fit chose (HRF per unit,
    noise PCs, ridge fractions). OUT must be new or empty; --overwrite replaces it as a whole
    once the new outputs are complete (no stale file of an earlier run stays beside them).
    """
    runs, events = _split_events(list(runs), list(events))
    written, results = _fit_files(runs, events, out, tr=tr, stimdur=stimdur, types=types,
                                  sessions=session, id_column=id_column, options=None,
                                  verbose=progress and not quiet, overwrite=overwrite)
    typer.echo(f"Wrote {len(written)} file(s) to {out}")
    for line in summarize_fit(results):
        typer.echo(line)


def _split_events(runs: list[Path], events: list[Path]) -> tuple[list[Path], list[Path]]:
    """Support ``RUNS... --events E1 E2 ...``: click hands E2... to RUNS; move them back."""
    tsv = [p for p in runs if str(p).endswith((".tsv", ".tsv.gz"))]
    return [p for p in runs if p not in tsv], events + tsv


def register(app: typer.Typer) -> None:
    """Add ``conform glmsingle`` to the typer ``app``."""
    app.command("glmsingle")(glmsingle_command)
