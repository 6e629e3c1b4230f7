"""The jobs behind ``conform glmsingle``: check, size, fit and write one fit's folder.

A :class:`_Job` says what to load (run files, or one subject of a dataset), its events and
what identifies it; :func:`_run_job` prints the design check and the memory prediction,
skips a folder already complete for the same job, and otherwise fits into a temporary
folder that replaces the output as a whole, ``provenance.json`` written last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conform_core.exceptions import ConformError, DataFileError, ParameterError
from conform_core.io import atomic_directory

__all__ = ["EXIT_UNSUPPORTED", "check_out_folder", "summarize_fit"]





#: Exit status of ``--check`` when a requested type is unsupported (and of a refused fit).
EXIT_UNSUPPORTED = 2


@dataclass
class _Job:
    """One fit: what to load, the events, and what identifies it for re-runs."""

    load: Callable[[], tuple[list[Any], dict[str, Any]]]  # -> (runs units x time, space meta)
    n_units: int
    n_times: list[int]
    tr: float
    onsets: list[Any]
    durations: list[Any]
    ids: list[Any]
    sessions: list[int] | None
    identity: dict[str, Any]
    extra_regressors: list[Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Settings:
    """Options shared by both modes."""

    types: str = "D"
    stimdur: float | None = None
    options: dict[str, Any] | None = None
    fmt: str = "npy"
    mem: str | None = None
    nthreads: int | None = None
    check: bool = False
    verbose: bool = True
    overwrite: bool = False
    echo: Callable[[str], None] = field(default=lambda line: None)


def _kept(types: str) -> list[str]:
    kept = sorted({t.upper() for t in types})
    if not kept or any(t not in "ABCD" for t in kept):
        raise ParameterError(f"--types must be letters from ABCD (e.g. D or BD); got {types!r}.")
    return kept


def _params(kept: list[str], settings: _Settings, job: _Job) -> dict[str, Any]:
    flags = [int(t in kept) for t in "ABCD"]
    params: dict[str, Any] = dict(settings.options or {})
    params.update(wantfileoutputs=flags, wantmemoryoutputs=flags, verbose=settings.verbose,
                  outputformat=settings.fmt)
    if "C" not in kept and "D" not in kept:
        params.update(wantglmdenoise=0, wantfracridge=0)
    elif "D" not in kept:
        params["wantfracridge"] = 0
    if job.sessions:
        params["sessionindicator"] = [s - min(job.sessions) + 1 for s in job.sessions]
    if job.extra_regressors is not None:
        params["extra_regressors"] = job.extra_regressors
        # the official quirks drop the extra regressors from a 0-PC model, so a confound-
        # driven fit would lose them in types C and D (docs/glmsingle.md); keep them in all
        params.setdefault("quirks", "fixed")
    if settings.nthreads is not None:
        if settings.nthreads < 1:
            raise ParameterError(f"--nthreads must be >= 1; got {settings.nthreads}.")
        params["blas_threads"] = int(settings.nthreads)
    return params


def _key(identity: dict[str, Any], kept: list[str], settings: _Settings) -> str:
    """Return the hash of what identifies a fit: inputs and every option that changes it.

    ``identity`` fingerprints the inputs, so a ``stimdur`` of None (the median event
    duration) is fixed by them; the key can be computed before any run is read.
    """
    from importlib import metadata

    try:
        version = metadata.version("conform-fmri")
    except metadata.PackageNotFoundError:
        version = "unknown"
    opts = {k: v for k, v in (settings.options or {}).items()
            if k not in ("chunklen", "blas_threads", "verbose")}
    text = json.dumps({"identity": identity, "types": kept, "stimdur": settings.stimdur,
                       "format": settings.fmt, "options": opts, "conform": version},
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def skip_if_complete(out: Path, key: str, settings: _Settings) -> bool:
    """Say so and return True when ``out`` already holds the fit ``key`` (not with --overwrite)."""
    if settings.check or settings.overwrite or _complete(out, key) is None:
        return False
    settings.echo(f"{out} already holds this fit (provenance.json: same inputs and options); "
                  "skipping. Pass --overwrite to fit again.")
    return True


def _complete(out: Path, key: str | None) -> dict[str, Any] | None:
    """``out``'s provenance when it holds a complete fit (of ``key``, when given), else None."""
    path = out / "provenance.json"
    if not path.is_file():
        return None
    try:
        prov = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(prov, dict) or (key is not None and prov.get("key") != key):
        return None
    return prov


