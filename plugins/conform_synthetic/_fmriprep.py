"""``conform simulate --timeseries --layout fmriprep``: BIDS raw data, fMRIPrep-style derivatives.

A study as a BIDS raw tree with fMRIPrep-style derivatives (volumes, fsaverage5 surfaces,
confounds) and its ground truth, described in ``docs/formats.md`` ("The fMRIPrep layout"). It
holds the same runs as the default layout: the preprocessed volume, the raw BOLD and the
surfaces are the simulator's runs, placed on the toy ``(rows, cols, 1)`` grid (labelled with
the MNI space) and on fsaverage5 vertices. :func:`write_study` (``_writer``) calls
:func:`write_top` once and :func:`write_subject` per subject, inside its temporary folder.
"""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from conform_core.data import StimulusSet, Subject, TimeSeriesData
from conform_core.exceptions import ParameterError
from conform_core.io import atomic_write, save_npy, write_json

from ._motion import MOTION_NAMES, confounds_table, draw_motion
from ._params import SimulationParams
from ._study import subject_motion_rng
from ._writer import TASK, VOXEL_SIZE_MM, _nifti_bytes, _save_npz, _write_tsv

__all__ = ["BIDS_VERSION", "FSAVERAGE5_VERTICES", "SPACE", "SURFACE_SPACE", "check_layout",
           "surface_index", "write_subject", "write_top"]

BIDS_VERSION = "1.10.0"
#: The volume space the toy grid is labelled with (fMRIPrep's default output space).
SPACE = "MNI152NLin2009cAsym"
SURFACE_SPACE = "fsaverage5"
#: Vertices per hemisphere of fsaverage5.
FSAVERAGE5_VERTICES = 10242
#: Side, in pixels, of each stimulus image.
IMAGE_SIZE = 32
_HEMIS = (("L", "CortexLeft"), ("R", "CortexRight"))
FMRIPREP = Path("derivatives") / "fmriprep"
TRUTH = Path("derivatives") / "ground-truth"


def check_layout(layout: str, params: SimulationParams) -> None:
    """Raise :class:`ParameterError` unless ``layout`` can be written for ``params``.

    Checked before anything is written.
    """
    if layout not in ("conform", "fmriprep"):
        raise ParameterError(
            param="layout", value=layout, owner="write_study",
            allowed="'conform' (the default folder format) or 'fmriprep' (a BIDS tree with "
                    "fMRIPrep-style derivatives)",
            fix="Pass $layout conform or $layout fmriprep.")
    if layout == "conform":
        return
    if not params.timeseries:
        raise ParameterError(
            "$layout fmriprep writes BOLD runs, events and confounds, but no runs are "
            "simulated ($timeseries is off).", param="layout", value=layout,
            owner="write_study", fix="Pass $timeseries as well, or leave $layout at conform.")
    if params.n_units > 2 * FSAVERAGE5_VERTICES:
        raise ParameterError(
            f"$layout fmriprep puts the {params.n_units} units of the sheet on the fsaverage5 "
            f"surface, which has {2 * FSAVERAGE5_VERTICES} vertices (two hemispheres of "
            f"{FSAVERAGE5_VERTICES}).", param="n_units", value=params.n_units,
            owner="write_study",
            fix=f"Pass $n_units={2 * FSAVERAGE5_VERTICES} or fewer, or use $layout conform.")


def _description(name: str, dataset_type: str, version: str) -> dict[str, object]:
    return {"Name": name, "BIDSVersion": BIDS_VERSION, "DatasetType": dataset_type,
            "GeneratedBy": [{"Name": "conform simulate", "Version": version}]}


