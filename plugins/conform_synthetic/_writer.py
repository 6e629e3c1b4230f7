"""Write a simulated study to disk (the format is described in ``docs/formats.md``).

Every file goes through :mod:`conform_core.io` (temporary name, then rename) and the whole
folder is built under a temporary name and renamed into place by
:func:`conform_core.io.atomic_directory`, so a crash leaves no half-written study.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from conform_core.data import StimulusSet, Subject, TimeSeriesData
from conform_core.io import atomic_directory, atomic_write, save_npy, write_json
from conform_core.progress import progress as report_progress

from ._noise import grid_shape
from ._params import SimulationParams
from ._study import SimulatedStudy, plan_study, simulate_subject

__all__ = ["write_study", "FORMAT_NAME", "FORMAT_VERSION", "TASK", "VOXEL_SIZE_MM"]

FORMAT_NAME = "conform-synthetic-study"
FORMAT_VERSION = 1
TASK = "conform"
VOXEL_SIZE_MM = 2.0
#: What replaces ``bold.nii.gz`` in the name of a run's confounds table (fMRIPrep's name).
CONFOUNDS_SUFFIX = "desc-confounds_timeseries.tsv"


def _write_tsv(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    with atomic_write(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds loosely


def _write_stimuli(folder: Path, stimuli: StimulusSet, latent: np.ndarray,
                   shared_ids: np.ndarray, test_ids: np.ndarray) -> None:
    shared, test = set(shared_ids.tolist()), set(test_ids.tolist())
    categories = stimuli.categories if stimuli.categories is not None else [""] * stimuli.n_stimuli
    rows = ([sid, src, cat, int(sid in shared), "test" if sid in test else "train"]
            for sid, src, cat in zip(stimuli.ids.tolist(), stimuli.sources.tolist(), categories,
                                   strict=True))
    header = ["stimulus_id", "source", "category", "shared", "split"]
    _write_tsv(folder / "stimuli.tsv", header, rows)
    assert stimuli.embeddings is not None  # the simulator always gives features
    save_npy(folder / "stimuli_embeddings.npy", stimuli.embeddings)
    save_npy(folder / "stimuli_latent.npy", latent)


def _nifti_bytes(run: np.ndarray, grid: tuple[int, int], tr: float,
                 indices: np.ndarray | None = None) -> bytes:
    """Encode a run (units x volumes) as a NIfTI of the whole sheet; voxels of no unit stay 0."""
    import nibabel as nib

    if indices is not None and indices.size < grid[0] * grid[1]:
        sheet = np.zeros((grid[0] * grid[1], run.shape[1]), np.float32)
        sheet[indices] = run
        run = sheet
    volume = run.reshape(grid[0], grid[1], 1, run.shape[1])
    affine = np.diag([VOXEL_SIZE_MM, VOXEL_SIZE_MM, VOXEL_SIZE_MM, 1.0])
    image = nib.Nifti1Image(volume.astype(np.float32), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_zooms((VOXEL_SIZE_MM,) * 3 + (float(tr),))
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)


def _write_timeseries(folder: Path, name: str, ts: TimeSeriesData, grid: tuple[int, int]) -> None:
    func = folder / "func"
    rows = []
    for r, (run, events) in enumerate(zip(ts.runs, ts.events, strict=True)):
        stem = f"{name}_task-{TASK}_run-{r + 1:02d}"
        with atomic_write(func / f"{stem}_bold.nii.gz", "wb") as handle:
            handle.write(_nifti_bytes(np.asarray(run), grid, ts.tr, ts.units.indices))
        write_json(func / f"{stem}_bold.json", {"RepetitionTime": ts.tr, "TaskName": TASK,
                                                "Units": "arbitrary (baseline about 100)"})
        _write_tsv(func / f"{stem}_events.tsv", ["onset", "duration", "trial_type", "stimulus_id"],
                   ([repr(float(o)), repr(float(d)), "image", s] for o, d, s in
                    zip(events.onset, events.duration, events.stimulus_ids.tolist(), strict=True)))
        if ts.confounds is not None and ts.confound_names is not None:
            _write_tsv(func / f"{stem}_{CONFOUNDS_SUFFIX}", list(ts.confound_names),
                       ([repr(float(v)) for v in row] for row in ts.confounds[r]))
        rows.append([r + 1, int(ts.sessions[r]), f"func/{stem}_bold.nii.gz",
                     f"func/{stem}_events.tsv", run.shape[1]])
    _write_tsv(folder / f"{name}_runs.tsv", ["run", "session", "bold", "events", "n_volumes"], rows)


def _write_subject(root: Path, subject: Subject, grid: tuple[int, int]) -> None:
    name = subject.name
    folder = root / name
    trials, truth = subject.trials, subject.truth
    assert trials is not None and truth is not None
    arrays: dict[str, np.ndarray] = {
        "betas": np.asarray(trials.betas),
        "stimulus_ids": trials.stimulus_ids.astype(str),
        "sessions": trials.sessions, "runs": trials.runs,
        "train_ids": subject.train_ids.astype(str), "test_ids": subject.test_ids.astype(str),
        "stimuli": subject.stimuli.ids.astype(str),
        "unit_ids": trials.units.ids.astype(str),
        "unit_indices": (trials.units.indices if trials.units.indices is not None
                         else np.arange(trials.n_units)),
        "truth_signal": np.asarray(truth.signal.data),
        "truth_stimulus_ids": truth.signal.stimulus_ids.astype(str),
        "truth_noise_ceiling": np.asarray(truth.noise_ceiling),
    }
    if truth.hrf_index is not None:
        arrays["truth_hrf_index"] = np.asarray(truth.hrf_index)
    if truth.shared_space is not None:
        arrays["truth_shared_space"] = np.asarray(truth.shared_space.data)
        arrays["truth_shared_space_ids"] = truth.shared_space.units.ids.astype(str)
    if truth.unit_positions is not None:
        arrays["truth_unit_positions"] = np.asarray(truth.unit_positions)
    amplitudes = truth.trial_amplitudes
    if amplitudes is not None and not np.array_equal(amplitudes, trials.betas, equal_nan=True):
        arrays["truth_trial_amplitudes"] = np.asarray(truth.trial_amplitudes)
    _save_npz(folder / f"{name}_trials.npz", arrays)
    if subject.timeseries is not None:
        _write_timeseries(folder, name, subject.timeseries, grid)


def _summary(subject: Subject) -> dict[str, Any]:
    """Return the subject's entry in ``study.json``."""
    trials = subject.trials
    assert trials is not None
    return {"name": subject.name, "n_trials": trials.n_trials, "n_units": trials.n_units,
            "n_stimuli": subject.stimuli.n_stimuli,
            "n_train": int(subject.train_ids.size), "n_test": int(subject.test_ids.size),
            "n_runs": None if subject.timeseries is None else subject.timeseries.n_runs}


