"""Threshold criteria of PSN: how many leading basis dimensions to keep.

Every criterion works on per-dimension signal variances ``s`` and noise variances
``n`` (already in the global order) and the trial-count divisor ``t``:

- recovery ``R(k) = sum_{d<=k} (s_d - n_d/t)`` with ``R(0) = 0``;
- signal ``S(k) = sum_{d<=k} s_d``.

K is a count of leading dimensions (0..D); ``argmax`` ties go to fewer dimensions.
The rules, including the "best among allowable thresholds" variants, follow
``shared/docs/psn_gsn.md`` section 3.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["recovery_curve", "signal_curve", "candidates", "snap_to_allowable",
           "max_tradeoff", "select_k"]


def recovery_curve(s: NDArray, n: NDArray, t: float) -> NDArray[np.float64]:
    """``[0, cumsum(s - n/t)]`` (length D+1)."""
    return np.concatenate([[0.0], np.cumsum(s - n / t)])


def signal_curve(s: NDArray) -> NDArray[np.float64]:
    """``[0, cumsum(s)]`` (length D+1)."""
    return np.concatenate([[0.0], np.cumsum(s)])


def candidates(allowable: Any, n_dims: int) -> NDArray[np.int64]:
    """Sorted unique integer thresholds from ``allowable``, clipped to [0, n_dims]."""
    values = np.unique(np.asarray(allowable).ravel().astype(int))
    return values[(values >= 0) & (values <= n_dims)]


def snap_to_allowable(k: int, allowable: NDArray) -> int:
    """Nearest allowable value to ``k`` (ties round up)."""
    allowable = np.asarray(allowable)
    if k in allowable:
        return int(k)
    dist = np.abs(allowable - k)
    return int(allowable[dist == dist.min()].max())


def _argmax_allowable(curve: NDArray, allowable: Any) -> int:
    cand = candidates(allowable, len(curve) - 1)
    if cand.size == 0:
        return int(np.argmax(curve))
    return int(cand[int(np.argmax(curve[cand]))])


def _first_reach(curve: NDArray, target: float, allowable: Any) -> int:
    cand = candidates(allowable, len(curve) - 1)
    if cand.size == 0:
        return 0
    eligible = cand[curve[cand] >= target]
    return int(eligible.min()) if eligible.size else int(cand.max())


def max_tradeoff(s: NDArray, n: NDArray, t: float, allowable: Any = None) -> int:
    """Return the point of the descending limb of R farthest from the peak-to-all-dims chord.

    In coordinates ``x = S(k)/S(D)`` and ``y = (R(k) - R(D)) / (R(k*) - R(D))`` on
    ``k = k*..D`` (``k* = argmax R``), return the first ``k`` that maximises the
    distance to the straight line from ``(x(k*), 1)`` to ``(1, 0)``. Falls back to k*
    when there is no signal or no usable limb.
    """
    s = np.asarray(s, dtype=float)
    n_dims = s.size
    if n_dims == 0:
        return 0
    cand = None if allowable is None else candidates(allowable, n_dims)

    def finish(k: int) -> int:
        if cand is None or cand.size == 0 or k in cand:
            return int(k)
        return snap_to_allowable(k, cand)

    rec = recovery_curve(s, np.asarray(n, dtype=float), t)
    sig = signal_curve(s)
    total = sig[-1]
    k_peak = int(np.argmax(rec))
    if total <= 0 or n_dims - k_peak < 2 or rec[k_peak] - rec[n_dims] <= 1e-12:
        return finish(k_peak)
    limb = np.arange(k_peak, n_dims + 1)
    x = sig[limb] / total
    y = (rec[limb] - rec[n_dims]) / (rec[k_peak] - rec[n_dims])
    x0, y0, x1, y1 = x[0], y[0], x[-1], y[-1]
    length = np.hypot(x1 - x0, y1 - y0)
    if length <= 1e-12:
        return finish(k_peak)
    dist = np.abs((y1 - y0) * x - (x1 - x0) * y + x1 * y0 - y1 * x0) / length
    if cand is not None:
        on_limb = np.isin(limb, cand)
        if on_limb.any():
            return int(limb[on_limb][int(np.argmax(dist[on_limb]))])
        return finish(int(limb[int(np.argmax(dist))]))
    return int(limb[int(np.argmax(dist))])


def _variance_k(curve: NDArray, fraction: float, allowable: Any) -> int:
    fraction = float(np.clip(fraction, 0, 1))
    total = curve[-1]
    if allowable is not None:
        return _first_reach(curve, fraction * total, allowable)
    if fraction == 0 or total <= 0:
        return 0
    reached = np.flatnonzero(curve >= fraction * total)
    return int(min(reached[0], len(curve) - 1)) if reached.size else 0


def _alpha_k(s: NDArray, rec: NDArray, alpha: float, allowable: Any) -> int:
    n_dims = s.size
    k_pred = int(np.argmax(rec))
    sig = signal_curve(s)
    total = sig[-1]
    if total <= 0:
        return 0
    target = sig[k_pred] + alpha * max(0.0, total - sig[k_pred])
    reached = np.flatnonzero(sig >= target)
    k = int(reached[0]) if reached.size else n_dims
    k = min(max(k, k_pred), n_dims)
    if allowable is not None:
        cand = candidates(allowable, n_dims)
        eligible = cand[(cand >= k_pred) & (sig[cand] >= target)]
        k = int(eligible.min()) if eligible.size else snap_to_allowable(k, cand)
    return k


def select_k(s: NDArray, n: NDArray, t: float, *, criterion: str,
             eigenvalues: NDArray | None = None, variance_threshold: float = 0.99,
             alpha: float | None = None, allowable: Any = None,
             use_signal_for_eigen: bool = False) -> tuple[int, NDArray[np.float64]]:
    """Choose K for one curve; return K and the objective curve the criterion used.

    Parameters
    ----------
    s, n : ndarray of shape (n_dims,)
        Per-dimension signal and noise variance, in the global order.
    t : float
        Trial-count divisor.
    criterion : {"prediction", "max-tradeoff", "variance", "variance_eigenvalues"}
        The criterion (``alpha``, when not None, overrides it).
    eigenvalues : ndarray or None
        Basis eigenvalues (needed by "variance_eigenvalues").
    variance_threshold : float, default=0.99
        Target fraction for the variance criteria.
    alpha : float or None
        Interpolation between the prediction peak (0) and all dimensions (1).
    allowable : array-like or None
        Restrict K to these values (best among them).
    use_signal_for_eigen : bool, default=False
        For "variance_eigenvalues" with the PCA basis: use S instead of eigenvalues.

    Returns
    -------
    k : int
    objective : ndarray of shape (n_dims + 1,)
    """
    rec = recovery_curve(s, n, t)
    if alpha is not None:
        return _alpha_k(s, rec, alpha, allowable), rec
    if criterion == "prediction":
        k = _argmax_allowable(rec, allowable) if allowable is not None else int(np.argmax(rec))
        return k, rec
    if criterion == "max-tradeoff":
        return max_tradeoff(s, n, t, allowable), rec
    if criterion == "variance":
        curve = signal_curve(s)
        return _variance_k(curve, variance_threshold, allowable), curve
    if criterion == "variance_eigenvalues":
        if use_signal_for_eigen:
            curve = signal_curve(s)
        else:
            if eigenvalues is None:  # guarded earlier by option validation
                raise ValueError("criterion 'variance_eigenvalues' needs basis eigenvalues.")
            curve = signal_curve(np.maximum(eigenvalues, 0))
        return _variance_k(curve, variance_threshold, allowable), curve
    raise ValueError(f"unknown criterion {criterion!r}")
