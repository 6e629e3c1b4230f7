"""GLMsingle's HRFs, generated to the official package's exact values.

The official package ships two 0.1-s tables: the 20-HRF library (``getcanonicalhrflibrary.tsv``,
501 samples, 5 significant digits; its MATLAB source records that each column is SPM's
``spm_hrf(0.1, p)`` for a parameter vector of the Natural Scenes Dataset, written with
``precision 5``) and the assumed HRF (490 samples, 3 significant digits). We ship neither
table. Each is regenerated here the way it was made: SPM's double gamma
(:func:`conform_core.hrf.spm_double_gamma`, 0 to 50 s in steps of 0.1 s, divided by its sum)
for the parameters below, rounded to the table's significant digits (``"%.5g"``,
``"%.3g"``; the assumed HRF keeps its first 490 samples).

The parameters are ours: a minimax (Chebyshev) fit of the six SPM parameters of each column
to the official table, so that every generated value lies inside the rounding interval of the
official one (the closest lies 7e-4 of a last-digit unit inside, far above floating-point
noise). Rounded, the generated tables equal the official ones exactly; a test checks their
SHA-256 against the official tables' (docs/glmsingle.md, "HRF library").

Resampling to the TR follows the official Python package, sampling points included: the
library at ``0, tr, ... < ceil(n * 0.1)`` (which can add one extrapolated sample after the
end, e.g. 102 samples for stimdur 0.5 s, tr 0.5 s, where MATLAB has 101), the assumed HRF at
``0, tr, ... < (n - 1) * 0.1``, ``n`` the length after the boxcar of ``max(1,
round(stimdur / 0.1))`` samples (MATLAB rounding, on the floating-point quotient). Each HRF
is scaled to peak 1.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CANONICAL_PARAMS",
    "LIBRARY_PARAMS",
    "canonical_table",
    "library_table",
    "official_canonical",
    "official_library",
    "resample_canonical",
    "resample_library",
]

_DT = 0.1
_SAMPLES = 501  # spm_hrf(0.1, p) with a 50-s kernel: 0 .. 50 s
_CANONICAL_KEPT = 490

#: SPM double-gamma parameters (response delay, undershoot delay, response dispersion,
#: undershoot dispersion, response/undershoot ratio, onset; seconds) of the 20 library HRFs,
#: fastest first. Fitted by us so that rounding to 5 significant digits gives the official
#: table; several columns are degenerate (other parameters give the same rounded values).
LIBRARY_PARAMS: NDArray[np.float64] = np.array([
    [3.9173177579303218, 6.853667601464418, 1.0925228290055697, 0.46310027684802313,
     1.752298816618313, 0.0],
    [4.042720922367734, 6.930599204421209, 1.038852964201466, 0.5258385139954352,
     1.8363674861133579, 0.0],
    [4.301110583986781, 6.899140360292695, 1.0173840507058205, 0.6627453117479795,
     1.7824218713343232, 0.0],
    [4.040104228410486, 6.046246475339204, 0.7505203406832981, 1.3084164179593194,
     1.6658109756094543, 0.0],
    [3.780263926943602, 8.248749195588802, 0.6008347868077228, 2.7461108529269214,
     2.1967422292594274, 0.0],
    [3.878645545107935, 10.817834801472738, 0.5792883649093629, 4.506689444915675,
     2.3011899226538923, 2.8372619857454394e-06],
    [4.057744552730141, 13.622090752275295, 0.5869744863067379, 6.567528708255859,
     2.203603084932806, 0.0],
    [4.264638585871942, 16.82262975275908, 0.6238422114980626, 10.028075937534645,
     2.0567794271306665, 2.51938198962733e-06],
    [4.469552828593966, 19.756028918359412, 0.5846552943927426, 5.8683154134689754,
     2.5389185672249606, 0.0],
    [4.669861174661944, 20.43422174251638, 0.5803031666002253, 3.2407701924683296,
     3.14050849732004, 0.0],
    [4.8516361284422835, 20.742886547535907, 0.6043297041752169, 1.9942164513390341,
     3.9204966768104947, 0.06393027160331737],
    [4.68228639217442, 20.60792199901331, 0.715195773173004, 1.4338647745410782,
     4.948648661951884, 0.5396264155328068],
    [4.491717123745357, 20.404227246610677, 0.8705948385974849, 1.1594704228566868,
     6.3279057235869685, 1.0780605404625814],
    [4.411271310846671, 20.26340068582104, 1.0563873041878447, 0.9678801535465343,
     8.76604621671245, 1.5380998695869164],
    [4.327207122314678, 20.16227823020191, 1.265313375558531, 0.9128449914515336,
     12.387053301502156, 2.032882206932787],
    [4.180327864842205, 20.109711314724855, 1.5245644203037436, 0.9303239635249014,
     18.635377463762545, 2.6212278073738013],
    [4.11522145444762, 21.35215716690042, 1.8289779804983055, 1.198762316920592,
     35.66238184895969, 3.1484321885500055],
    [4.12776013674543, 9.622717799346322, 2.1263334863310384, 9623.282250899243,
     130.7074158100795, 3.6017867639936125],
    [4.054895789063541, 4.055505262294965, 2.7401114945974476, 2.742889739510208,
     42.657652825436166, 4.2602049384518565],
    [4.2280002003818264, 4.225037407798074, 3.154900660638596, 3.1550859087164613,
     14.294725745501895, 4.592529950301165],
])

#: SPM double-gamma parameters of the assumed (canonical) HRF; rounded to 3 significant
#: digits, its first 490 samples are the official table.
CANONICAL_PARAMS: NDArray[np.float64] = np.array([
    6.928967558408827, 12.655926196944483, 1.8466883665478249, 3.7347800489039806,
    2.435117364527112, 0.0])


def _round_significant(values: NDArray[np.float64], digits: int) -> NDArray[np.float64]:
    """Round to ``digits`` significant digits exactly as ``"%.{digits}g"`` prints them."""
    fmt = f"%.{digits}g"
    flat = [float(fmt % v) for v in np.asarray(values, np.float64).ravel()]
    return np.asarray(flat, np.float64).reshape(np.shape(values))


@lru_cache(maxsize=1)
def _library_table() -> NDArray[np.float64]:
    from conform_core.hrf import spm_double_gamma

    t = np.arange(_SAMPLES) * _DT
    fine = np.stack([spm_double_gamma(p, t) for p in LIBRARY_PARAMS], axis=1)
    out = _round_significant(fine, 5)
    out.flags.writeable = False
    return out


def library_table() -> NDArray[np.float64]:
    """Return the library's 0.1-s impulse responses, equal to the official table.

    Returns
    -------
    ndarray of shape (501, 20)
        Column ``h`` is HRF ``h`` (0 fastest), 0 to 50 s, 5 significant digits (a copy).
    """
    return _library_table().copy()


def canonical_table() -> NDArray[np.float64]:
    """Return the assumed HRF's 0.1-s impulse response, equal to the official table.

    Returns
    -------
    ndarray of shape (490,)
        0 to 48.9 s, 3 significant digits.
    """
    from conform_core.hrf import spm_double_gamma

    fine = spm_double_gamma(CANONICAL_PARAMS, np.arange(_SAMPLES) * _DT)[:_CANONICAL_KEPT]
    return _round_significant(fine, 3)


def _boxcar(stimdur: float) -> NDArray[np.float64]:
    """Return the official stimulus boxcar: ``max(1, round(stimdur / 0.1))`` ones (0 s: 0.1 s)."""
    sd = _DT if stimdur == 0 else float(stimdur)
    n = max(1, int(math.copysign(math.ceil(math.floor(abs(sd / _DT) * 2) / 2), sd)))
    return np.ones(n)


def _convolve(fine: NDArray[np.floating], stimdur: float) -> NDArray[np.float64]:
    box = _boxcar(stimdur)
    cols = np.asarray(fine)
    cols = cols[:, None] if cols.ndim == 1 else cols
    return np.stack([np.convolve(cols[:, j], box) for j in range(cols.shape[1])], axis=1)


def _pchip(conv: NDArray[np.float64], times: NDArray[np.float64]) -> NDArray[np.float64]:
    from scipy.interpolate import PchipInterpolator

    return PchipInterpolator(np.arange(conv.shape[0]) * _DT, conv, axis=0)(times)


def _peak_one(out: NDArray[np.float64], name: str, tr: float) -> NDArray[np.float32]:
    from conform_core.exceptions import ParameterError

    peak = out.max(axis=0)
    if np.any(peak <= 0):
        raise ParameterError(
            f"tr={tr!r} s is too coarse to sample the {name} (a column has no positive sample). "
            "Use a TR below about 10 s.")
    return (out / peak).astype(np.float32)


def resample_library(fine: NDArray[np.floating], stimdur: float, tr: float) -> NDArray[np.float32]:
    """Resample 0.1-s impulse responses for ``stimdur`` at ``tr`` as the official library is.

    Parameters
    ----------
    fine : ndarray of shape (n_fine,) or (n_fine, n_hrfs)
        Responses to a 0.1-s event, first sample at onset.
    stimdur, tr : float
        Seconds (validated by the caller).

    Returns
    -------
    ndarray of shape (n_samples, n_hrfs), float32
        Sampled at ``0, tr, ... < ceil(n * 0.1)`` (``n`` fine samples after the boxcar),
        each column scaled to peak 1.
    """
    conv = _convolve(fine, stimdur)
    times = np.arange(0, int(np.ceil(conv.shape[0] * _DT)), tr)
    return _peak_one(_pchip(conv, times), "HRF library", tr)


def resample_canonical(fine: NDArray[np.floating], stimdur: float, tr: float) -> NDArray[np.float32]:
    """Resample a 0.1-s impulse response for ``stimdur`` at ``tr`` as the official assumed HRF is.

    The table is first cast to float32 (as the official table is); samples at ``0, tr, ... <
    (n - 1) * 0.1``; scaled to peak 1. Returns shape ``(n_samples,)``, float32.
    """
    conv = _convolve(np.asarray(fine, np.float32).ravel(), stimdur)
    times = np.arange(0, (conv.shape[0] - 1) * _DT, tr)
    return _peak_one(_pchip(conv, times), "assumed HRF", tr)[:, 0]


def official_library(stimdur: float, tr: float) -> NDArray[np.float32]:
    """Return GLMsingle's 20-HRF library for ``stimdur`` s at ``tr`` s (official values).

    Returns
    -------
    ndarray of shape (n_samples, 20), float32
        Peak 1 per column; equal to the official package's library to float32 rounding.
    """
    return resample_library(_library_table(), stimdur, tr)


def official_canonical(stimdur: float, tr: float) -> NDArray[np.float32]:
    """Return GLMsingle's assumed HRF for ``stimdur`` s at ``tr`` s (official values).

    Returns
    -------
    ndarray of shape (n_samples,), float32
        Peak 1; equal to the official package's ``hrftoassume`` to float32 rounding.
    """
    return resample_canonical(canonical_table(), stimdur, tr)

