"""Piecewise PSN: one independent fit per parcel, each a Dask task, blended into one denoiser.

A whole cortex (91,282 grayordinates) is beyond the exact, full-rank PSN: its covariances
alone would take 62 GiB each. Signal and noise correlations are mostly local, so fitting
PSN separately within parcels of a few hundred to a few thousand units loses little (the
ground truth in ``docs/benchmarks.md`` says how much) and costs the sum of the parcels'
cubes instead of the cube of the sum.

Parcels come from the units' atlas labels (``Units.roi``), from a count of contiguous
blocks in unit order, or from labels given per unit; parcels larger than ``max_parcel``
are split into contiguous pieces. With ``overlap > 0`` each parcel is fitted on a
neighbourhood: its own units plus the ``overlap`` share (of its size) of the units
nearest to it in unit order (``Units.indices``, e.g. grayordinate or grid index) from
other parcels. A unit's output is then the weighted mean of every fit that saw it:
weight 1 from its own parcel's fit and ``BORROWED_WEIGHT`` from each neighbourhood that
borrowed it, normalised to sum to 1.

Each parcel's fit is one task: on a Dask worker (``conform fit --workers N`` or
``--scheduler``) the tasks go to the same cluster; elsewhere they run on Dask's threaded
scheduler with ``n_jobs`` threads (BLAS limited to one thread each).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from conform_core.data import Units
from conform_core.exceptions import ParameterError

__all__ = ["ATLAS", "BORROWED_WEIGHT", "DEFAULT_MAX_PARCEL", "resolve_parcels",
           "neighbourhoods", "blend_weights", "run_tasks", "largest_neighbourhood"]

ATLAS = "atlas"
"""``parcels="atlas"``: the units' atlas labels (:attr:`conform_core.data.Units.roi`)."""

DEFAULT_MAX_PARCEL = 1000
"""Largest parcel fitted as one piece (units); larger parcels (and larger data, with
``parcels=None``) are split. Exact PSN's ``auto`` costs ~units^3: on 5,000 simulated units x
2,000 conditions x 3 trials, five 1,000-unit blocks took 79 CPU-s (NMSE to the truth
0.033) and three 1,667-unit blocks 162 CPU-s (0.028), against a trial average's 3.1."""

BORROWED_WEIGHT = 0.5
"""Weight, before normalisation, of a unit's output from a neighbourhood that borrowed it
(its own parcel's output weighs 1)."""

T = TypeVar("T")


def _unit_order(units: Units | None, n_units: int) -> NDArray[np.int64]:
    """Each unit's position along the unit order: ``Units.indices``, else its position."""
    if units is not None and units.indices is not None:
        return np.asarray(units.indices, dtype=np.int64)
    return np.arange(n_units, dtype=np.int64)


def _labels(parcels: Any, units: Units | None, n_units: int) -> NDArray[Any]:
    if isinstance(parcels, str):
        if parcels != ATLAS:
            raise ParameterError(
                f"psn: parcels={parcels!r} is not known.", param="parcels", value=parcels,
                fix="Use parcels='atlas' (the units' ROI labels), a number of contiguous "
                    "blocks such as parcels=50, or one label per unit.")
        if units is None or units.roi is None:
            raise ParameterError(
                "psn: parcels='atlas' needs atlas labels on the units, and these units carry "
                "none (a dataset gives them as ROI labels, e.g. bids with an atlas dseg).",
                param="parcels", value=parcels,
                fix="Use parcels=N for N contiguous blocks of units, or give one label per unit.")
        return np.asarray(units.roi)
    if isinstance(parcels, (int, np.integer)) and not isinstance(parcels, bool):
        n = int(parcels)
        if not 1 <= n <= n_units:
            raise ParameterError(
                f"psn: parcels={n} must be between 1 and the {n_units} units.",
                param="parcels", value=parcels, fix=f"Use a number of blocks in 1..{n_units}.")
        order = np.argsort(_unit_order(units, n_units), kind="stable")
        labels = np.empty(n_units, dtype=np.int64)
        labels[order] = np.arange(n_units) * n // n_units
        return labels
    labels = np.asarray(parcels)
    if labels.ndim != 1 or labels.shape[0] != n_units:
        raise ParameterError(
            f"psn: parcels given as labels need one label per unit ({n_units}); got shape "
            f"{labels.shape}.", param="parcels", value=f"array of shape {labels.shape}",
            fix="Pass a 1-D array with one parcel label per unit, or parcels='atlas'.")
    return labels


