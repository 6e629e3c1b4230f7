"""MOSAIC's noise ceiling, computed from single-trial betas with unequal repeats.

MOSAIC (``ComputeNoiseceiling.compute_noiseceiling`` in mosaic-preprocessing) uses NSD's
estimator (Allen et al. 2022) generalised to stimuli with different numbers of repeats, which
is :func:`conform_core.metrics.ncsnr` with ``signal_variance="single_trials"``: pooled
across-repeat noise variance (ddof 1, weights ``r - 1``), signal variance = variance of every
single trial of the split minus the noise variance, clipped at 0. The noise ceiling is
:func:`conform_core.metrics.noise_ceiling` with ``n_trials = n`` (``1``) or each stimulus's
repeat count (``"avg"``, so ``c`` = mean over stimuli of ``1 / r``).

What is MOSAIC's own here is the data handling: betas with one stimulus id per trial, ``n``
as ``1``/``"avg"``, and NaN (not 0) where the ceiling is undefined. A NaN or infinite value in
any trial makes that vertex NaN, and so does a noise variance of 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.data import TrialData
from conform_core.exceptions import ShapeError
from conform_core.metrics import ncsnr, noise_ceiling

__all__ = ["mosaic_noise_ceiling"]


def mosaic_noise_ceiling(
    betas: Any, stimulus_ids: Any, n: int | str = "avg"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ncsnr and noise ceiling (percent) per unit, as MOSAIC computes them.

    Parameters
    ----------
    betas : ndarray of shape (n_trials, n_units)
        Single-trial betas of one split (z-scored as in the MOSAIC files).
    stimulus_ids : ndarray of shape (n_trials,)
        Stimulus of each trial; repeats share an id.
    n : {1, "avg"} or int, default="avg"
        Number of trials averaged in the target data; ``"avg"`` = each stimulus's own count.

    Returns
    -------
    ncsnr : ndarray of shape (n_units,)
        NaN where the noise variance is 0 or a trial is NaN or infinite.
    noise_ceiling : ndarray of shape (n_units,)
        Percent of variance explainable, in [0, 100]; NaN where ``ncsnr`` is.

    Raises
    ------
    ShapeError
        When no stimulus has two repeats, or ``n`` is an int > 1 that not every stimulus has.
    """
    x = np.asarray(betas, dtype=np.float64)
    ids = np.asarray(stimulus_ids).astype(str)
    if x.ndim != 2 or ids.shape != (x.shape[0],):
        raise ShapeError(
            f"betas must be (n_trials, n_units) with one stimulus id per trial; got "
            f"betas {x.shape} and {ids.shape[0]} ids."
        )
    counts = np.unique(ids, return_counts=True)[1]
    if counts.max(initial=0) < 2:
        raise ShapeError(
            "Cannot estimate a noise ceiling: no stimulus has two repeats. Noise ceilings "
            "need repeated stimuli (MOSAIC stores none for such subjects)."
        )
    if isinstance(n, str) and n != "avg":
        raise ShapeError(f"n must be 'avg' or an int >= 1; got {n!r}.")
    if not isinstance(n, str):
        if int(n) < 1:
            raise ShapeError(f"n must be 'avg' or an int >= 1; got {n!r}.")
        if int(n) > 1 and not np.all(counts == int(n)):
            raise ShapeError(
                f"n={n} needs every stimulus to have {n} repeats; counts are "
                f"{sorted(set(counts.tolist()))}. Use n='avg' for unequal repeats."
            )
    bad = ~np.isfinite(x).all(axis=0)
    if bad.any():
        x = np.where(np.isfinite(x), x, np.nan)
    snr = ncsnr(TrialData(x, ids), signal_variance="single_trials", undefined=np.nan)
    snr[bad] = np.nan
    return snr, noise_ceiling(snr, counts if n == "avg" else int(n))
