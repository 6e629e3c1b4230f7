"""Haemodynamic response functions: the SPM double gamma, GLMsingle's library, resampling.

Everything here is generated from parameters; no table is shipped.

* :func:`spm_double_gamma` evaluates SPM's double-gamma HRF for a parameter vector.
* :func:`canonical_hrf` is GLMsingle's assumed HRF (``hrftoassume``): a double gamma that
  reproduces the official 0.1-s table to 0.3 % of its peak.
* :func:`hrf_library` is GLMsingle's 20-HRF library, each column a double gamma whose six
  parameters were fitted to the official table (ordered from fastest, index 0, to slowest,
  index 19); the worst column differs from the official one by 4e-4 of its peak.
* :func:`resample_hrf` turns 0.1-s impulse responses into responses to a stimulus of
  ``stimdur`` seconds sampled every ``tr`` seconds, each column scaled to peak 1.

The resampling follows GLMsingle: convolve with ``max(1, round(stimdur / 0.1))`` ones (ties
rounded away from zero), interpolate with PCHIP at ``0, tr, 2 tr, ...`` up to and including
the last fine sample, and divide each column by its maximum.

References
----------
Prince, J. S., et al. (2022). Improving the accuracy of single-trial fMRI response estimates
using GLMsingle. eLife, 11, e77599. https://doi.org/10.7554/eLife.77599
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import PchipInterpolator
from scipy.stats import gamma

from .exceptions import ParameterError

__all__ = [
    "CANONICAL_PARAMS",
    "FINE_DT",
    "LIBRARY_PARAMS",
    "canonical_fine",
    "canonical_hrf",
    "hrf_library",
    "library_fine",
    "n_boxcar_samples",
    "resample_hrf",
    "spm_double_gamma",
]

#: Resolution (s) of the impulse responses before resampling.
FINE_DT = 0.1

#: Double-gamma parameters (SPM order: response delay, undershoot delay, response
#: dispersion, undershoot dispersion, response/undershoot ratio, onset; seconds) of the
#: 20 library HRFs, fastest first (glmsingle.md section 4.1).
LIBRARY_PARAMS: NDArray[np.float64] = np.array(
    [
        [3.9173, 6.8537, 1.0925, 0.4631, 1.7523, 0.0],
        [4.0427, 6.9306, 1.0388, 0.5258, 1.8364, 0.0],
        [4.3013, 6.8990, 1.0175, 0.6628, 1.7823, 0.0],
        [4.0399, 6.0474, 0.7505, 1.3082, 1.6663, 0.0],
        [3.7802, 8.2487, 0.6008, 2.7461, 2.1967, 0.0],
        [3.8787, 10.8178, 0.5793, 4.5067, 2.3012, 0.0],
        [4.0578, 13.6222, 0.5870, 6.5675, 2.2036, 0.0],
        [4.2646, 16.8226, 0.6238, 10.0281, 2.0568, 0.0],
        [4.4696, 19.7561, 0.5847, 5.8684, 2.5389, 0.0],
        [4.6699, 20.4342, 0.5803, 3.2408, 3.1405, 0.0],
        [4.8516, 20.7428, 0.6043, 1.9942, 3.9205, 0.0640],
        [4.6823, 20.6079, 0.7152, 1.4339, 4.9487, 0.5396],
        [4.4917, 20.4042, 0.8706, 1.1595, 6.3279, 1.0781],
        [4.4112, 20.2634, 1.0564, 0.9679, 8.7660, 1.5381],
        [4.3272, 20.1623, 1.2653, 0.9128, 12.3871, 2.0329],
        [4.1803, 20.1098, 1.5246, 0.9303, 18.6350, 2.6212],
        [4.1152, 21.3524, 1.8290, 1.1988, 35.6603, 3.1484],
        [4.1774, 6.3748, 2.1530, 2.1329, 44.8652, 3.6023],
        [4.0551, 4.0671, 2.7412, 2.7982, 49.9993, 4.2602],
        [4.2253, 4.1869, 3.1530, 3.1270, 14.3630, 4.5925],
    ]
)

#: Double-gamma parameters of GLMsingle's canonical (assumed) HRF.
CANONICAL_PARAMS: NDArray[np.float64] = np.array([6.9277, 12.6676, 1.8455, 3.7340, 2.4394, 0.0])

_LIBRARY_SAMPLES = 501  # 0 .. 50 s at 0.1 s
_CANONICAL_SAMPLES = 490  # 0 .. 48.9 s at 0.1 s


def spm_double_gamma(params: NDArray[np.floating] | list[float], times: NDArray[np.floating]) -> (
    NDArray[np.float64]
):
    """Evaluate SPM's double-gamma HRF at ``times``, scaled to sum to one.

    Parameters
    ----------
    params : array-like of shape (6,)
        ``(p1, p2, p3, p4, p5, p6)`` in SPM order: delay of response, delay of undershoot,
        dispersion of response, dispersion of undershoot, response/undershoot ratio, onset
        (all in seconds except the ratio).
    times : ndarray of shape (n_samples,)
        Sample times in seconds.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``g(t - p6; p1/p3, p3) - g(t - p6; p2/p4, p4) / p5`` (``g`` the gamma density with
        shape and scale), zero before the onset, divided by its sum.

    Raises
    ------
    ParameterError
        If ``params`` does not have six finite values with positive dispersions and ratio.
    """
    p = np.asarray(params, dtype=np.float64)
    if p.shape != (6,) or not np.all(np.isfinite(p)) or np.any(p[2:5] <= 0):
        raise ParameterError(
            "Double-gamma parameters must be six finite numbers (p1..p6) with positive "
            f"dispersions p3, p4 and ratio p5; got {p.tolist()!r}. Use SPM's parameter order."
        )
    t = np.asarray(times, dtype=np.float64) - p[5]
    positive = t > 0
    h = np.zeros_like(t)
    tp = t[positive]
    h[positive] = gamma.pdf(tp, p[0] / p[2], scale=p[2]) - gamma.pdf(
        tp, p[1] / p[3], scale=p[3]
    ) / p[4]
    total = h.sum()
    return h / total if total != 0 else h


def n_boxcar_samples(stimdur: float) -> int:
    """Return the number of 0.1-s samples of the stimulus boxcar for ``stimdur`` seconds.

    ``max(1, round(stimdur / 0.1))`` with ties rounded away from zero (MATLAB's rounding,
    which GLMsingle uses); a duration of 0 gives one sample (0.1 s).
    """
    return max(1, math.floor(abs(stimdur) / FINE_DT * (1 + 1e-12) + 0.5))


def _check_stimdur_tr(stimdur: float, tr: float) -> tuple[float, float]:
    try:
        sd, t = float(stimdur), float(tr)
    except (TypeError, ValueError):
        raise ParameterError(
            f"stimdur and tr must be numbers in seconds; got stimdur={stimdur!r}, tr={tr!r}."
        ) from None
    if not math.isfinite(sd) or sd < 0:
        raise ParameterError(
            f"stimdur must be a finite duration >= 0 seconds; got {stimdur!r}. Pass the "
            "expected duration of neural activity per trial, e.g. stimdur=3 for a 3-s image."
        )
    if not math.isfinite(t) or t <= 0:
        raise ParameterError(
            f"tr must be a positive, finite sampling interval in seconds; got {tr!r}. "
            "Pass the repetition time of the data, e.g. tr=1.0."
        )
    return sd, t


def resample_hrf(
    fine: NDArray[np.floating], stimdur: float, tr: float, *, fine_dt: float = FINE_DT
) -> NDArray[np.float32]:
    """Convert impulse responses at ``fine_dt`` into responses to a ``stimdur`` stimulus at ``tr``.

    Parameters
    ----------
    fine : ndarray of shape (n_fine,) or (n_fine, n_hrfs)
        Responses to a brief (``fine_dt``) event sampled every ``fine_dt`` seconds, first sample
        at stimulus onset.
    stimdur : float
        Stimulus duration in seconds (0 is treated as one fine sample).
    tr : float
        Output sampling interval in seconds.
    fine_dt : float, default=0.1
        Sampling interval of ``fine``.

    Returns
    -------
    ndarray of shape (n_samples,) or (n_samples, n_hrfs), float32
        Sampled at ``0, tr, 2 tr, ...`` up to the last fine sample (inclusive), each column
        divided by its maximum (peak 1).

    Raises
    ------
    ParameterError
        If ``stimdur`` or ``tr`` is not a sensible number of seconds.
    """
    stimdur, tr = _check_stimdur_tr(stimdur, tr)
    arr = np.asarray(fine, dtype=np.float64)
    squeeze = arr.ndim == 1
    cols = arr[:, None] if squeeze else arr
    nbox = max(1, math.floor(stimdur / fine_dt * (1 + 1e-12) + 0.5))
    box = np.ones(nbox)
    conv = np.stack([np.convolve(cols[:, j], box) for j in range(cols.shape[1])], axis=1)
    t_fine = np.arange(conv.shape[0]) * fine_dt
    t_end = t_fine[-1]
    n_out = math.floor(t_end / tr + 1e-9) + 1
    t_out = np.arange(n_out) * tr
    out = PchipInterpolator(t_fine, conv, axis=0)(t_out)
    peak = out.max(axis=0)
    if np.any(peak <= 0):
        raise ParameterError(
            f"tr={tr!r} s is too coarse to sample the HRF (a column has no positive sample). "
            "Use a TR below about 10 s."
        )
    out = out / peak
    return (out[:, 0] if squeeze else out).astype(np.float32)


def library_fine(params: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
    """Return the library's 0.1-s impulse responses (501 x 20, each column summing to one).

    Parameters
    ----------
    params : ndarray of shape (n_hrfs, 6), optional
        Double-gamma parameters; :data:`LIBRARY_PARAMS` by default.
    """
    p = LIBRARY_PARAMS if params is None else np.asarray(params, dtype=np.float64)
    t = np.arange(_LIBRARY_SAMPLES) * FINE_DT
    return np.stack([spm_double_gamma(row, t) for row in p], axis=1)


def canonical_fine() -> NDArray[np.float64]:
    """Return the canonical HRF's 0.1-s impulse response (490 samples, summing to one)."""
    return spm_double_gamma(CANONICAL_PARAMS, np.arange(_CANONICAL_SAMPLES) * FINE_DT)


