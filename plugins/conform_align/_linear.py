"""The part every linear aligner shares: per-subject encoding and decoding maps.

A subject's centred responses ``x`` (conditions x units) go into the shared space as
``x @ encoder`` and come back as ``shared @ decoder + means``. Subclasses say how the maps
and the template are fitted (``_fit_maps``) and how a new subject is mapped onto the template
(``_map_subject``); fitting, ``add_subject``, ``transform`` and ``inverse_transform`` are here.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from conform_core import Aligner, ConditionData, ShapeError

from ._algebra import Array, as_float64, centre, shared_units

if TYPE_CHECKING:
    from conform_core.memory import DataSize

#: An aligner's map of one subject: encoder (n_units x k), decoder (k x n_units), and per-subject
#: fitted values to keep (``{"alpha_": 0.1}`` is stored as ``self.alpha_[subject] = 0.1``).
Maps = tuple[Array, Array, dict[str, Any]]


def common_constraints(*, n_components: bool = True) -> dict[str, list[Any]]:
    """Return the base class's constraints of the common parameters (n_components if asked)."""
    out = dict(Aligner._common_constraints)
    if not n_components:
        out.pop("n_components", None)
    return out


def common_fixes(*, n_components: bool = True) -> dict[str, str]:
    """Return the base class's fixes of the common parameters (n_components if asked)."""
    out = dict(Aligner._common_fixes)
    if not n_components:
        out.pop("n_components", None)
    return out


def peak_words(aligner: Aligner, size: DataSize, *, data: float, maps: float,
               plan: float = 0.0) -> int | None:
    """Peak bytes of an aligner's fit plus transform of every subject, from array counts.

    ``8 * (data S U C + maps S U k + plan U k + S C^2)`` for S subjects of U units on C
    conditions, with k = min(U, C) (the largest shared space; ``n_components`` when it is an
    int): ``data`` float64 copies of every subject's conditions x units responses (as
    float64, centred, the transformed outputs), ``maps`` units x k arrays per subject (the
    maps in and back, a solver's factors), ``plan`` units x k arrays alive once (a transport
    plan and its kernel), and the conditions x conditions Gram matrices of the first
    template. None with ``via_encoder`` (the probe set's size is not known before fitting).
    """
    if getattr(aligner, "via_encoder", None) is not None:
        return None
    s, u, c = max(int(size.n_subjects), 1), int(size.n_units), int(size.n_conditions)
    k = min(u, c)
    n_components = getattr(aligner, "n_components", None)
    if isinstance(n_components, int) and not isinstance(n_components, bool):
        k = min(k, n_components)
    return int(8 * (data * s * u * c + maps * s * u * k + plan * u * k + s * c * c))


class LinearAligner(Aligner):
    """Base of aligners with one linear encoder and decoder per subject (private).

    Fitted attributes (besides the base's): ``maps_``, ``inverse_maps_``, ``means_``,
    ``units_`` (dicts keyed by subject) and ``template_`` (ConditionData, k x shared
    stimuli).
    """

    _has_n_components: ClassVar[bool] = True

    @abstractmethod
    def _fit_maps(self, blocks: list[Array], n_components: int) -> tuple[Array, list[Maps]]:
        """Return the template (conditions x k) and each centred block's maps."""

    @abstractmethod
    def _map_subject(self, x: Array, template: Array) -> Maps:
        """Return the (encoder, decoder, extras) of one centred subject onto ``template``."""

    def _fit(self, subjects: list[ConditionData], n_components: int | None) -> LinearAligner:
        k = int(n_components) if n_components is not None else self._max_components(subjects)
        blocks, means = zip(*(centre(as_float64(s)) for s in subjects))
        template, maps = self._fit_maps(list(blocks), k)
        names = [s.subject for s in subjects]
        self.maps_, self.inverse_maps_, self.means_, self.units_ = {}, {}, {}, {}
        for key in {key for m in maps for key in m[2]}:
            setattr(self, key, {})
        for s, m, mean in zip(subjects, maps, means):
            self._store(s, m, mean)
        self.template_ = ConditionData(template.T, subjects[0].stimulus_ids, "", shared_units(k))
        self.subjects_ = names
        self.n_components_ = k
        return self

    def _add_subject(self, data: ConditionData) -> LinearAligner:
        x, mean = centre(as_float64(data))
        template = as_float64(self.template_.select(data.stimulus_ids))
        self._store(data, self._map_subject(x, template), mean)
        if data.subject not in self.subjects_:
            self.subjects_.append(data.subject)
        return self

    def _store(self, data: ConditionData, maps: Maps, mean: Array) -> None:
        encoder, decoder, extras = maps
        self.maps_[data.subject] = encoder
        self.inverse_maps_[data.subject] = decoder
        self.means_[data.subject] = mean
        self.units_[data.subject] = data.units
        for key, value in extras.items():
            getattr(self, key)[data.subject] = value

    def _transform(self, data: ConditionData) -> ConditionData:
        expected = self.units_[data.subject]
        if data.n_units != expected.n_units or not np.array_equal(data.units.ids, expected.ids):
            raise ShapeError(
                f"Subject {data.subject!r} was aligned with {expected.n_units} units "
                f"({list(expected.ids[:3])}...); got {data.n_units} ({list(data.units.ids[:3])}...). "
                "Pass the same units as in fit/add_subject, in the same order."
            )
        shared = (as_float64(data) - self.means_[data.subject]) @ self.maps_[data.subject]
        return ConditionData(shared.T.astype(data.data.dtype), data.stimulus_ids, "",
                             shared_units(self.n_components_))

    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        if shared.n_units != self.n_components_:
            raise ShapeError(
                f"Shared responses must have {self.n_components_} components (units); got "
                f"{shared.n_units}. Pass the output of transform (or an average of them)."
            )
        out = as_float64(shared) @ self.inverse_maps_[subject] + self.means_[subject]
        return ConditionData(out.T.astype(shared.data.dtype), shared.stimulus_ids, subject,
                             self.units_[subject])
