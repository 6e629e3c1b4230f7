"""A tiny MOSAIC-compliant folder for tests and demos (``docs/mosaic.md`` section 8).

:func:`toy_trials` builds the 18-trial toy subject as a ``TrialData``; :func:`toy_folder`
writes it with :func:`~conform_mosaic.write_subject` (plus side tables) and a synthetic
atlas file ``toy_atlas.npy``, so ``MosaicDataset(location=folder, atlas=folder/"toy_atlas.npy")``
works offline; :func:`toy_dataset` is the instance the contract kit checks (through the hook
``conform_contract_instances``). Nothing here downloads anything.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from conform_core.data import TrialData
from conform_core.io import save_npy

from ._spec import N_VERTICES

if TYPE_CHECKING:
    from .dataset import MosaicDataset

__all__ = ["TOY_METADATA", "synthetic_atlas_labels", "toy_dataset", "toy_folder", "toy_trials"]

TOY_METADATA: dict[str, Any] = {
    "visual_angle": 8.4,
    "sex": "F",
    "age": "30",
    "publication_url": "https://example.org/toy",
    "github_url": "https://github.com/example/toy",
    "owner_name": "Toy Owner",
    "owner_email": "toy@example.org",
    "dataset_name": "ToyDataset",
    "subjectID": "sub-01",
    "preprocessing_pipeline": "fMRIPrepv23.2.0",
    "beta_pipeline": "GLMsinglev1.2",
}
SIGNAL_BLOCK = np.arange(1000, 1512)
NAN_TRIAL = ("toy_train_000.jpg", 1)
NAN_VERTICES = np.array([24576, 24577])


def toy_trials(seed: int = 0) -> tuple[TrialData, NDArray[np.str_]]:
    """Return the toy subject ``sub-01_TOY``: 18 x 91,282 grayordinates, each trial's split.

    Test stimuli (3 repeats), then train (2 repeats), then artificial (2 repeats); the signal
    lives in vertices 1000-1511, every other vertex holds +-0.5 noise; trial
    ``toy_train_000`` repeat 1 is NaN at vertices 24576 and 24577.
    """
    rng = np.random.default_rng(seed)
    plan = (
        [(f"toy_test_{k:03d}.jpg", "test", 3) for k in range(2)]
        + [(f"toy_train_{k:03d}.jpg", "train", 2) for k in range(4)]
        + [(f"toy_art_{k:03d}.png", "artificial", 2) for k in range(2)]
    )
    rows, ids, splits = [], [], []
    for stimulus, split, reps in plan:
        signal = rng.standard_normal(SIGNAL_BLOCK.size)
        sign = rng.choice([-0.5, 0.5], size=N_VERTICES)
        for rep in range(reps):
            row = (
                sign * (1.0 if rep == 0 else -1.0)
                if rep < 2
                else rng.choice([-0.5, 0.5], size=N_VERTICES)
            )
            row = row.astype(np.float64)
            row[SIGNAL_BLOCK] = signal + rng.standard_normal(SIGNAL_BLOCK.size)
            if (stimulus, rep) == NAN_TRIAL:
                row[NAN_VERTICES] = np.nan
            rows.append(row)
            ids.append(stimulus)
            splits.append(split)
    return TrialData(np.array(rows), np.array(ids), subject="sub-01_TOY"), np.array(splits)


def synthetic_atlas_labels() -> NDArray[np.int64]:
    """Return a made-up HCP-MMP label vector (NOT the real atlas) covering the toy's signal block.

    L_V1 = 1000-1255, L_V2 = 1256-1511, L_FFC = 2000-2149, L_4 (motor) = 5000-5999,
    R_V1 = 30000-30499, thalamus_left = 70000-70099; every other vertex has label 0.
    """
    labels = np.zeros(N_VERTICES, np.int64)
    for (lo, hi), label in {
        (1000, 1256): 1,
        (1256, 1512): 4,
        (2000, 2150): 18,
        (5000, 6000): 8,
        (30000, 30500): 181,
        (70000, 70100): 377,
    }.items():
        labels[lo:hi] = label
    return labels


_CACHE: dict[str, Path] = {}


def toy_folder(path: str | os.PathLike[str] | None = None) -> Path:
    """Write the toy subject, its side tables and ``toy_atlas.npy`` into ``path``.

    With ``path=None`` a temporary folder is made once per process, reused, and removed at exit.
    """
    from ._writer import write_subject

    if path is None:
        if "default" in _CACHE and (_CACHE["default"] / "sub-01_TOY.hdf5").is_file():
            return _CACHE["default"]
        path = _CACHE["default"] = Path(tempfile.mkdtemp(prefix="conform-mosaic-toy-"))
        atexit.register(shutil.rmtree, path, True)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    trials, splits = toy_trials()
    write_subject(folder, trials, phases=splits, metadata=TOY_METADATA, overwrite=True)
    save_npy(folder / "toy_atlas.npy", synthetic_atlas_labels())
    return folder


def toy_dataset(folder: str | os.PathLike[str]) -> MosaicDataset:
    """Return a ``MosaicDataset`` over the toy subject, written into ``folder`` (the contract kit's).

    Three vertices (two in the signal block, one NaN in a trial) keep every check fast;
    ``nan_vertices="keep"`` keeps the NaN trial, so missing values reach the checks.
    """
    from .dataset import MosaicDataset

    return MosaicDataset(location=str(toy_folder(folder)), rois=[1000, 1001, 24576],
                         nan_vertices="keep")
