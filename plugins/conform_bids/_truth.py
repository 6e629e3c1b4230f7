"""Ground truth of a simulated study (``derivatives/ground-truth``), aligned to the loaded units.

``conform simulate --layout fmriprep`` writes ``sub-XX/sub-XX_desc-truth.npz`` (no pickles)
with ``signal`` (units x stimuli), ``stimulus_ids``, ``noise_ceiling``, ``hrf_index``,
``trial_amplitudes`` (trials x units, runs in BIDS order, events by onset), and where each
unit lies: ``volume_index`` (flat C-order voxel) and ``surface_index`` (index into [hemi-L,
hemi-R] vertices), plus ``shared_space``/``shared_space_ids``/``unit_positions`` when present.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from conform_core.data import ConditionData, GroundTruth, Units
from conform_core.exceptions import ConformError, DataFileError

__all__ = ["truth_file", "read_truth"]

_REQUIRED = ("signal", "stimulus_ids")


def truth_file(folder: Path, subject: str) -> Path:
    """Where the truth of ``sub-<subject>`` lies in the ground-truth folder."""
    return folder / f"sub-{subject}" / f"sub-{subject}_desc-truth.npz"


def read_truth(path: Path, name: str, units: Units, kind: str,
               trial_rows: NDArray[np.int64] | None, n_trials: int | None = None
               ) -> GroundTruth | None:
    """Read ``path`` and return the truth of the ``units`` it covers (None if it covers none).

    Parameters
    ----------
    path : Path
        The ``*_desc-truth.npz``.
    name : str
        Subject name (``sub-01``).
    units : Units
        The loaded units; their ``indices`` are matched with ``volume_index`` (``kind``
        "volume") or ``surface_index`` ("surface").
    trial_rows : ndarray of int or None
        Rows of ``trial_amplitudes`` for the loaded runs' events (None: leave them out).
    n_trials : int or None
        Trials of every run of the subject; amplitudes are left out when the file holds
        another count (it does not describe these events).
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            a = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error) as exc:
        raise DataFileError(f"Cannot read the ground truth {str(path)!r}: {exc}. Re-create the "
                            "study, or pass truth=None.") from None
    missing = [k for k in _REQUIRED if k not in a]
    where_key = {"volume": "volume_index", "surface": "surface_index"}.get(kind)
    if where_key is None or where_key not in a or units.indices is None:
        return None
    if missing:
        raise DataFileError(f"The ground truth {str(path)!r} lacks {missing}. Re-create the "
                            "study, or pass truth=None.")
    lookup = {int(v): i for i, v in enumerate(np.asarray(a[where_key]).tolist())}
    ours = [i for i, v in enumerate(units.indices.tolist()) if int(v) in lookup]
    if not ours:
        return None
    rows = np.array([lookup[int(units.indices[i])] for i in ours], dtype=np.int64)
    sub_units = units.take(np.array(ours, dtype=np.int64))
    try:
        ids = np.asarray(a["stimulus_ids"]).astype(str)
        signal = ConditionData(np.asarray(a["signal"])[rows], ids, subject=name, units=sub_units)
        amplitudes = None
        if "trial_amplitudes" in a and trial_rows is not None:
            amp = np.asarray(a["trial_amplitudes"])
            if (n_trials is None or amp.shape[0] == n_trials) and (
                    trial_rows.size == 0 or trial_rows.max() < amp.shape[0]):
                amplitudes = amp[trial_rows][:, rows]
        shared = None
        if "shared_space" in a and "shared_space_ids" in a:
            shared = ConditionData(np.asarray(a["shared_space"]), ids, subject=name,
                                   units=Units(ids=np.asarray(a["shared_space_ids"]).astype(str),
                                               space="synthetic-latent"))
        return GroundTruth(
            signal=signal, trial_amplitudes=amplitudes,
            hrf_index=None if "hrf_index" not in a else np.asarray(a["hrf_index"])[rows],
            noise_ceiling=None if "noise_ceiling" not in a else np.asarray(a["noise_ceiling"])[rows],
            shared_space=shared,
            unit_positions=None if "unit_positions" not in a
            else np.asarray(a["unit_positions"])[rows])
    except ConformError as exc:
        raise DataFileError(f"The ground truth {str(path)!r} is inconsistent: {exc} Re-create "
                            "the study, or pass truth=None.") from None