def write_study(out: str | Path, study: SimulatedStudy | SimulationParams | dict[str, Any], *,
                progress: bool = False, layout: str = "conform") -> Path:
    """Write a simulated study to the folder ``out`` (which must not exist).

    Parameters
    ----------
    out : path-like
        Destination folder; built under a temporary name and renamed into place.
    study : SimulatedStudy, SimulationParams or dict
        A study already in memory, or the parameters of one to simulate subject by subject
        (so only one subject is in memory at a time, as large benchmarks need).
    progress : bool, default=False
        Report progress over subjects (:func:`conform_core.progress.progress`: a bar on a
        terminal, one line per subject on stderr otherwise).
    layout : {"conform", "fmriprep"}, default="conform"
        ``"conform"``: the folder format the ``synthetic-folder`` dataset reads;
        ``"fmriprep"``: a BIDS raw tree with fMRIPrep-style derivatives (preprocessed volumes,
        fsaverage5 surfaces, confounds) and the ground truth, for the ``bids`` dataset (needs
        time series). Both are described in ``docs/formats.md``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    DataFileError
        If ``out`` already exists.
    ParameterError
        If the parameters are invalid, or ``layout`` is unknown or cannot be written for
        them (``"fmriprep"`` without time series, or a sheet larger than fsaverage5).
    """
    from conform_core import __version__ as conform_version

    from . import _fmriprep

    if isinstance(study, SimulatedStudy):
        params = SimulationParams.from_kwargs(**study.params)
        names = [s.name for s in study.subjects]
        stimuli, latent = study.stimuli, study.latent
        shared_ids, test_ids = study.shared_ids, study.test_ids
        subjects: Iterable[Subject] = iter(study.subjects)
    else:
        params = (study if isinstance(study, SimulationParams)
                  else SimulationParams.from_kwargs(**study))
        _fmriprep.check_layout(layout, params)
        plan = plan_study(params)
        names = plan.subject_names
        stimuli, latent = plan.stimuli, plan.tuning.latent
        shared_ids, test_ids = plan.shared_ids, plan.test_ids
        subjects = (simulate_subject(plan, i) for i in range(params.n_subjects))
    _fmriprep.check_layout(layout, params)
    grid = grid_shape(params.n_units)
    with atomic_directory(out) as tmp:
        if layout == "fmriprep":
            _fmriprep.write_top(tmp, params, names, stimuli, test_ids, conform_version)
        else:
            _write_stimuli(tmp, stimuli, latent, shared_ids, test_ids)
            write_json(tmp / "dataset_description.json", {
                "Name": "conform synthetic study", "BIDSVersion": "1.8.0", "DatasetType": "raw",
                "GeneratedBy": [{"Name": "conform simulate", "Version": conform_version}]})
        summaries = []
        with report_progress("Writing subjects", total=len(names), quiet=not progress,
                             transient=False) as tick:
            for subject in subjects:
                if layout == "fmriprep":
                    _fmriprep.write_subject(tmp, subject, names.index(subject.name), params,
                                            grid)
                else:
                    _write_subject(tmp, subject, grid)
                summaries.append(_summary(subject))
                tick(subject.name)
        write_json(tmp / "study.json", {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "conform_version": conform_version, "params": params.as_dict(),
            "subjects": summaries, "n_units": params.n_units, "grid_shape": list(grid),
            "timeseries": params.timeseries, "task": TASK,
            "shared_ids": shared_ids.tolist(), "test_ids": test_ids.tolist(),
            **({"layout": layout} if layout != "conform" else {})})
    return Path(out)