def resolve_parcels(parcels: Any, units: Units | None, n_units: int,
                    max_parcel: int = DEFAULT_MAX_PARCEL) -> list[NDArray[np.intp]]:
    """Return the parcels as sorted arrays of unit indices, none larger than ``max_parcel``.

    Parameters
    ----------
    parcels : "atlas" or int or array-like of shape (n_units,)
        ``"atlas"``: the units' ROI labels (units labelled ``""`` form one parcel, split
        like any other); an int N: N contiguous blocks of (nearly) equal size in unit
        order; otherwise one label per unit.
    units : Units or None
        The units (their ROI labels and their order, ``indices``).
    n_units : int
        Units of the data.
    max_parcel : int, default=DEFAULT_MAX_PARCEL
        Larger parcels are cut into the fewest contiguous pieces (in unit order) of at most
        this many units.

    Returns
    -------
    list of ndarray of int
        One array per parcel, in the order of the sorted labels, then the pieces.

    Raises
    ------
    ParameterError
        An unknown string, a count out of range, labels of the wrong length, or "atlas"
        on units without ROI labels.
    """
    labels = _labels(parcels, units, n_units)
    position = _unit_order(units, n_units)
    _, inverse = np.unique(labels, return_inverse=True)
    out: list[NDArray[np.intp]] = []
    for group in range(int(inverse.max()) + 1 if n_units else 0):
        members = np.flatnonzero(inverse == group)
        members = members[np.argsort(position[members], kind="stable")]
        n_pieces = -(-members.size // max_parcel)
        for piece in np.array_split(members, n_pieces):
            out.append(np.sort(piece))
    return out


def neighbourhoods(parcels: Sequence[NDArray[np.intp]], units: Units | None, n_units: int,
                   overlap: float) -> list[NDArray[np.intp]]:
    """Return each parcel's neighbourhood: the parcel plus its nearest outside units.

    The ``round(overlap * size)`` units of other parcels closest in unit order (distance to
    the parcel's nearest unit; ties by position) join each parcel. ``overlap=0`` returns
    the parcels themselves.
    """
    if overlap <= 0:
        return list(parcels)
    position = _unit_order(units, n_units)
    out = []
    for members in parcels:
        n_extra = min(int(round(overlap * members.size)), n_units - members.size)
        if n_extra <= 0:
            out.append(members)
            continue
        own = np.sort(position[members])
        outside = np.setdiff1d(np.arange(n_units), members, assume_unique=True)
        pos = position[outside]
        slot = np.searchsorted(own, pos)
        left = np.abs(pos - own[np.clip(slot - 1, 0, own.size - 1)])
        right = np.abs(own[np.clip(slot, 0, own.size - 1)] - pos)
        distance = np.minimum(left, right)
        nearest = outside[np.lexsort((pos, distance))[:n_extra]]
        out.append(np.sort(np.concatenate([members, nearest])))
    return out


def blend_weights(parcels: Sequence[NDArray[np.intp]],
                  hoods: Sequence[NDArray[np.intp]], n_units: int) -> list[NDArray[np.float64]]:
    """Weights of each neighbourhood's outputs, summing to 1 over the fits that saw a unit."""
    raw = []
    total = np.zeros(n_units)
    for members, hood in zip(parcels, hoods):
        w = np.where(np.isin(hood, members, assume_unique=True), 1.0, BORROWED_WEIGHT)
        raw.append(w)
        np.add.at(total, hood, w)
    return [w / total[hood] for w, hood in zip(raw, hoods)]


def largest_neighbourhood(n_units: int, n_parcels_hint: int | None, max_parcel: int,
                          overlap: float) -> int:
    """Upper bound on a neighbourhood's size, known before the labels are read.

    With a parcel count the blocks have ``ceil(n_units / count)`` units; otherwise a parcel
    has at most ``max_parcel``. Each borrows ``round(overlap * size)`` more.
    """
    size = min(n_units, max_parcel)
    if n_parcels_hint:
        size = min(size, -(-n_units // n_parcels_hint))
    return min(n_units, size + int(round(max(overlap, 0.0) * size)))


def _inside_dask_worker() -> bool:
    try:
        from distributed import get_worker
        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def run_tasks(fn: Callable[[NDArray], T], data: NDArray, rows: Sequence[NDArray[np.intp]], *,
              n_jobs: int = 1) -> list[T]:
    """Run ``fn(data[r])`` for every ``r`` in ``rows`` as one Dask task each, in order.

    On a Dask worker the tasks go to the worker's cluster (``worker_client``, so the
    calling task gives its slot up while it waits), each with its own slice of the data.
    Elsewhere ``n_jobs`` > 1 runs them on the threaded scheduler, BLAS at one thread per
    task, and 1 runs them in order; each task slices the data itself, so only the slices
    being fitted are copied.
    """
    if _inside_dask_worker():
        from distributed import worker_client

        with worker_client() as client:
            # scattered, not embedded in the task graph (Dask warns about large graphs)
            futures = [client.submit(fn, client.scatter(data[r]), pure=False) for r in rows]
            return list(client.gather(futures))
    if n_jobs <= 1 or len(rows) <= 1:
        return [fn(data[r]) for r in rows]
    import dask
    from threadpoolctl import threadpool_limits

    def task(r: NDArray[np.intp]) -> T:
        return fn(data[r])

    tasks = [dask.delayed(task, pure=False)(r) for r in rows]
    with threadpool_limits(1):
        return list(dask.compute(*tasks, scheduler="threads", num_workers=int(n_jobs)))
