"""Coverage feedback: how much of the pool's embedding space a study has allocated or collected."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

from ._metrics import coverage_summary, nearest_selected
from ._study import StudyState, check_embeddings

__all__ = ["coverage_of", "coverage_unit", "participant_counts"]

Which = Literal["collected", "allocated"]
_EMPTY = {"radius": None, "p99": None, "p95": None, "median": None, "mean": None}


def participant_counts(state: StudyState, which: Which) -> NDArray[np.int64]:
    """Participants per pool image: with recorded data, or with an allocation that stands."""
    return _counts(state, which)[0]


def _counts(state: StudyState, which: Which) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Participants and presentations per pool image: recorded, or planned for the allocated."""
    if which == "collected":
        return state.collected_counts()
    people = state.allocated_counts()
    per_person = np.full(state.n_pool, state.params.repeats, np.int64)
    per_person[list(state.core)] = state.params.core_repeats
    return people, people * per_person


def coverage_of(state: StudyState, embeddings: NDArray[np.floating],
                which: Which = "collected") -> dict[str, Any]:
    """Coverage of the pool by the collected (or allocated) images of a study.

    Parameters
    ----------
    state : StudyState
        The study.
    embeddings : ndarray of shape (n_pool, n_features)
        The pool's features, as passed to :func:`create_study`.
    which : {"collected", "allocated"}, default="collected"
        ``collected``: images with recorded data (:func:`record_collected`);
        ``allocated``: images given to participants whose allocation stands (the core
        once there is a participant).

    Returns
    -------
    dict
        JSON-ready:

        - ``which``, ``n_pool``, ``n_images`` (images in the set), ``n_participants``
          (contributions recorded, or active participants);
        - ``radius`` (covering radius: the largest distance from a pool image to its nearest
          image of the set), ``p99``, ``p95``, ``median`` and ``mean`` of that distance
          (:func:`coverage_summary`; ``None`` while the set is empty);
        - ``by_participants``: ``{"k": images that k participants have}``;
        - ``by_presentations``: ``{"m": images with m presentations over all participants}``
          (planned ones for ``allocated``);
        - ``table``: one row per (participants, presentations) with its number of images.

    Raises
    ------
    ParameterError
        If ``which`` is not one of the two choices.

    Notes
    -----
    Distances are Euclidean between L2-normalised embeddings, sqrt(2 - 2 cos), as in
    ``conform design``'s coverage report; the search is exact (:func:`nearest_selected`).
    """
    if which not in ("collected", "allocated"):
        raise ParameterError(param="which", value=which, owner="coverage_of",
                             allowed="one of 'collected', 'allocated'")
    return coverage_unit(state, check_embeddings(state, embeddings), which)


def coverage_unit(state: StudyState, x: NDArray[np.float32], which: Which) -> dict[str, Any]:
    """:func:`coverage_of` on embeddings already checked and normalised."""
    people, shown = _counts(state, which)
    rows = np.flatnonzero(people > 0).astype(np.int64)
    summary = (coverage_summary(nearest_selected(x, rows)) if rows.size else dict(_EMPTY))
    pairs = Counter(zip(people[rows].tolist(), shown[rows].tolist()))
    by_people = Counter(people[rows].tolist())
    by_shown = Counter(shown[rows].tolist())
    n_people = (len(state.contributions) if which == "collected" else len(state.active()))
    return {
        "which": which,
        "n_pool": state.n_pool,
        "n_images": int(rows.size),
        "n_participants": n_people,
        **summary,
        "by_participants": {str(k): by_people[k] for k in sorted(by_people)},
        "by_presentations": {str(m): by_shown[m] for m in sorted(by_shown)},
        "table": [{"participants": k, "presentations": m, "images": n}
                  for (k, m), n in sorted(pairs.items())],
    }
