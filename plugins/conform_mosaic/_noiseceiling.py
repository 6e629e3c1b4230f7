"""MOSAIC's noise ceiling, computed from single-trial betas with unequal repeats.

The estimator of ``ComputeNoiseceiling.compute_noiseceiling`` (mosaic-preprocessing), which
generalises NSD's (Allen et al. 2022) to stimuli with different numbers of repeats:

1. noise variance: across-repeat variance (ddof 1) of each stimulus with >= 2 repeats, pooled
   with weights ``r - 1``;
2. total variance: variance (ddof 1) over every single trial of the split;
3. signal variance ``max(total - noise, 0)``; ``ncsnr = sqrt(signal) / sqrt(noise)``;
4. ``NC = 100 * ncsnr**2 / (ncsnr**2 + c)`` with ``c = 1/n`` for ``n=1`` and, for ``"avg"``,
   ``c`` = mean over stimuli of ``1 / r``.

A NaN in any trial makes that vertex NaN (as in MOSAIC). Note that step 2 differs from
:func:`conform_core.metrics.ncsnr`, which takes the variance of the condition means; the two
agree only asymptotically, so the MOSAIC numbers are recomputed with this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ShapeError

__all__ = ["mosaic_noise_ceiling"]


def mosaic_noise_ceiling(
    betas: Any, stimulus_ids: Any, n: int | str = "avg"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ncsnr and noise ceiling (percent) per unit, as MOSAIC computes them.

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
    noise_ceiling : ndarray of shape (n_units,)
        Percent of variance explainable, in [0, 100]; NaN where the noise variance is 0 or a
        trial is NaN.

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
    _, group, counts = np.unique(ids, return_inverse=True, return_counts=True)
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
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_x = x[order]
    means = np.add.reduceat(sorted_x, starts, axis=0) / counts[:, None]
    deviation = sorted_x - np.repeat(means, counts, axis=0)
    squares = np.add.reduceat(deviation * deviation, starts, axis=0)
    repeated = counts >= 2
    noise_var = squares[repeated].sum(axis=0) / (counts[repeated] - 1).sum()
    total_var = np.var(x, axis=0, ddof=1)
    signal_var = np.maximum(total_var - noise_var, 0.0)
    signal_var[np.isnan(total_var - noise_var)] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.sqrt(signal_var) / np.sqrt(noise_var)
        c = float(np.mean(1.0 / counts)) if n == "avg" else 1.0 / int(n)
        ceiling = 100.0 * snr**2 / (snr**2 + c)
    return snr, ceiling