def _run_job(job: _Job, out: Path, settings: _Settings
             ) -> tuple[list[Path], dict[str, dict[str, Any]], int]:
    """Check the design, predict memory, fit and write ``out`` atomically; or skip or stop."""
    from conform_core.hrf import hrf_library

    from . import events_design
    from ._design_check import check_design_support
    from ._memory import (
        BASELINE_BYTES,
        MAX_BLOCK,
        chunk_for_budget,
        format_bytes,
        parse_bytes,
        predict_peak_bytes,
    )

    echo = settings.echo
    kept = _kept(settings.types)
    if settings.fmt not in ("npy", "hdf5", "npy-pickle"):
        raise ParameterError(f"--format must be npy, hdf5 or npy-pickle; got {settings.fmt!r}.")
    budget = None if settings.mem is None else parse_bytes(settings.mem)  # before any report
    params = _params(kept, settings, job)
    key = _key(job.identity, kept, settings)
    if skip_if_complete(out, key, settings):
        return [], {}, 0
    if not settings.check:
        check_out_folder(out, overwrite=settings.overwrite)
    tables, conditions = events_design(job.onsets, job.durations, job.ids, job.n_times, job.tr)
    stimdur = settings.stimdur
    if stimdur is None:
        stimdur = float(np.median(np.concatenate([t["duration"] for t in tables])))
    report = check_design_support([t["condition"] for t in tables], sessions=job.sessions,
                                  requested="".join(kept), params=params)
    for line in report.render().splitlines():
        echo(line)
    n_trials = [len(t["onset"]) for t in tables]
    hrf_len = int(hrf_library(float(stimdur), job.tr).shape[0])
    n_hrfs = 20 if int(params.get("wantlibrary", 1)) else 1
    denoise = bool("C" in kept or "D" in kept)
    sizes = dict(n_types=len(kept), n_hrfs=n_hrfs, hrf_length=hrf_len, denoise=denoise)
    if budget is not None:
        params["chunklen"] = chunk_for_budget(budget, job.n_units, job.n_times, n_trials, **sizes)
    chunk = int(params.get("chunklen", 50000))
    peak = predict_peak_bytes(job.n_units, job.n_times, n_trials, chunklen=chunk, **sizes)
    block = min(chunk, MAX_BLOCK, job.n_units)
    echo(f"Predicted peak memory: {format_bytes(peak + BASELINE_BYTES)} "
         f"({format_bytes(peak)} arrays + {format_bytes(BASELINE_BYTES)} interpreter; "
         f"{job.n_units} units in blocks of {block})"
         + (f", within --mem {format_bytes(budget)}" if budget is not None else ""))
    if settings.check:
        return [], {}, 0 if report.ok else EXIT_UNSUPPORTED
    if not report.ok:
        raise ParameterError(
            f"The design cannot support type(s) {''.join(report.unsupported)}: "
            + "; ".join(f"type {t}: {report.types[t].reason}" for t in report.unsupported)
            + f". Keep only supported types (e.g. --types "
            f"{''.join(t for t in kept if report.types[t].supported) or 'B'}), or change the "
            "design; nothing was written.")
    data, meta = job.load()
    info = {"key": key, "command": "conform glmsingle", "inputs": job.identity,
            "types": kept, "stimdur": float(stimdur), "tr": job.tr, "format": settings.fmt,
            "quirks": params.get("quirks", "official"),
            "nthreads": params.get("blas_threads", 1), "chunklen": chunk,
            "predicted_peak_bytes": int(peak + BASELINE_BYTES), "design": report.to_dict()}
    try:
        with atomic_directory(out.resolve(), overwrite=out.exists()) as tmp:
            results, written = _fit_into(tmp, params, tables, data, conditions, meta, kept,
                                         float(stimdur), job, info)
    except ConformError:
        raise
    except OSError as exc:  # full disk, no permission: name the folder, not a traceback
        raise DataFileError(f"Cannot write the outputs to {str(out)!r} ({exc}). Check the free "
                            "space and permissions there, or choose another --out folder.") from None
    return [out.resolve() / p.relative_to(tmp) for p in written], results, 0


