"""The anatomical baseline: units with the same id are the same place in every subject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from conform_core import Aligner, ConditionData, ShapeError, Units

from ._algebra import as_float64, centre
from ._linear import common_constraints, common_fixes

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["IdentityAligner"]


class IdentityAligner(Aligner):
    """Align subjects by unit id: the anatomical baseline.

    Units with the same id are taken to be the same place in every subject (a vertex of a
    common surface such as MOSAIC's fsLR, or a position of the simulator's unit sheet). The
    shared space is the union of the fitted subjects' unit ids; a subject's responses,
    centred per unit, are put at their ids (NaN at ids it lacks), and ``inverse_transform``
    reads a subject's ids back and adds its unit means. The template is the mean, per unit,
    of the subjects that have the unit. No map is learned, so ``n_components`` does not
    apply: this is what functional alignment must beat.

    Parameters
    ----------
    labels : None, "roi" or sequence, default=None
        Piecewise alignment: one parcel label per unit ("roi": each subject's ROI labels).
    via_encoder : str or None, default=None
        Align without shared stimuli, through this encoder's predictions of a probe set.
    encoder_params : dict or None, default=None
        Parameters of that encoder.
    probe : int or str, default=500
        Probe stimuli drawn from those given to fit, or a file of embeddings.
    n_jobs : int, default=1
        Parcels fitted in parallel.
    random_state : int, default=0
        Seed of the probe draw.

    Attributes
    ----------
    subjects_ : list of str
        Fitted and added subjects.
    n_components_ : None
        No shared dimension is chosen.
    shared_units_ : Units
        The shared space: the union of the fitted subjects' unit ids, in order of first
        appearance.
    template_ : ConditionData
        Per-unit mean of the centred responses of the subjects that have the unit.
    means_ : dict of str to ndarray of shape (n_units,)
        Each subject's unit means over the stimuli it was fitted or added with.
    positions_ : dict of str to ndarray of shape (n_units,)
        Each subject's unit positions in the shared space (-1: unit not in it).
    unmatched_units_ : dict of str to list of str
        For each subject, its unit ids that no fitted subject has (predicted by the
        subject's own mean); empty lists for fitted subjects.
    """

    _has_n_components: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = common_constraints(
        n_components=False)
    _parameter_fixes: ClassVar[dict[str, str]] = common_fixes(n_components=False)

    def __init__(self, labels: str | Sequence[str | int] | None = None,
                 via_encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 probe: int | str = 500, n_jobs: int = 1, random_state: int = 0):
        self.labels = labels
        self.via_encoder = via_encoder
        self.encoder_params = encoder_params
        self.probe = probe
        self.n_jobs = n_jobs
        self.random_state = random_state

    def peak_memory(self, size: DataSize) -> int:
        """Return the peak bytes of ``fit`` plus ``transform`` of every subject.

        ``8 * 3 S U C`` for S subjects of U units on C conditions (float64): each subject's
        responses in float64 and centred, and its output in the shared space (the template
        is one more conditions x units array).
        """
        s, u, c = max(int(size.n_subjects), 1), int(size.n_units), int(size.n_conditions)
        return int(8 * 3 * s * u * c)

    def _fit(self, subjects: list[ConditionData], n_components: int | None = None
             ) -> IdentityAligner:
        ids: dict[str, int] = {}
        for s in subjects:
            for uid in s.units.ids.tolist():
                ids.setdefault(uid, len(ids))
        space = {s.units.space for s in subjects}
        self.shared_units_ = Units(ids=np.array(list(ids), dtype=str),
                                   space=space.pop() if len(space) == 1 else "unknown")
        self.positions_: dict[str, np.ndarray] = {}
        total = np.zeros((subjects[0].n_conditions, len(ids)))
        count = np.zeros(len(ids))
        self.means_, self.units_, self.unmatched_units_ = {}, {}, {}
        for s in subjects:
            x, mean = centre(as_float64(s))
            pos = np.array([ids[u] for u in s.units.ids.tolist()], dtype=np.intp)
            total[:, pos] += x
            count[pos] += 1
            self._remember(s, pos, mean, [])
        self.template_ = ConditionData((total / count).T, subjects[0].stimulus_ids, "",
                                       self.shared_units_)
        self.subjects_ = [s.subject for s in subjects]
        self.n_components_ = None
        return self

    def _remember(self, data: ConditionData, pos: np.ndarray, mean: np.ndarray,
                  unmatched: list[str]) -> None:
        self.positions_[data.subject] = pos
        self.means_[data.subject] = mean
        self.units_[data.subject] = data.units
        self.unmatched_units_[data.subject] = unmatched

    def _lookup(self, unit_ids: np.ndarray) -> np.ndarray:
        """Position of each unit id in the shared space (-1 where it has none)."""
        index = {u: i for i, u in enumerate(self.shared_units_.ids.tolist())}
        return np.array([index.get(u, -1) for u in unit_ids.tolist()], dtype=np.intp)

    def _add_subject(self, data: ConditionData) -> IdentityAligner:
        pos = self._lookup(data.units.ids)
        if not (pos >= 0).any():
            raise ShapeError(
                f"Subject {data.subject!r} has none of the {self.shared_units_.n_units} unit ids "
                f"the identity aligner was fitted on (its ids: {list(data.units.ids[:3])}..., "
                f"fitted: {list(self.shared_units_.ids[:3])}...). Identity alignment matches "
                "units by id: give the units ids in the common space (e.g. surface vertices), "
                "or use a functional aligner such as 'procrustes' or 'srm'."
            )
        unmatched = data.units.ids[pos < 0].tolist()
        self._remember(data, pos, as_float64(data).mean(axis=0), unmatched)
        if data.subject not in self.subjects_:
            self.subjects_.append(data.subject)
        return self

    def _transform(self, data: ConditionData) -> ConditionData:
        expected = self.units_[data.subject]
        if not np.array_equal(data.units.ids, expected.ids):
            raise ShapeError(
                f"Subject {data.subject!r} was aligned with {expected.n_units} units; got "
                f"{data.n_units} with other ids or order. Pass the same units as in "
                "fit/add_subject."
            )
        pos = self.positions_[data.subject]
        x = as_float64(data) - self.means_[data.subject]
        out = np.full((data.n_conditions, self.shared_units_.n_units), np.nan)
        out[:, pos[pos >= 0]] = x[:, pos >= 0]
        return ConditionData(out.T.astype(data.data.dtype), data.stimulus_ids, "",
                             self.shared_units_)

    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        if shared.n_units != self.shared_units_.n_units:
            raise ShapeError(
                f"Shared responses must have the {self.shared_units_.n_units} units of the "
                f"shared space; got {shared.n_units}. Pass the output of transform (or an "
                "average of them)."
            )
        pos = self.positions_[subject]
        x = as_float64(shared)
        out = np.zeros((shared.n_conditions, pos.size))  # unmatched units: the mean alone
        out[:, pos >= 0] = x[:, pos[pos >= 0]]
        out += self.means_[subject]
        return ConditionData(out.T.astype(shared.data.dtype), shared.stimulus_ids, subject,
                             self.units_[subject])
