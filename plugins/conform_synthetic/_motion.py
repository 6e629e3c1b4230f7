"""Head motion: six smooth random-walk motion parameters per run, and the confounds table.

The parameters come from a random stream of their own (``subject_motion_rng`` in
``_study``), so drawing them changes no other draw of the simulator: a study with
``motion=0`` is the same, bit for bit, as before motion existed, and the fMRIPrep layout can
write a subject's motion parameters even when they did not enter its data.

With ``motion > 0`` each unit of the sheet gets a loading on each parameter (normal, sd
``motion`` percent signal change), and the parameters, z-scored within the run, enter the
unit's PSC time series through them: ``psc[u, t] += sum_j loading[u, j] z_j(t)``.

:func:`confounds_table` builds fMRIPrep's ``desc-confounds_timeseries.tsv`` columns from the
parameters and a run: the six parameters, ``framewise_displacement`` (Power et al. 2012, 50-mm
head radius; the first volume has none), ``global_signal`` and the ``cosine`` high-pass basis.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["MOTION_NAMES", "confounds_table", "cosine_basis", "draw_loadings", "draw_motion",
           "framewise_displacement", "motion_psc"]

#: fMRIPrep's names of the six rigid-body parameters: translations (mm), rotations (radians).
MOTION_NAMES = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")

#: Sd of one volume's step of each random walk: 0.02 mm and 0.0004 rad (0.02 mm at 50 mm),
#: so a run of a few hundred volumes drifts by a few tenths of a mm, as a still subject does.
_STEP_SD = np.array([0.02, 0.02, 0.02, 0.0004, 0.0004, 0.0004])
#: Sd, in volumes, of the Gaussian kernel that smooths the steps (slow, smooth motion).
_SMOOTH_SD = 2.0
#: Head radius (mm) that turns rotations into displacements in the framewise displacement.
HEAD_RADIUS_MM = 50.0
#: fMRIPrep's high-pass cutoff (s) of its ``cosine`` regressors.
COSINE_CUTOFF_S = 128.0


def draw_motion(rng: np.random.Generator, run_volumes: NDArray[np.int64] | list[int]
                ) -> list[NDArray[np.float64]]:
    """Draw the motion parameters of each run: smooth random walks starting at 0.

    Parameters
    ----------
    rng : numpy.random.Generator
        The subject's motion stream.
    run_volumes : sequence of int
        Length of each run, in volumes.

    Returns
    -------
    list of ndarray of shape (n_volumes_r, 6), float64
        Columns :data:`MOTION_NAMES`.
    """
    half = int(math.ceil(3 * _SMOOTH_SD))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / _SMOOTH_SD) ** 2)
    kernel /= np.sqrt((kernel**2).sum())  # smoothed steps keep the step sd
    out = []
    for n in (int(v) for v in run_volumes):
        steps = rng.standard_normal((n + 2 * half, 6)) * _STEP_SD
        smooth = np.stack([np.convolve(steps[:, j], kernel, mode="valid") for j in range(6)],
                          axis=1)
        walk = np.cumsum(smooth[:n], axis=0)
        out.append(walk - walk[:1])
    return out


def draw_loadings(rng: np.random.Generator, n_units: int, motion: float) -> NDArray[np.float32]:
    """Draw each unit's loadings (sd ``motion`` PSC) on the six z-scored parameters.

    Drawn after every run's parameters (:func:`draw_motion`), over the whole sheet.
    """
    return rng.normal(0.0, motion, size=(n_units, 6)).astype(np.float32)


def motion_psc(parameters: NDArray[np.float64],
               loadings: NDArray[np.float32]) -> NDArray[np.float32]:
    """Return the units x time PSC that motion adds to a run (z-scored parameters)."""
    centred = parameters - parameters.mean(axis=0)
    sd = centred.std(axis=0)
    z = centred / np.where(sd > 0, sd, 1.0)
    return (loadings @ z.T.astype(np.float32)).astype(np.float32)


def framewise_displacement(parameters: NDArray[np.float64]) -> NDArray[np.float64]:
    """Power's framewise displacement (mm) of each volume; NaN for the first."""
    diff = np.abs(np.diff(parameters, axis=0))
    fd = diff[:, :3].sum(axis=1) + HEAD_RADIUS_MM * diff[:, 3:].sum(axis=1)
    return np.concatenate([[np.nan], fd])


def cosine_basis(n_volumes: int, tr: float, cutoff: float = COSINE_CUTOFF_S
                 ) -> NDArray[np.float64]:
    """Return fMRIPrep's discrete cosine high-pass basis (``cosine00`` ...), no constant.

    As nipype's ``_cosine_drift``: ``floor(2 n tr / cutoff)`` terms including the constant,
    which fMRIPrep leaves out; column ``k - 1`` is ``sqrt(2 / n) cos(pi (t + 0.5) k / n)``.
    """
    order = int(math.floor(2 * n_volumes * tr / cutoff))
    t = np.arange(n_volumes)[:, None] + 0.5
    k = np.arange(1, max(order, 1))[None, :]  # none for runs shorter than cutoff / 2
    return np.sqrt(2.0 / n_volumes) * np.cos(np.pi / n_volumes * t * k)


def confounds_table(parameters: NDArray[np.float64], run: NDArray[np.floating],
                    tr: float) -> tuple[list[str], NDArray[np.float64]]:
    """Return the columns and values (NaN = ``n/a``) of a run's fMRIPrep confounds TSV.

    Parameters
    ----------
    parameters : ndarray of shape (n_volumes, 6)
        The run's motion parameters.
    run : ndarray of shape (n_units, n_volumes)
        The run's data, over the subject's units (``global_signal`` is their mean).
    tr : float
        Repetition time (s).
    """
    cosines = cosine_basis(run.shape[1], tr)
    names = [*MOTION_NAMES, "framewise_displacement", "global_signal",
             *(f"cosine{k:02d}" for k in range(cosines.shape[1]))]
    values = np.column_stack([parameters, framewise_displacement(parameters),
                              np.asarray(run, np.float64).mean(axis=0), cosines])
    return names, values
