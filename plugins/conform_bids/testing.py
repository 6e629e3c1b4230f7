"""A tiny fMRIPrep-style BIDS study for tests and the contract kit (nothing downloaded).

:func:`write_toy_study` writes the layout of ``conform simulate --timeseries --layout
fmriprep`` (docs/formats.md) at toy size: a raw root with a top-level ``task-conform_bold.json``
(TR by inheritance), events naming ``stimuli/images/*.png``, ``stimuli/stimuli.tsv`` and
embeddings, and ``derivatives/fmriprep`` with MNI volumes + brain masks, fsaverage5 GIFTI
hemispheres, optionally fsLR 91k CIFTI-2 dtseries (:func:`fslr_91k_brain_models`), and
confounds, plus ``derivatives/ground-truth``. Each unit's response to a
stimulus is a boxcar (no HRF) of a known amplitude plus noise: enough to load, not to fit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cifti_index", "fslr_91k_brain_models", "write_toy_study", "toy_dataset"]

N_FSAVERAGE5 = 10242
SPACE = "MNI152NLin2009cAsym"
#: Grayordinates of fMRIPrep's ``space-fsLR_den-91k`` CIFTI: 29696 left + 29716 right
#: cortical vertices (of 32492 per hemisphere, medial wall left out) and 31870 subcortical
#: voxels.
N_CIFTI_91K = 91282
_FSLR_32K, _CORTEX_91K, _SUBCORTEX_91K = 32492, (29696, 29716), 31870


def fslr_91k_brain_models(*, volume: bool = True) -> object:
    """Return a ``nibabel`` BrainModelAxis with the 91k grayordinate counts.

    The cortices keep their first 29696 (left) and 29716 (right) of 32492 fsLR vertices
    (the real medial-wall masks are other subsets of those sizes) and, with ``volume``, one
    subcortical structure
    holds the first 31870 voxels (C order) of the 2-mm MNI grid (91, 109, 91): 91282
    grayordinates, the count fMRIPrep's ``den-91k`` files have. ``volume=False`` gives a
    cortex-only axis (59412), a file of the wrong density.
    """
    import nibabel as nib

    axis = nib.cifti2.BrainModelAxis
    cortex = np.zeros((2, _FSLR_32K), bool)
    for hemi, n in enumerate(_CORTEX_91K):
        cortex[hemi, :n] = True
    models = (axis.from_mask(cortex[0], name="CortexLeft")
              + axis.from_mask(cortex[1], name="CortexRight"))
    if volume:
        mask = np.zeros((91, 109, 91), bool)
        mask.reshape(-1)[:_SUBCORTEX_91K] = True
        affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
        models = models + axis.from_mask(mask, name="thalamus_left", affine=affine)
    return models


def cifti_index(n_units: int, n_grayordinates: int = N_CIFTI_91K) -> np.ndarray:
    """Grayordinate of each toy unit in the CIFTI runs: spread evenly over all models."""
    return np.arange(n_units, dtype=np.int64) * (n_grayordinates // max(n_units, 1))


def _cifti(path: Path, data: np.ndarray, tr: float, models: object) -> None:
    """Write a dtseries (time x grayordinates) with ``data`` of shape (grayordinates, time)."""
    import nibabel as nib

    series = nib.cifti2.SeriesAxis(start=0.0, step=tr, size=data.shape[1], unit="SECOND")
    image = nib.cifti2.Cifti2Image(np.ascontiguousarray(data.T, np.float32),
                                   header=(series, models))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(data, np.eye(4) if affine is None else affine)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))


def _gifti(path: Path, data: np.ndarray, hemi: str) -> None:
    import nibabel as nib

    structure = "CortexLeft" if hemi == "L" else "CortexRight"
    image = nib.gifti.GiftiImage(meta=nib.gifti.GiftiMetaData(
        {"AnatomicalStructurePrimary": structure}))
    for t in range(data.shape[1]):
        image.add_gifti_data_array(nib.gifti.GiftiDataArray(
            data[:, t].astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES",
            datatype="NIFTI_TYPE_FLOAT32"))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))


def _tsv(path: Path, columns: dict[str, list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(columns)
    lines = ["\t".join(names)]
    for i in range(len(columns[names[0]])):
        lines.append("\t".join(str(columns[n][i]) for n in names))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")


def write_toy_study(root: str | Path, *, n_subjects: int = 2, n_sessions: int = 1,
                    n_runs: int = 2, grid: tuple[int, int] = (3, 4), n_stimuli: int = 6,
                    tr: float = 1.0, seed: int = 0, surfaces: bool = True,
                    truth: bool = True, images: bool = True, cifti: bool = False) -> Path:
    """Write a toy fMRIPrep-style study to ``root`` and return it.

    Every run shows every stimulus once (onsets 2 s apart from 1 s, duration 1 s); a run
    lasts ``2 * n_stimuli + 4`` volumes. Units are the ``rows * cols`` sheet cells of
    ``grid`` except the last (outside the brain mask, and 0 on the surfaces). The confounds
    have fMRIPrep's ``n/a`` first row in ``framewise_displacement``. With ``cifti``, each run
    also has a ``space-fsLR_den-91k`` dtseries (+ JSON sidecar with ``RepetitionTime``): unit
    k at grayordinate ``cifti_index(n_units)[k]``, every other grayordinate 0.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows, cols = grid
    n_cells = rows * cols
    n_units = n_cells - 1
    n_volumes = 2 * n_stimuli + 4
    ids = [f"stim-{k:04d}" for k in range(n_stimuli)]
    _json(root / "dataset_description.json",
          {"Name": "toy", "BIDSVersion": "1.10.0", "DatasetType": "raw",
           "GeneratedBy": [{"Name": "conform_bids.testing"}]})
    _tsv(root / "participants.tsv", {"participant_id": [f"sub-{s + 1:02d}"
                                                         for s in range(n_subjects)]})
    _json(root / "task-conform_bold.json", {"RepetitionTime": tr, "TaskName": "conform"})
    stim = root / "stimuli"
    _tsv(stim / "stimuli.tsv", {"stimulus_id": ids,
                                "stim_file": [f"images/{i}.png" for i in ids],
                                "category": ["a" if k % 2 else "b" for k in range(n_stimuli)],
                                "split": ["test" if k < 2 else "train"
                                          for k in range(n_stimuli)]})
    np.save(stim / "stimuli_embeddings.npy",
            rng.standard_normal((n_stimuli, 4)).astype(np.float32))
    if images:
        from PIL import Image

        (stim / "images").mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(ids):
            pixels = np.full((4, 4, 3), 20 * k % 256, dtype=np.uint8)
            Image.fromarray(pixels).save(stim / "images" / f"{i}.png")
    deriv = root / "derivatives" / "fmriprep"
    _json(deriv / "dataset_description.json",
          {"Name": "toy fMRIPrep", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
           "GeneratedBy": [{"Name": "conform_bids.testing"}]})
    if truth:
        _json(root / "derivatives" / "ground-truth" / "dataset_description.json",
              {"Name": "toy truth", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
               "GeneratedBy": [{"Name": "conform_bids.testing"}]})
    onsets = 1.0 + 2.0 * np.arange(n_stimuli)
    n_left = -(-n_cells // 2)
    models = fslr_91k_brain_models() if cifti else None
    for s in range(n_subjects):
        sub = f"sub-{s + 1:02d}"
        signal = rng.standard_normal((n_units, n_stimuli))
        amplitudes = []
        for ses in range(n_sessions):
            ses_dir = f"ses-{ses + 1:02d}" if n_sessions > 1 else ""
            prefix = sub + (f"_{ses_dir}" if ses_dir else "")
            for run in range(n_runs):
                base = f"{prefix}_task-conform_run-{run + 1:02d}"
                order = rng.permutation(n_stimuli)
                amp = signal[:, order].T + 0.3 * rng.standard_normal((n_stimuli, n_units))
                amplitudes.append(amp)
                series = 100 + 0.5 * rng.standard_normal((n_units, n_volumes))
                for j in range(len(order)):
                    t = int(onsets[j] / tr)
                    series[:, t] += amp[j]
                func = root / sub / ses_dir / "func"
                _tsv(func / f"{base}_events.tsv",
                     {"onset": onsets.tolist(), "duration": [1.0] * n_stimuli,
                      "trial_type": ["image"] * n_stimuli,
                      "stim_file": [f"images/{ids[k]}.png" for k in order]})
                volume = np.zeros((n_cells, n_volumes), np.float32)
                volume[:n_units] = series
                vol4d = volume.reshape(rows, cols, 1, n_volumes)
                _nifti(func / f"{base}_bold.nii.gz", vol4d)
                dfunc = deriv / sub / ses_dir / "func"
                stem = f"{base}_space-{SPACE}"
                _nifti(dfunc / f"{stem}_desc-preproc_bold.nii.gz", vol4d)
                _json(dfunc / f"{stem}_desc-preproc_bold.json", {"RepetitionTime": tr})
                mask = np.zeros(n_cells, np.uint8)
                mask[:n_units] = 1
                _nifti(dfunc / f"{stem}_desc-brain_mask.nii.gz", mask.reshape(rows, cols, 1))
                if surfaces:
                    surf = np.zeros((2 * N_FSAVERAGE5, n_volumes), np.float32)
                    for k in range(n_units):
                        at = k if k < n_left else N_FSAVERAGE5 + k - n_left
                        surf[at] = volume[k]
                    for h, part in (("L", surf[:N_FSAVERAGE5]), ("R", surf[N_FSAVERAGE5:])):
                        _gifti(dfunc / f"{base}_space-fsaverage5_hemi-{h}_bold.func.gii", part, h)
                if cifti:
                    gray = np.zeros((N_CIFTI_91K, n_volumes), np.float32)
                    gray[cifti_index(n_units)] = volume[:n_units]
                    stem91 = f"{base}_space-fsLR_den-91k_bold"
                    _cifti(dfunc / f"{stem91}.dtseries.nii", gray, tr, models)
                    _json(dfunc / f"{stem91}.json", {"RepetitionTime": tr})
                    del gray
                motion = np.cumsum(0.01 * rng.standard_normal((n_volumes, 6)), axis=0)
                fd = np.abs(np.diff(motion, axis=0)).sum(axis=1)
                columns: dict[str, list[Any]] = {
                    n: motion[:, i].round(6).tolist() for i, n in enumerate(
                        ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])}
                columns["framewise_displacement"] = ["n/a", *fd.round(6).tolist()]
                columns["global_signal"] = volume[:n_units].mean(0).round(4).tolist()
                _tsv(dfunc / f"{base}_desc-confounds_timeseries.tsv", columns)
        if truth:
            positions = np.arange(n_units)
            surface_index = np.where(positions < n_left, positions,
                                     N_FSAVERAGE5 + positions - n_left)
            folder = root / "derivatives" / "ground-truth" / sub
            folder.mkdir(parents=True, exist_ok=True)
            np.savez(folder / f"{sub}_desc-truth.npz", signal=signal.astype(np.float32),
                     stimulus_ids=np.array(ids), noise_ceiling=np.full(n_units, 50.0),
                     hrf_index=np.zeros(n_units, np.int64),
                     trial_amplitudes=np.concatenate(amplitudes).astype(np.float32),
                     volume_index=positions, surface_index=surface_index)
    return root


def toy_dataset(folder: Path, **params: Any) -> Any:
    """Return a :class:`~conform_bids.BIDSDataset` on a toy study written under ``folder``."""
    from .dataset import BIDSDataset

    root = write_toy_study(folder / "study", surfaces=False)
    return BIDSDataset(location=str(root), **params)
