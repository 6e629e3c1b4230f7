"""Procrustes alignment: each subject mapped onto a shared template through shared stimuli."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core import Aligner, ConditionData, ShapeError, Units
from conform_core.constraints import Interval
from conform_core.validation import check_int_param

__all__ = ["ProcrustesAligner"]

_N_COMPONENTS_FIX = "Use None for the largest valid value."


def _orthogonal_map(
    source: NDArray[np.float64], target: NDArray[np.float64]
) -> NDArray[np.float64]:
    """R (units x k) with orthonormal columns minimising ||source @ R - target||_F."""
    u, _, vt = np.linalg.svd(source.T @ target, full_matrices=False)
    return u @ vt


class ProcrustesAligner(Aligner):
    """Align subjects with orthogonal (Procrustes) maps onto an iteratively refined template.

    Each subject's condition means on the stimuli every subject saw, centred per unit, are
    rotated onto a template of ``n_components`` dimensions (generalised Procrustes, as in
    hyperalignment): the template starts as the leading principal components of the first
    subject and is replaced by the average of the aligned subjects ``n_iter`` times.
    ``inverse_transform`` maps shared responses back with the transpose of the map.

    Parameters
    ----------
    n_components : int or None, default=None
        Dimension of the shared space (default: the smallest of the number of shared
        stimuli minus one and every subject's number of units).
    n_iter : int, default=3
        Template refinements.

    Attributes
    ----------
    subjects_ : list of str
        Subjects with a map.
    maps_ : dict of str to ndarray of shape (n_units, n_components_)
        Orthonormal map of each subject into the shared space.
    means_ : dict of str to ndarray of shape (n_units,)
        Each subject's unit means over the shared training stimuli.
    template_ : ConditionData
        The shared-space template (n_components_ x shared stimuli).
    n_components_ : int
        Dimension of the shared space.
    """

    # the upper bound of n_components (shared stimuli and units) is checked in fit
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_components": [Interval(int, 1, None), None],
        "n_iter": [Interval(int, 0, None)],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "n_components": _N_COMPONENTS_FIX,
        "n_iter": "Use a small count such as 3 (0 keeps the first template).",
    }

    def __init__(self, n_components: int | None = None, n_iter: int = 3):
        self.n_components = n_components
        self.n_iter = n_iter

    def _fit(self, subjects: list[ConditionData]) -> ProcrustesAligner:
        shared = subjects[0].stimulus_ids
        for s in subjects[1:]:
            shared = shared[np.isin(shared, s.stimulus_ids)]
        if shared.size < 3:
            raise ShapeError(
                f"ProcrustesAligner needs at least 3 stimuli seen by every subject; got {shared.size}. "
                "Give the subjects a shared core of stimuli."
            )
        limit = min([shared.size - 1] + [s.n_units for s in subjects])
        # types and lower bounds were checked by check_params; the bound from the data is here
        k = (
            check_int_param(
                self.n_components,
                name="n_components",
                owner=self,
                low=1,
                high=limit,
                none_ok=True,
                fix=_N_COMPONENTS_FIX,
            )
            or limit
        )
        n_iter = int(self.n_iter)
        blocks, self.means_ = [], {}
        for s in subjects:
            x = np.asarray(s.select(shared).as_targets(), dtype=np.float64)
            if not np.isfinite(x).all():
                raise ShapeError(
                    f"Subject {s.subject!r} has NaN responses on shared stimuli; "
                    "drop unmeasured units before aligning."
                )
            self.means_[s.subject] = x.mean(axis=0)
            blocks.append(x - self.means_[s.subject])
        u, sv, _ = np.linalg.svd(blocks[0], full_matrices=False)
        template = u[:, :k] * sv[:k]
        for _ in range(n_iter + 1):
            maps = [_orthogonal_map(x, template) for x in blocks]
            template = np.mean([x @ r for x, r in zip(blocks, maps)], axis=0)
        self.maps_ = {s.subject: r for s, r in zip(subjects, maps)}
        self.subjects_ = [s.subject for s in subjects]
        self.n_components_ = k
        self.template_ = ConditionData(template.T, shared, "", self._shared_units())
        return self

    def _shared_units(self) -> Units:
        return Units(ids=np.array([f"c{i:04d}" for i in range(self.n_components_)]), space="shared")

    def _add_subject(self, data: ConditionData) -> ProcrustesAligner:
        ids = self.template_.stimulus_ids[np.isin(self.template_.stimulus_ids, data.stimulus_ids)]
        if ids.size < 3 or data.n_units < self.n_components_:
            raise ShapeError(
                f"Subject {data.subject!r} shares {ids.size} stimuli with the template and has "
                f"{data.n_units} units; mapping it needs at least 3 shared stimuli and "
                f"{self.n_components_} units."
            )
        x = np.asarray(data.select(ids).as_targets(), dtype=np.float64)
        mean = x.mean(axis=0)
        target = self.template_.select(ids).as_targets()
        self.maps_[data.subject] = _orthogonal_map(x - mean, target)
        self.means_[data.subject] = mean
        if data.subject not in self.subjects_:
            self.subjects_.append(data.subject)
        return self

    def _transform(self, data: ConditionData) -> ConditionData:
        r = self.maps_[data.subject]
        if data.n_units != r.shape[0]:
            raise ShapeError(
                f"Subject {data.subject!r} was aligned with {r.shape[0]} units; got {data.n_units}."
            )
        shared = (np.asarray(data.as_targets(), dtype=np.float64) - self.means_[data.subject]) @ r
        return ConditionData(
            shared.T.astype(data.data.dtype), data.stimulus_ids, "", self._shared_units()
        )

    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        if shared.n_units != self.n_components_:
            raise ShapeError(
                f"Shared responses must have {self.n_components_} components; got {shared.n_units}."
            )
        r = self.maps_[subject]
        out = np.asarray(shared.as_targets(), dtype=np.float64) @ r.T + self.means_[subject]
        return ConditionData(out.T.astype(shared.data.dtype), shared.stimulus_ids, subject)
