"""Denoisers: GLM level (time series -> single trials) or trial level (trials -> conditions)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from ..data import ConditionData, ConditionTrials, TrialData
from ..validation import check_instance
from .base import Component, check_is_fitted

__all__ = ["Denoiser"]


class Denoiser(Component):
    """Turns noisy responses into cleaner ones.

    A trial-level denoiser (the default declaration) consumes :class:`ConditionTrials`
    (a :class:`TrialData` is accepted and arranged with ``by_condition()``) and produces
    :class:`ConditionData`. A GLM-level denoiser declares
    ``consumes = (TimeSeriesData,)`` and ``produces = TrialData``.

    ``fit`` learns from training data only; ``transform`` applies what was learnt to any
    data with the same units (e.g. held-out trials). Subclasses implement ``_fit`` and
    ``_transform``; inputs reach them validated.
    """

    kind: ClassVar[str] = "denoiser"
    consumes: ClassVar[tuple[type, ...]] = (ConditionTrials,)
    produces: ClassVar[type] = ConditionData

    def _check_input(self, data: Any) -> Any:
        if isinstance(data, TrialData) and ConditionTrials in self.consumes and TrialData not in self.consumes:
            data = data.by_condition()
        return check_instance(
            data, self.consumes, name=f"The input of {type(self).__name__}",
            fix="Pass the container this denoiser declares in `consumes`.",
        )

    def fit(self, data: Any) -> Denoiser:
        """Learn the denoiser from ``data`` (training trials) and return self."""
        self.check_params()
        return self._fit(self._check_input(data))

    def transform(self, data: Any) -> Any:
        """Denoise ``data`` with the fitted denoiser."""
        check_is_fitted(self)
        return self._transform(self._check_input(data))

    def fit_transform(self, data: Any) -> Any:
        """Fit on ``data`` and denoise it."""
        return self.fit(data).transform(data)

    @abstractmethod
    def _fit(self, data: Any) -> Denoiser:
        """Fit on validated input; return self."""

    @abstractmethod
    def _transform(self, data: Any) -> Any:
        """Denoise validated input."""
