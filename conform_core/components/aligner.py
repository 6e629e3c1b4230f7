"""Aligners: map several subjects' responses into a shared space and back."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from ..data import ConditionData
from ..exceptions import ShapeError, UnknownComponentError
from ..validation import check_instance, suggest
from .base import Component, check_is_fitted

__all__ = ["Aligner"]


class Aligner(Component):
    """Maps each subject's condition responses into a shared space, and back.

    ``fit`` takes one :class:`ConditionData` per subject (each with a distinct
    ``subject``), learns a template from the stimuli they share and one map per subject.
    ``add_subject`` maps a new subject onto the fitted template (through the stimuli it
    shares with the template), which is how a held-out subject is predicted from others.
    Subclasses implement ``_fit``, ``_add_subject``, ``_transform`` and
    ``_inverse_transform``.
    """

    kind: ClassVar[str] = "aligner"
    consumes: ClassVar[tuple[type, ...]] = (ConditionData,)
    produces: ClassVar[type] = ConditionData

    def fit(self, subjects: Sequence[ConditionData]) -> Aligner:
        """Learn the shared template and every subject's map; return self."""
        self.check_params()
        if isinstance(subjects, ConditionData) or not isinstance(subjects, Sequence):
            raise ShapeError(
                f"{type(self).__name__}.fit takes a list of ConditionData, one per subject; got "
                f"{type(subjects).__name__}."
            )
        if len(subjects) < 2:
            raise ShapeError(
                f"{type(self).__name__}.fit needs at least 2 subjects to align; got {len(subjects)}."
            )
        names = [
            check_instance(s, ConditionData, name=f"subjects[{i}]").subject
            for i, s in enumerate(subjects)
        ]
        if len(set(names)) != len(names) or "" in names:
            raise ShapeError(
                f"Each subject's ConditionData needs a distinct, non-empty .subject; got {names}."
            )
        return self._fit(list(subjects))

    def add_subject(self, data: ConditionData) -> Aligner:
        """Map a new subject onto the fitted template; return self."""
        check_is_fitted(self)
        check_instance(data, ConditionData, name="data")
        return self._add_subject(data)

    def transform(self, data: ConditionData) -> ConditionData:
        """Map ``data`` (of a fitted subject, by ``data.subject``) into the shared space."""
        check_is_fitted(self)
        check_instance(data, ConditionData, name="data")
        self._check_known(data.subject)
        return self._transform(data)

    def inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        """Map shared-space responses into ``subject``'s units."""
        check_is_fitted(self)
        check_instance(shared, ConditionData, name="shared")
        self._check_known(subject)
        return self._inverse_transform(shared, subject)

    def _check_known(self, subject: str) -> None:
        known = list(getattr(self, "subjects_", []))
        if subject not in known:
            raise UnknownComponentError(
                f"{type(self).__name__} has no map for subject {subject!r}; fitted subjects: "
                f"{known}.{suggest(subject, known)} Use add_subject(...) to map a new subject."
            )

    @abstractmethod
    def _fit(self, subjects: list[ConditionData]) -> Aligner:
        """Fit on validated subjects; must set ``subjects_`` (list of names)."""

    @abstractmethod
    def _add_subject(self, data: ConditionData) -> Aligner:
        """Map one more subject onto the template (append to ``subjects_``)."""

    @abstractmethod
    def _transform(self, data: ConditionData) -> ConditionData:
        """Map a known subject into the shared space."""

    @abstractmethod
    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        """Map shared responses into a known subject's units."""
