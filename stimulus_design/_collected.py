"""Data in, slots back: record a participant's collected data, release unscanned participants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np

from conform_core.exceptions import ParameterError

from ._study import StudyState, _rows

__all__ = ["record_collected", "release_participants"]


def record_collected(state: StudyState, contributor: str,
                     presentations: Mapping[str, int]) -> StudyState:
    """Record one participant's accepted data: images and how often each was shown.

    Parameters
    ----------
    state : StudyState
        The current state (not modified).
    contributor : str
        A participant label of the study (its status becomes ``collected``), or any other
        unique name for locally directed data (e.g. ``"lab-x/sub-01"``).
    presentations : mapping of str to int
        Stimulus id -> number of presentations with data (at least 1).

    Returns
    -------
    StudyState
        With the counts added and ``revision`` + 1.

    Raises
    ------
    ParameterError
        If ``contributor`` was recorded before, a participant was released, an id is not in
        the pool, or a count is below 1.
    """
    if contributor in state.contributions:
        raise ParameterError(param="contributor", value=contributor, owner="record_collected",
                             allowed="a name not recorded before",
                             fix="Each participant's data are recorded once.")
    row_of = {s: j for j, s in enumerate(state.ids)}
    rows = _rows(list(presentations), row_of, "presentations", "record_collected")
    counts = [int(v) for v in presentations.values()]
    if not counts or min(counts) < 1:
        raise ParameterError(param="presentations", value=dict(presentations),
                             owner="record_collected",
                             allowed="a non-empty mapping of stimulus id -> presentations >= 1")
    people, shown = state.collected_counts()
    people[rows] += 1
    shown[rows] += counts
    collected = tuple((int(r), int(people[r]), int(shown[r])) for r in np.flatnonzero(people))
    participants = list(state.participants)
    for i, p in enumerate(participants):
        if p.label == contributor:
            if p.status == "released":
                raise ParameterError(param="contributor", value=contributor,
                                     owner="record_collected",
                                     allowed="a participant whose allocation stands",
                                     fix="Released participants cannot deliver data.")
            participants[i] = replace(p, status="collected")
    return replace(state, participants=tuple(participants), collected=collected,
                   contributions=state.contributions + (contributor,),
                   revision=state.revision + 1)


def release_participants(state: StudyState, labels: Iterable[str]) -> StudyState:
    """Give back the allocations of participants who will not be scanned.

    Their non-core images count against their quotas no more; the labels are not reused.

    Raises
    ------
    ParameterError
        If a label is unknown or its data were already recorded.
    """
    wanted = set(labels)
    known = {p.label: p for p in state.participants}
    for label in sorted(wanted):
        if label not in known or known[label].status == "collected":
            raise ParameterError(param="labels", value=label, owner="release_participants",
                                 allowed="labels of participants without recorded data")
    participants = tuple(replace(p, status="released") if p.label in wanted else p
                         for p in state.participants)
    return replace(state, participants=participants, revision=state.revision + 1)
