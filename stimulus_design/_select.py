"""Coverage selection: exact greedy k-center (farthest point) with lazy bounds and FAISS.

The greedy k-center rule (Gonzalez 1985) adds, one at a time, the pool image farthest from
everything selected so far; the result covers the pool within twice the optimal radius.
The plain rule updates the distance of every pool image after every pick, which costs
``n_pool x d`` memory traffic per pick. :func:`select_kcenter` gives the *same* sequence of
picks but keeps stale upper bounds: distances only ever shrink, so a pool image whose stale
bound is below a threshold cannot be the farthest one and need not be updated. Only a small
candidate set (the images with the largest bounds) is kept exact after every pick; when it
runs dry the next candidates are brought up to date in one batched inner-product search
(``faiss.knn``, a blocked GEMM), so every (image, centre) pair is evaluated at most once.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

__all__ = ["KCenterResult", "select_kcenter", "select_kcenter_numpy", "select_stratified",
           "unit_distance"]


@dataclass(frozen=True)
class KCenterResult:
    """The outcome of a greedy k-center selection.

    Attributes
    ----------
    order : ndarray of shape (n_select,), dtype int64
        Pool rows in the order they were picked (every prefix is itself a good cover).
    pick_radius : ndarray of shape (n_select,), dtype float32
        Distance of each pick to the images picked before it (``inf`` for the first):
        the covering radius of the prefix just before that pick.
    nearest : ndarray of shape (n_pool,), dtype float32
        Distance of every pool image to its nearest selected image.
    """

    order: NDArray[np.int64]
    pick_radius: NDArray[np.float32]
    nearest: NDArray[np.float32]


_SMALL = 1 << 22


def unit_distance(inner: NDArray[np.floating]) -> NDArray[np.float32]:
    """Euclidean distance between unit vectors from their inner product: sqrt(2 - 2 cos)."""
    return np.sqrt(np.maximum(2.0 - 2.0 * np.asarray(inner, dtype=np.float32), 0.0))


def _max_inner(queries: NDArray[np.float32], base: NDArray[np.float32]) -> NDArray[np.float32]:
    """Largest inner product of each query with any row of ``base`` (FAISS, blocked GEMM).

    Small problems go through one numpy GEMM (FAISS's thread start-up costs more there).
    """
    if queries.shape[0] * base.shape[0] <= _SMALL:
        return (queries @ base.T).max(axis=1)
    sims, _ = faiss.knn(np.ascontiguousarray(queries), np.ascontiguousarray(base), 1,
                        faiss.METRIC_INNER_PRODUCT)
    return sims[:, 0]


def _check_k(n_select: int, n_pool: int) -> None:
    if not 1 <= n_select <= n_pool:
        raise ParameterError(
            f"Cannot select {n_select} images from a pool of {n_pool}: the selection size must "
            f"be in [1, {n_pool}]. Lower the selection size or supply a larger pool."
        )


def select_kcenter(embeddings: NDArray[np.float32], n_select: int, *, first: int = 0,
                   n_candidates: int | None = None) -> KCenterResult:
    """Pick ``n_select`` rows by exact greedy k-center on unit vectors.

    Parameters
    ----------
    embeddings : ndarray of shape (n_pool, n_features), float32
        L2-normalised pool embeddings.
    n_select : int
        Number of images to pick, in ``[1, n_pool]``.
    first : int, default=0
        Row of the first pick.
    n_candidates : int or None, default=None
        Size of the exact candidate set (default ``clip(n_pool // 40, 1024, 16384)``).

    Returns
    -------
    KCenterResult

    Notes
    -----
    Picks equal those of :func:`select_kcenter_numpy` up to float32 rounding ties.
    Memory: the pool plus three ``n_pool`` vectors and the ``n_select`` centres.
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, d = x.shape
    _check_k(n_select, n)
    q_size = n_candidates or int(np.clip(n // 40, 1024, 16384))
    bound = np.full(n, np.inf, np.float32)      # upper bound of the distance to the selection
    updated = np.zeros(n, np.int64)             # number of centres the bound accounts for
    alive = np.ones(n, bool)
    centres = np.empty((n_select, d), np.float32)
    order = np.empty(n_select, np.int64)
    pick_radius = np.empty(n_select, np.float32)

    def refresh(rows: NDArray[np.int64], m: int) -> None:
        rows = rows[updated[rows] < m]
        if rows.size == 0:
            return
        rows = rows[np.argsort(updated[rows], kind="stable")]
        for part in np.array_split(rows, max(1, min(8, rows.size // 512))):
            start = int(updated[part[0]])
            dist = unit_distance(_max_inner(x[part], centres[start:m]))
            bound[part] = np.minimum(bound[part], dist)
        updated[rows] = m

    cand = np.empty(0, np.int64)
    cand_x = np.empty((0, d), np.float32)
    threshold = np.inf
    pick, radius = int(first), np.float32(np.inf)
    for i in range(n_select):
        order[i], pick_radius[i] = pick, radius
        centres[i] = x[pick]
        alive[pick] = False
        bound[pick] = 0.0
        updated[pick] = n_select
        m = i + 1
        if m == n_select:
            break
        if cand.size:
            dist = unit_distance(cand_x @ centres[i])
            bound[cand] = np.minimum(bound[cand], dist)
            updated[cand] = m
        while True:
            if cand.size:
                values = np.where(alive[cand], bound[cand], -1.0)
                j = int(np.argmax(values))
                if values[j] >= threshold:
                    break
            rows = np.flatnonzero(alive)
            if rows.size > q_size:
                cut = np.partition(bound[rows], rows.size - q_size)[rows.size - q_size]
                rows = rows[bound[rows] >= cut]
            else:
                cut = -np.inf
            refresh(rows, m)
            if np.isinf(cut) and cut > 0:   # bounds never computed yet: compute and retry
                cand, threshold = np.empty(0, np.int64), np.inf
                continue
            threshold = cut
            cand = rows[bound[rows] >= cut]
            cand_x = x[cand]
        pick, radius = int(cand[j]), bound[cand[j]]
    refresh(np.flatnonzero(updated < n_select), n_select)
    bound[order] = 0.0
    return KCenterResult(order, pick_radius, bound)


def select_kcenter_numpy(embeddings: NDArray[np.float32], n_select: int, *,
                         first: int = 0) -> KCenterResult:
    """Plain greedy k-center: update every pool distance after every pick (the reference)."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = x.shape[0]
    _check_k(n_select, n)
    nearest = np.full(n, np.inf, np.float32)
    order = np.empty(n_select, np.int64)
    pick_radius = np.empty(n_select, np.float32)
    pick = int(first)
    for i in range(n_select):
        order[i], pick_radius[i] = pick, nearest[pick]
        np.minimum(nearest, unit_distance(x @ x[pick]), out=nearest)
        nearest[pick] = 0.0
        pick = int(np.argmax(nearest))
    nearest[order] = 0.0
    return KCenterResult(order, pick_radius, nearest)


def _quotas(counts: NDArray[np.int64], n_select: int) -> NDArray[np.int64]:
    """Split ``n_select`` in proportion to ``counts`` (largest remainder, at least 1 each)."""
    share = counts / counts.sum() * n_select
    quota = np.minimum(np.maximum(np.floor(share).astype(np.int64), 1), counts)
    while quota.sum() > n_select:
        j = int(np.argmax(np.where(quota > 1, quota - share, -np.inf)))
        quota[j] -= 1
    while quota.sum() < n_select:
        j = int(np.argmax(np.where(quota < counts, share - quota, -np.inf)))
        quota[j] += 1
    return quota


def select_stratified(embeddings: NDArray[np.float32], categories: NDArray[np.str_],
                      n_select: int, *, rng: np.random.Generator) -> KCenterResult:
    """Greedy k-center inside each category, with quotas proportional to category size.

    The per-category picks are merged by their pick radius (largest first), so the merged
    order still fills the largest gaps first. ``nearest`` is measured against the whole
    selection.
    """
    n = embeddings.shape[0]
    _check_k(n_select, n)
    names, inverse, counts = np.unique(categories, return_inverse=True, return_counts=True)
    if n_select < names.size:
        raise ParameterError(
            f"Stratified selection needs at least one image per category: {names.size} "
            f"categories but only {n_select} images to select. Select at least {names.size} "
            "images, or drop --stratify."
        )
    quota = _quotas(counts, n_select)
    picks, radii, rank = [], [], []
    for c, q in enumerate(quota):
        rows = np.flatnonzero(inverse == c)
        result = select_kcenter(embeddings[rows], int(q), first=int(rng.integers(rows.size)))
        picks.append(rows[result.order])
        radii.append(result.pick_radius)
        rank.append(np.arange(q))
    order, radius, within = (np.concatenate(v) for v in (picks, radii, rank))
    merged = np.lexsort((order, within, -np.where(np.isinf(radius), np.float32(1e9), radius)))
    order, radius = order[merged], radius[merged]
    nearest = unit_distance(_max_inner(np.ascontiguousarray(embeddings), embeddings[order]))
    nearest[order] = 0.0
    return KCenterResult(order, radius.astype(np.float32), nearest)
