"""Coverage and diversity metrics of a selection, always next to a random selection."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._select import _max_inner, unit_distance

__all__ = ["compare_with_random", "coverage_summary", "diversity", "nearest_selected"]


def nearest_selected(pool: NDArray[np.float32], rows: NDArray[np.int64]) -> NDArray[np.float32]:
    """Distance of every pool image to its nearest image among ``rows`` (exact, FAISS)."""
    dist = unit_distance(_max_inner(pool, pool[rows]))
    dist[rows] = 0.0
    return dist


def coverage_summary(nearest: NDArray[np.float32]) -> dict[str, float]:
    """Covering radius (max), its 95th/99th percentiles, mean and median nearest distance."""
    q = np.percentile(nearest.astype(np.float64), [50, 95, 99])
    return {
        "radius": round(float(nearest.max()), 6),
        "p99": round(float(q[2]), 6),
        "p95": round(float(q[1]), 6),
        "median": round(float(q[0]), 6),
        "mean": round(float(nearest.astype(np.float64).mean()), 6),
    }


def diversity(embeddings: NDArray[np.float32]) -> dict[str, float]:
    """Vendi score (cosine kernel) and participation-ratio effective dimensionality.

    Both come from the (d x d) second-moment matrices, so they cost O(n d^2).

    Returns
    -------
    dict
        ``vendi``: exp of the Shannon entropy of the eigenvalues of K/n, K = X X^T;
        ``effective_dim``: (sum lambda)^2 / sum lambda^2 of the covariance.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    lam = np.clip(np.linalg.eigvalsh(x.T @ x / n), 0, None)
    lam = lam / lam.sum()
    nz = lam[lam > 1e-12]
    vendi = float(np.exp(-(nz * np.log(nz)).sum()))
    centred = x - x.mean(axis=0)
    cov = np.clip(np.linalg.eigvalsh(centred.T @ centred / max(n - 1, 1)), 0, None)
    ed = float(cov.sum() ** 2 / (cov ** 2).sum()) if cov.sum() > 0 else 0.0
    return {"vendi": round(vendi, 4), "effective_dim": round(ed, 4)}


def compare_with_random(pool: NDArray[np.float32], nearest: NDArray[np.float32],
                        rows: NDArray[np.int64], *, rng: np.random.Generator,
                        candidates: NDArray[np.int64] | None = None) -> dict[str, Any]:
    """Coverage and diversity of ``rows`` beside a random selection of the same size.

    Parameters
    ----------
    pool : ndarray of shape (n_pool, n_features)
        Unit-norm embeddings of the whole pool.
    nearest : ndarray of shape (n_pool,)
        Distance of each pool image to the selection ``rows``.
    rows : ndarray of int
        The selected pool rows.
    rng : numpy.random.Generator
        Draws the random selection.
    candidates : ndarray of int or None
        Rows the random selection may use (default: the whole pool).

    Returns
    -------
    dict
        ``selected`` and ``random`` blocks (coverage + diversity), ``ratio_radius`` and
        ``ratio_mean`` (selected / random; below 1 is better than random).
    """
    pick_from = np.arange(pool.shape[0]) if candidates is None else candidates
    random_rows = np.sort(rng.choice(pick_from, size=rows.size, replace=False))
    rand_nearest = nearest_selected(pool, random_rows)
    sel = {**coverage_summary(nearest), **diversity(pool[rows])}
    rnd = {**coverage_summary(rand_nearest), **diversity(pool[random_rows])}
    return {
        "n_selected": int(rows.size),
        "n_pool": int(pool.shape[0]),
        "selected": sel,
        "random": rnd,
        "ratio_radius": round(sel["radius"] / rnd["radius"], 4) if rnd["radius"] else None,
        "ratio_mean": round(sel["mean"] / rnd["mean"], 4) if rnd["mean"] else None,
        "random_nearest": rand_nearest,
    }