def _png_bytes(pixels: NDArray[np.uint8]) -> bytes:
    from PIL import Image

    image = Image.fromarray(pixels, "RGB").resize((IMAGE_SIZE, IMAGE_SIZE),
                                                     Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _stimulus_pixels(features: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Return a 4 x 4 RGB pattern per stimulus: a fixed projection of its features."""
    basis = np.random.default_rng(0).standard_normal((features.shape[1], 48))
    values = np.tanh(np.asarray(features, np.float64) @ basis / math.sqrt(features.shape[1]))
    return np.round((values + 1.0) * 127.5).astype(np.uint8).reshape(-1, 4, 4, 3)


def write_top(root: Path, params: SimulationParams, names: list[str], stimuli: StimulusSet,
              test_ids: NDArray[np.str_], version: str) -> None:
    """Write the dataset descriptions, participants, the task sidecar and ``stimuli/``."""
    write_json(root / "dataset_description.json",
               _description("conform synthetic study", "raw", version))
    _write_tsv(root / "participants.tsv", ["participant_id"], ([n] for n in names))
    write_json(root / f"task-{TASK}_bold.json", {"RepetitionTime": params.tr, "TaskName": TASK})
    write_json(root / FMRIPREP / "dataset_description.json",
               _description("conform synthetic study: fMRIPrep-style derivatives", "derivative",
                            version))
    write_json(root / TRUTH / "dataset_description.json",
               _description("conform synthetic study: ground truth", "derivative", version))
    assert stimuli.embeddings is not None  # the simulator always gives features
    test = set(test_ids.tolist())
    categories = stimuli.categories if stimuli.categories is not None else [""] * stimuli.n_stimuli
    _write_tsv(root / "stimuli" / "stimuli.tsv", ["stimulus_id", "stim_file", "category", "split"],
               ([sid, f"images/{sid}.png", cat, "test" if sid in test else "train"]
                for sid, cat in zip(stimuli.ids.tolist(), categories, strict=True)))
    save_npy(root / "stimuli" / "stimuli_embeddings.npy",
             np.asarray(stimuli.embeddings, np.float32))
    for sid, pixels in zip(stimuli.ids.tolist(), _stimulus_pixels(stimuli.embeddings),
                           strict=True):
        with atomic_write(root / "stimuli" / "images" / f"{sid}.png", "wb") as handle:
            handle.write(_png_bytes(pixels))


def surface_index(indices: NDArray[np.integer], n_sheet: int) -> NDArray[np.int64]:
    """Index, into [hemi-L vertices, hemi-R vertices], of each sheet (flat) index.

    Sheet index ``k`` lies on hemi L, vertex ``k``, when ``k < ceil(n_sheet / 2)``, else on
    hemi R, vertex ``k - ceil(n_sheet / 2)``.
    """
    half = (n_sheet + 1) // 2
    k = np.asarray(indices, np.int64)
    return np.where(k < half, k, FSAVERAGE5_VERTICES + k - half)


def _gifti_bytes(data: NDArray[np.float32], structure: str) -> bytes:
    """One hemisphere's run (vertices x volumes) as a GIFTI, one data array per volume."""
    from nibabel.gifti import GiftiDataArray, GiftiImage, GiftiMetaData

    arrays = [GiftiDataArray(np.ascontiguousarray(data[:, t]), intent="NIFTI_INTENT_TIME_SERIES",
                             datatype="NIFTI_TYPE_FLOAT32") for t in range(data.shape[1])]
    image = GiftiImage(meta=GiftiMetaData({"AnatomicalStructurePrimary": structure}),
                       darrays=arrays)
    return bytes(image.to_bytes())


def _mask_bytes(indices: NDArray[np.integer], grid: tuple[int, int]) -> bytes:
    import nibabel as nib

    mask = np.zeros(grid[0] * grid[1], np.uint8)
    mask[indices] = 1
    image = nib.Nifti1Image(mask.reshape(grid[0], grid[1], 1),
                            np.diag([VOXEL_SIZE_MM, VOXEL_SIZE_MM, VOXEL_SIZE_MM, 1.0]))
    image.set_data_dtype(np.uint8)
    image.header.set_xyzt_units("mm")
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def _format(value: float) -> str:
    return "n/a" if math.isnan(value) else repr(float(value))


_CONFOUND_META = {
    **{name: {"Description": f"Head motion: {name.replace('_', ' ')}", "Units": unit}
       for name, unit in zip(MOTION_NAMES, ["mm"] * 3 + ["rad"] * 3, strict=True)},
    "framewise_displacement": {"Description": "Framewise displacement (Power et al. 2012, "
                                              "50-mm head radius); n/a for the first volume",
                               "Units": "mm"},
    "global_signal": {"Description": "Mean over the subject's units (brain mask) of the run"},
}


def _run_stems(name: str, ts: TimeSeriesData) -> list[tuple[str, str]]:
    """(folder, file stem) of each run: ``ses-XX`` levels when the subject has >1 session."""
    sessions = np.asarray(ts.sessions)
    several = np.unique(sessions).size > 1
    out = []
    for r, s in enumerate(sessions.tolist()):
        run = r + 1 - int(np.flatnonzero(sessions == s)[0])  # runs numbered within a session
        ses = f"ses-{s + 1:02d}"
        folder = f"{name}/{ses}/func" if several else f"{name}/func"
        out.append((folder, f"{name}{'_' + ses if several else ''}_task-{TASK}_run-{run:02d}"))
    return out


def write_subject(root: Path, subject: Subject, index: int, params: SimulationParams,
                  grid: tuple[int, int]) -> None:
    """Write one subject's raw runs and events, its fMRIPrep derivatives and ground truth."""
    ts, truth = subject.timeseries, subject.truth
    assert ts is not None and truth is not None and ts.units.indices is not None
    indices = np.asarray(ts.units.indices)
    n_sheet = grid[0] * grid[1]
    half = (n_sheet + 1) // 2
    motion = ([np.asarray(c, np.float64) for c in ts.confounds] if ts.confounds is not None else
              draw_motion(subject_motion_rng(params, index), [r.shape[1] for r in ts.runs]))
    mask = _mask_bytes(indices, grid)
    for r, (folder, stem) in enumerate(_run_stems(subject.name, ts)):
        run, events = np.asarray(ts.runs[r], np.float32), ts.events[r]
        bold = _nifti_bytes(run, grid, ts.tr, indices)
        order = np.argsort(events.onset, kind="stable")
        _write_tsv(root / folder / f"{stem}_events.tsv",
                   ["onset", "duration", "trial_type", "stim_file"],
                   ([repr(float(events.onset[i])), repr(float(events.duration[i])), "image",
                     f"images/{events.stimulus_ids[i]}.png"] for i in order))
        _write_bytes(root / folder / f"{stem}_bold.nii.gz", bold)
        deriv = root / FMRIPREP / folder
        volume = f"{stem}_space-{SPACE}"
        _write_bytes(deriv / f"{volume}_desc-preproc_bold.nii.gz", bold)
        write_json(deriv / f"{volume}_desc-preproc_bold.json",
                   {"RepetitionTime": ts.tr, "TaskName": TASK})
        _write_bytes(deriv / f"{volume}_desc-brain_mask.nii.gz", mask)
        for h, (hemi, structure) in enumerate(_HEMIS):
            on_hemi = (indices < half) if h == 0 else (indices >= half)
            data = np.zeros((FSAVERAGE5_VERTICES, run.shape[1]), np.float32)
            data[indices[on_hemi] - h * half] = run[on_hemi]
            _write_bytes(deriv / f"{stem}_space-{SURFACE_SPACE}_hemi-{hemi}_bold.func.gii",
                         _gifti_bytes(data, structure))
        names, values = confounds_table(motion[r], run, ts.tr)
        _write_tsv(deriv / f"{stem}_desc-confounds_timeseries.tsv", names,
                   ([_format(v) for v in row] for row in values))
        write_json(deriv / f"{stem}_desc-confounds_timeseries.json",
                   {n: _CONFOUND_META.get(n, {"Description": "Discrete cosine high-pass basis "
                                                             "(128-s cutoff)"}) for n in names})
    _write_truth(root / TRUTH / subject.name / f"{subject.name}_desc-truth.npz", subject, n_sheet)


def _write_truth(path: Path, subject: Subject, n_sheet: int) -> None:
    truth, units = subject.truth, subject.trials.units if subject.trials is not None else None
    assert truth is not None and units is not None and units.indices is not None
    arrays: dict[str, np.ndarray] = {
        "signal": np.asarray(truth.signal.data, np.float32),
        "stimulus_ids": truth.signal.stimulus_ids.astype(str),
        "noise_ceiling": np.asarray(truth.noise_ceiling),
        "hrf_index": np.asarray(truth.hrf_index),
        "trial_amplitudes": np.asarray(truth.trial_amplitudes),
        "volume_index": np.asarray(units.indices, np.int64),
        "surface_index": surface_index(units.indices, n_sheet),
    }
    if truth.shared_space is not None:
        arrays["shared_space"] = np.asarray(truth.shared_space.data)
        arrays["shared_space_ids"] = truth.shared_space.units.ids.astype(str)
    if truth.unit_positions is not None:
        arrays["unit_positions"] = np.asarray(truth.unit_positions)
    _save_npz(path, arrays)
