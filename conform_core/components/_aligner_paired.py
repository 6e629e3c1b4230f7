"""Paired alignment's input: every subject restricted to the stimuli they share.

Private to :mod:`conform_core.components.aligner`; the other mechanisms (``_aligner_cv``,
``_aligner_unpaired``) share its minimum and its NaN check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..data import ConditionData
from ..exceptions import ShapeError

if TYPE_CHECKING:
    from .aligner import Aligner

MIN_SHARED = 3
"""Fewest stimuli a paired aligner needs in common (a template of fewer cannot be centred
and still carry a direction)."""

VIA_FIX = "share a core of stimuli, or align through an encoder: via_encoder='ridge'"
"""The fix offered when subjects share too few stimuli."""


def restrict_to_shared(aligner: Aligner, subjects: list[ConditionData]) -> list[ConditionData]:
    """Return every subject restricted to the stimuli all of them saw, in the first's order."""
    shared = np.asarray(subjects[0].stimulus_ids)
    for s in subjects[1:]:
        shared = shared[np.isin(shared, s.stimulus_ids)]
    if shared.size < MIN_SHARED:
        counts = {s.subject: s.n_conditions for s in subjects}
        raise ShapeError(
            f"{type(aligner).__name__} aligns on the stimuli every subject saw, and needs at "
            f"least {MIN_SHARED}; these {len(subjects)} subjects share {shared.size} "
            f"(stimuli per subject: {counts}). To fix: {VIA_FIX}.")
    paired = [s.select(shared) for s in subjects]
    for s in paired:
        check_finite(s, "the shared stimuli")
    return paired


def restrict_to_template(aligner: Aligner, data: ConditionData) -> ConditionData:
    """Return a new subject restricted to the fitted template's stimuli (``shared_ids_``)."""
    template = np.asarray(aligner.shared_ids_)
    ids = template[np.isin(template, data.stimulus_ids)]
    if ids.size < MIN_SHARED:
        raise ShapeError(
            f"Subject {data.subject!r} shares {ids.size} of the {template.size} template "
            f"stimuli of {type(aligner).__name__}; adding a subject needs at least "
            f"{MIN_SHARED}. Give it responses to the template's stimuli (shared_ids_), "
            f"or {VIA_FIX}.")
    paired = data.select(ids)
    check_finite(paired, "the template stimuli it shares")
    return paired


def check_finite(data: ConditionData, where: str) -> None:
    """Raise a ShapeError naming the units of ``data`` with a NaN response."""
    bad = ~np.isfinite(np.asarray(data.data)).all(axis=1)
    if bad.any():
        examples = np.asarray(data.units.ids)[bad][:3].tolist()
        raise ShapeError(
            f"Subject {data.subject!r} has {int(bad.sum())} of {data.n_units} units with NaN "
            f"responses on {where} ({data.n_conditions} stimuli), e.g. {examples}. Drop them "
            "before aligning, e.g. data.take_units(np.isfinite(data.data).all(axis=1)) (or "
            "units.take(mask) for the unit metadata).")