def _fit_into(folder: Path, params: dict[str, Any], tables: list[dict[str, Any]],
              data: list[Any], conditions: Any, meta: dict[str, Any], kept: list[str],
              stimdur: float, job: _Job, info: dict[str, Any]
              ) -> tuple[dict[str, dict[str, Any]], list[Path]]:
    """Fit and write every output into ``folder``; return (results, top-level paths)."""
    import time
    from importlib import metadata

    from conform_core.io import write_json, write_text

    from ._conditions import condition_betas, conditions_table
    from ._export import write_maps
    from ._io import save_output
    from .api import GLM_single

    started = time.time()
    glm = GLM_single(params)
    results = glm.fit(tables, data, stimdur, job.tr, outputdir=folder)
    written = [Path(p) for p in glm.written_]
    labels = np.concatenate([np.asarray(t["condition"]).astype(str) for t in tables])
    runs = np.concatenate([np.full(len(t["onset"]), r) for r, t in enumerate(tables)])
    sess = job.sessions or [0] * len(tables)
    index = np.searchsorted(conditions, labels)
    rows = ["trial\trun\tsession\tonset\tduration\tstimulus_id\tcondition_index"]
    trial = 0
    for r, t in enumerate(tables):
        for on, du, c in zip(t["onset"], t["duration"], np.asarray(t["condition"]).astype(str)):
            rows.append(f"{trial}\t{r}\t{sess[r]}\t{on:g}\t{du:g}\t{c}\t{index[trial]}")
            trial += 1
    written.append(write_text(folder / "trials.tsv", "\n".join(rows) + "\n"))
    best = max(kept, key="ABCD".index)
    key = "type" + best.lower()
    if best != "A" and key in results:
        betas = np.asarray(results[key]["betasmd"], np.float32)
        cond = condition_betas(betas, labels, conditions)
        written.append(write_text(folder / "conditions.tsv",
                                  conditions_table(cond, runs, sess)))
        written.append(save_output(folder, f"CONDITIONS_TYPE{best}", {
            "conditions": cond.conditions, "trial_condition": cond.trial_condition,
            "n_trials": cond.n_trials, "mean": cond.mean, "sd": cond.sd, "t": cond.t},
            params["outputformat"]))
        names = [str(c) for c in cond.conditions]
        flat = betas.reshape(job.n_units, -1)
        trial_names = [f"trial{i:04d}_{c}" for i, c in enumerate(labels)]
        for stem, maps, nm in ((f"betas_type{best}", flat, trial_names),
                               (f"condition_mean_type{best}", cond.mean, names),
                               (f"condition_t_type{best}", cond.t, names)):
            written.extend(write_maps(folder, stem, maps.reshape(job.n_units, -1), meta, nm))
    try:
        version = metadata.version("conform-fmri")
    except metadata.PackageNotFoundError:
        version = "unknown"
    info = {**info, "version": version, "seconds": round(time.time() - started, 3),
            "timings": dict(getattr(glm, "timings_", {})),
            "files": sorted(p.name for p in written)}
    written.append(write_json(folder / "provenance.json", info))  # last: marks completion
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

