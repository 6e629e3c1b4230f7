"""``conform glmsingle``: single-trial betas from NIfTI/GIFTI/CIFTI runs and BIDS events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from conform_core.exceptions import ParameterError

__all__ = ["glmsingle_command", "run_glmsingle_files"]

_TYPES = {"A": 0, "B": 1, "C": 2, "D": 3}


def run_glmsingle_files(runs: list[Path], events: list[Path], out: Path, *, tr: float | None,
                        stimdur: float | None, types: str = "D", sessions: list[int] | None = None,
                        id_column: str | None = None, options: dict[str, Any] | None = None,
                        verbose: bool = True) -> list[Path]:
    """Fit GLMsingle on run files and write the official outputs, a trial table and betas.

    Returns the paths written. Raises a ConformError (before writing anything) for bad input.
    """
    import gzip

    from conform_core.io import atomic_write, write_text

    from ._io import events_to_design, load_run, read_events
    from .api import GLM_single

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
    glm = GLM_single(params)
    results = glm.fit(design, data, stimdur, float(tr), outputdir=out)
    written = list(glm.written_)
    rows = ["trial\trun\tonset\tstimulus_id"]
    trial = 0
    for r, m in enumerate(design):
        for t in np.flatnonzero(m.any(axis=1)):
            rows.append(f"{trial}\t{r}\t{t * float(tr):g}\t{conditions[int(np.argmax(m[t]))]}")
            trial += 1
    written.append(write_text(out / "trials.tsv", "\n".join(rows) + "\n"))
    best = max(kept, key=lambda t: _TYPES[t])
    key = "type" + best.lower()
    if meta["kind"] == "nifti" and key in results and best != "A":
        import nibabel as nib

        betas = np.asarray(results[key]["betasmd"], np.float32)
        img = nib.Nifti1Image(betas.reshape(*meta["shape"], -1), meta["affine"])
        path = out / f"betas_type{best}.nii.gz"
        with atomic_write(path, "wb") as handle:
            handle.write(gzip.compress(img.to_bytes(), compresslevel=6))
        written.append(path)
    return written


def glmsingle_command(
    runs: list[Path],
    events: list[Path],
    out: Path,
    tr: float | None = None,
    stimdur: float | None = None,
    types: str = "D",
    session: list[int] | None = None,
    id_column: str | None = None,
    progress: bool = True,
) -> None:
    """Estimate single-trial betas with GLMsingle.

    Writes into OUT (created, never emptied): the official files (DESIGNINFO.npy,
    TYPEA_ONOFF.npy ... TYPED_FITHRF_GLMDENOISE_RR.npy for the kept types), trials.tsv
    (trial order of the betas) and, for NIfTI input, betas_typeX.nii.gz.
    """
    import typer

    runs, events = _split_events(list(runs), list(events))
    written = run_glmsingle_files(runs, events, out, tr=tr, stimdur=stimdur,
                                  types=types, sessions=session, id_column=id_column,
                                  verbose=progress)
    typer.echo(f"Wrote {len(written)} file(s) to {out}")


def _split_events(runs: list[Path], events: list[Path]) -> tuple[list[Path], list[Path]]:
    """Support ``RUNS... --events E1 E2 ...``: click hands E2... to RUNS; move them back."""
    tsv = [p for p in runs if str(p).endswith((".tsv", ".tsv.gz"))]
    return [p for p in runs if p not in tsv], events + tsv


def register(app: Any) -> None:
    """Add ``conform glmsingle`` to the typer ``app``."""
    import typer

    app.command("glmsingle")(_typed_command(typer))


def _typed_command(typer: Any) -> Any:
    def glmsingle(
        runs: list[Path] = typer.Argument(..., help="Run files: 4-D NIfTI, GIFTI or CIFTI time series, in run order."),  # noqa: B008
        events: list[Path] = typer.Option(..., "--events", help="One BIDS events.tsv per run (onset, duration, stimulus_id or trial_type)."),  # noqa: B008
        out: Path = typer.Option(..., "--out", help="Output folder (created if needed; nothing in it is deleted)."),  # noqa: B008
        tr: float | None = typer.Option(None, "--tr", help="TR in seconds (default: from the NIfTI header)."),
        stimdur: float | None = typer.Option(None, "--stimdur", help="Trial duration in seconds (default: median event duration)."),
        types: str = typer.Option("D", "--types", help="GLMsingle types to compute and save, letters from ABCD."),
        session: list[int] | None = typer.Option(None, "--session", help="Session of each run (repeat once per run)."),  # noqa: B008
        id_column: str | None = typer.Option(None, "--id-column", help="Events column holding the stimulus id."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar per stage."),
    ) -> None:
        glmsingle_command(runs, events, out, tr, stimdur, types, session, id_column, progress)

    glmsingle.__doc__ = glmsingle_command.__doc__
    return glmsingle
