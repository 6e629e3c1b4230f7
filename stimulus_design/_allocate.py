"""Allocation: which participants see which selected image.

Two modes:

``overlap``
    The first ``core`` images of the k-center order form the shared core; each later image
    goes to exactly ``overlap`` participants, always the least-loaded ones (so every
    participant ends with the same count), ties broken towards the pairs of participants
    that share the fewest images so far. Because the k-center order fills the largest gaps
    first, handing it out in turn gives every participant a subsequence that is spread over
    the whole space.
``prototypes`` (LAION-fMRI parallel forms)
    After the core come ``n_unique`` prototypes. Each prototype gets one distinct near
    neighbour (found with FAISS) per group of ``overlap`` participants, so every
    participant's non-core set covers the same regions of image space.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

from ._params import DesignParams, Plan

__all__ = ["Allocation", "allocate_stimuli"]


@dataclass(frozen=True)
class Allocation:
    """Who sees what.

    Attributes
    ----------
    core : ndarray of shape (n_core,), dtype int64
        Pool rows of the shared core.
    overlap : ndarray of shape (n_overlap,), dtype int64
        Pool rows of the non-core images.
    members : ndarray of shape (n_overlap, overlap), dtype int64
        Participant indices (0-based) that see each non-core image, sorted.
    prototype : ndarray of shape (n_overlap,), dtype int64
        For ``prototypes`` mode, the pool row of each image's prototype (else -1).
    """

    core: NDArray[np.int64]
    overlap: NDArray[np.int64]
    members: NDArray[np.int64]
    prototype: NDArray[np.int64]

    def images_of(self, participant: int) -> NDArray[np.int64]:
        """Pool rows of one participant's non-core images, in allocation order."""
        return self.overlap[(self.members == participant).any(axis=1)]


def _balanced_members(n_images: int, n_participants: int, k: int,
                      rng: np.random.Generator) -> NDArray[np.int64]:
    counts = np.zeros(n_participants, np.int64)
    pairs = np.zeros((n_participants, n_participants), np.int64)
    priority = rng.permutation(n_participants)
    members = np.empty((n_images, k), np.int64)
    for i in range(n_images):
        chosen: list[int] = []
        free = np.ones(n_participants, bool)
        for _ in range(k):
            low = counts[free].min()
            pool = np.flatnonzero(free & (counts == low))
            if chosen:
                shared = pairs[np.ix_(pool, chosen)].sum(axis=1)
                pool = pool[shared == shared.min()]
            p = int(pool[np.argmin(priority[pool])])
            chosen.append(p)
            free[p] = False
        chosen.sort()
        members[i] = chosen
        counts[chosen] += 1
        idx = np.array(chosen)
        pairs[np.ix_(idx, idx)] += 1
        priority = np.roll(priority, 1)
    return members


def _neighbours(pool: NDArray[np.float32], protos: NDArray[np.int64], taken: NDArray[np.bool_],
                need: int) -> list[NDArray[np.int64]]:
    """``need`` distinct unclaimed near neighbours per prototype (the prototype itself first)."""
    index = faiss.IndexFlatIP(pool.shape[1])
    index.add(np.ascontiguousarray(pool))
    taken = taken.copy()
    taken[protos] = True
    width = min(pool.shape[0], 4 * need + 8)
    _, found = index.search(np.ascontiguousarray(pool[protos]), width)
    out = []
    for j, proto in enumerate(protos):
        hits, cand = [int(proto)], found[j]
        while True:
            for c in cand:
                if len(hits) == need:
                    break
                if c >= 0 and not taken[c]:
                    hits.append(int(c))
                    taken[c] = True
            if len(hits) == need or width >= pool.shape[0]:
                break
            width = min(pool.shape[0], width * 4)
            cand = index.search(np.ascontiguousarray(pool[[proto]]), width)[1][0]
            cand = cand[~np.isin(cand, hits)]
        if len(hits) < need:
            raise ParameterError(
                f"Prototype allocation ran out of images: prototype {j + 1} of {protos.size} "
                f"found only {len(hits)} unclaimed neighbours, {need} needed.",
                param="per_participant", owner="DesignParams",
                fix="Lower $per_participant or the number of participants, or supply a larger pool.")
        out.append(np.array(hits, np.int64))
    return out


def allocate_stimuli(order: NDArray[np.int64], pool: NDArray[np.float32], params: DesignParams,
                     plan: Plan, rng: np.random.Generator) -> Allocation:
    """Split the selection into a shared core and per-participant non-core sets.

    Parameters
    ----------
    order : ndarray of int
        Pool rows in k-center order: ``core + n_overlap`` rows (``overlap`` mode) or
        ``core + n_prototypes`` rows (``prototypes`` mode).
    pool : ndarray of shape (n_pool, n_features)
        Unit-norm embeddings (used to find prototype neighbours).
    params, plan : DesignParams, Plan
        The design and its checked sizes.
    rng : numpy.random.Generator
        Breaks ties.

    Returns
    -------
    Allocation
    """
    core = order[: params.core]
    n_part, k = plan.n_participants, params.overlap
    if params.allocation == "overlap":
        rest = order[params.core: params.core + plan.n_overlap_images]
        members = _balanced_members(rest.size, n_part, k, rng)
        return Allocation(core, rest, members, np.full(rest.size, -1, np.int64))
    protos = order[params.core: params.core + plan.n_prototypes]
    taken = np.zeros(pool.shape[0], bool)
    taken[core] = True
    groups = n_part // k
    near = _neighbours(pool, protos, taken, groups)
    images, members, proto_of = [], [], []
    for proto, hits in zip(protos, near):
        perm = rng.permutation(n_part).reshape(groups, k)
        for g in range(groups):
            images.append(hits[g])
            members.append(np.sort(perm[g]))
            proto_of.append(proto)
    return Allocation(core, np.array(images, np.int64).reshape(-1),
                      np.array(members, np.int64).reshape(-1, k),
                      np.array(proto_of, np.int64).reshape(-1))
