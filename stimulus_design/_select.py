"""Coverage selection: exact greedy k-center (farthest point) in batched passes.

The greedy k-center rule (Gonzalez 1985) adds, one at a time, the pool image farthest from
everything selected so far; the result covers the pool within twice the optimal radius.
The plain rule updates the distance of every pool image after every pick: ``n_pool x d``
memory traffic per pick (a matrix-vector product, bandwidth-bound). :func:`select_kcenter`
makes the *same* picks in passes of up to ``batch`` picks each:

1. The ``n_candidates`` images farthest from the selection (exact distances) form a candidate
   set. Every other image is at most ``cut`` (the next largest distance) from the selection.
2. Greedy k-center runs inside the candidate set, using the candidates' Gram matrix (one
   small GEMM), for as long as the farthest candidate is at least ``cut`` from the selection.
   Such a candidate is then the farthest image of the whole pool, so each pick is exactly the
   plain rule's pick.
3. All pool distances are brought up to date against the pass's new centres in one blocked
   GEMM (``||x - c||^2 = 2 - 2 x.c`` for unit vectors), float32, in row blocks of fixed size.
   Rows that provably cannot get closer are skipped by the triangle inequality: if ``a`` is
   the nearest centre of ``x`` and every new centre ``c`` has ``|a - c| >= 2 |x - a|``, then
   ``|x - c| >= |x - a|``.

The distances are exact after the last pass, so the coverage report needs no further search.
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
_ROW_BLOCK = 16384      # rows per GEMM block (fixed: results do not depend on thread count)
_TRIANGLE_EPS = 1e-3    # slack for float32 rounding in the triangle-inequality skip


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


def _update(x: NDArray[np.float32], nearest: NDArray[np.float32], owner: NDArray[np.int32],
            new: NDArray[np.float32], offset: int, need: NDArray[np.bool_] | None) -> None:
    """Lower ``nearest``/``owner`` to the new centres ``new`` (numbered from ``offset``).

    Only rows flagged in ``need`` can change. Row blocks where most rows are flagged are
    multiplied in place (no copy); sparse blocks are gathered first.
    """
    n = x.shape[0]
    for start in range(0, n, _ROW_BLOCK):
        stop = min(n, start + _ROW_BLOCK)
        if need is None:
            rows = np.arange(start, stop)
        else:
            flagged = np.flatnonzero(need[start:stop])
            if flagged.size == 0:
                continue
            rows = start + flagged
        block = x[start:stop] if rows.size > 0.85 * (stop - start) else x[rows]
        if block.shape[0] != rows.size:
            rows = np.arange(start, stop)
        sims = block @ new.T
        best = sims.argmax(axis=1)
        dist = unit_distance(sims[np.arange(rows.size), best])
        closer = dist < nearest[rows]
        rows = rows[closer]
        nearest[rows] = dist[closer]
        owner[rows] = offset + best[closer].astype(np.int32)


def select_kcenter(embeddings: NDArray[np.float32], n_select: int, *, first: int = 0,
                   n_candidates: int | None = None, batch: int = 512) -> KCenterResult:
    """Pick ``n_select`` rows by exact greedy k-center on unit vectors, in batched passes.

    Parameters
    ----------
    embeddings : ndarray of shape (n_pool, n_features), float32
        L2-normalised pool embeddings.
    n_select : int
        Number of images to pick, in ``[1, n_pool]``.
    first : int, default=0
        Row of the first pick.
    n_candidates : int or None, default=None
        Size of the exact candidate set per pass (default ``min(n_pool, 2048)``). Its Gram
        matrix is computed once per pass, so keep it in the low thousands.
    batch : int, default=512
        Largest number of picks per pass, i.e. centres per update GEMM.

    Returns
    -------
    KCenterResult

    Notes
    -----
    Picks equal those of :func:`select_kcenter_numpy` up to float32 rounding ties.
    If the pool holds fewer distinct vectors than ``n_select``, the remaining picks are the
    lowest unselected rows (all at distance 0).
    Cost: about ``n_pool x n_select x d`` multiply-adds in GEMMs (fewer where the triangle
    inequality skips rows), plus ``n_candidates^2 x d`` per pass. Memory: the pool, two
    ``n_pool`` vectors, the ``n_select`` centres and one ``16384 x batch`` block.
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, d = x.shape
    _check_k(n_select, n)
    n_cand = min(n, int(n_candidates or 2048))
    batch = max(1, int(batch))
    nearest = np.full(n, np.inf, np.float32)    # exact distance to the selection
    owner = np.zeros(n, np.int32)                # index (in pick order) of that nearest centre
    centres = np.empty((n_select, d), np.float32)
    order = np.empty(n_select, np.int64)
    pick_radius = np.empty(n_select, np.float32)
    picks = np.array([int(first)], np.int64)
    radii = np.array([np.inf], np.float32)
    m = 0
    while True:
        b = picks.size
        order[m:m + b], pick_radius[m:m + b] = picks, radii
        centres[m:m + b] = x[picks]
        new = centres[m:m + b]
        if m:
            # distance from every existing centre to its nearest new centre
            moved = unit_distance(_rowmax(centres[:m], new))
            need = moved[owner] < 2.0 * nearest + _TRIANGLE_EPS
        else:
            need = None
        _update(x, nearest, owner, new, m, need)
        nearest[picks] = 0.0
        owner[picks] = np.arange(m, m + b, dtype=np.int32)
        m += b
        if m == n_select:
            break
        picks, radii = _next_picks(x, nearest, n_cand, min(batch, n_select - m))
        if picks.size == 0:     # every row is a duplicate of a selected one
            chosen = np.zeros(n, bool)
            chosen[order[:m]] = True
            picks = np.flatnonzero(~chosen)[: n_select - m].astype(np.int64)
            radii = np.zeros(picks.size, np.float32)
    nearest[order] = 0.0
    return KCenterResult(order, pick_radius, nearest)


def _rowmax(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """Largest inner product of each row of ``a`` with the rows of ``b``, in row blocks."""
    out = np.empty(a.shape[0], np.float32)
    for start in range(0, a.shape[0], _ROW_BLOCK):
        out[start:start + _ROW_BLOCK] = (a[start:start + _ROW_BLOCK] @ b.T).max(axis=1)
    return out


def _next_picks(x: NDArray[np.float32], nearest: NDArray[np.float32], n_cand: int,
                limit: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Return the next greedy picks (at most ``limit``), all provably the plain rule's picks."""
    n = x.shape[0]
    if n_cand < n:
        part = np.argpartition(nearest, n - n_cand - 1)
        cand = np.sort(part[n - n_cand:])
        cut = nearest[part[n - n_cand - 1]]     # no other row is farther than this
    else:
        cand, cut = np.arange(n), np.float32(-np.inf)
    cand_x = x[cand]
    gram = cand_x @ cand_x.T
    t = nearest[cand].copy()
    picks: list[int] = []
    radii: list[float] = []
    while len(picks) < limit:
        j = int(np.argmax(t))
        if t[j] < cut or t[j] <= 0.0:
            break
        picks.append(int(cand[j]))
        radii.append(float(t[j]))
        np.minimum(t, unit_distance(gram[j]), out=t)
        t[j] = 0.0
    return np.asarray(picks, np.int64), np.asarray(radii, np.float32)


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
            f"categories but only {n_select} images to select.", param="stratify",
            owner="DesignParams", fix=f"Select at least {names.size} images, or turn $stratify off."
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