def hrf_library(stimdur: float, tr: float) -> NDArray[np.float32]:
    """Return GLMsingle's 20-HRF library for a stimulus of ``stimdur`` s sampled at ``tr`` s.

    Parameters
    ----------
    stimdur : float
        Duration of neural activity per trial, in seconds (0 means 0.1 s).
    tr : float
        Sampling interval of the data, in seconds.

    Returns
    -------
    ndarray of shape (n_samples, 20), float32
        Column ``h`` is the response of HRF ``h`` (0 = fastest, 19 = slowest), first sample at
        stimulus onset, peak 1. ``n_samples`` is 53 for (3 s, 1 s), 26 for (1 s, 2 s).

    Raises
    ------
    ParameterError
        If ``stimdur`` is negative or ``tr`` is not positive.

    Examples
    --------
    >>> lib = hrf_library(3.0, 1.0)
    >>> lib.shape, float(lib.max(axis=0).min())
    ((53, 20), 1.0)
    """
    return resample_hrf(library_fine(), stimdur, tr)


def canonical_hrf(stimdur: float, tr: float) -> NDArray[np.float32]:
    """Return GLMsingle's assumed (canonical) HRF for ``stimdur`` s sampled at ``tr`` s.

    Parameters
    ----------
    stimdur : float
        Duration of neural activity per trial, in seconds (0 means 0.1 s).
    tr : float
        Sampling interval of the data, in seconds.

    Returns
    -------
    ndarray of shape (n_samples,), float32
        First sample at stimulus onset, peak 1 (peak near 4.8 s after a brief event).

    Raises
    ------
    ParameterError
        If ``stimdur`` is negative or ``tr`` is not positive.

    Examples
    --------
    >>> h = canonical_hrf(3.0, 1.0)
    >>> float(h.max())
    1.0
    """
    return resample_hrf(canonical_fine(), stimdur, tr)
