"""Denoisers: GLM level (time series -> single trials) or trial level (trials -> conditions)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from ..data import ConditionData, ConditionTrials, TrialData
from ..exceptions import ShapeError
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
    ``_transform``; inputs reach them validated, and the number of units is checked here.

    Attributes
    ----------
    n_units_ : int
        Number of units of the data ``fit`` saw (set by this base class).
    """

    kind: ClassVar[str] = "denoiser"
    consumes: ClassVar[tuple[type, ...]] = (ConditionTrials,)
    produces: ClassVar[type] = ConditionData

    def _check_input(self, data: Any) -> Any:
        if (
            isinstance(data, TrialData)
            and ConditionTrials in self.consumes
            and TrialData not in self.consumes
        ):
            data = data.by_condition()
        return check_instance(
            data,
            self.consumes,
            name=f"The input of {type(self).__name__}",
            fix="Pass the container this denoiser declares in `consumes`.",
        )

    def fit(self, data: Any) -> Denoiser:
        """Learn the denoiser from ``data`` (training trials) and return self.

        Records ``n_units_``, the number of units fitted on, which ``transform`` checks
        (as :class:`Encoder` records ``n_features_in_``).
        """
        self.check_params()
        data = self._check_input(data)
        fitted = self._fit(data)
        self.n_units_ = int(data.n_units)
        return fitted

    def transform(self, data: Any) -> Any:
        """Denoise ``data`` with the fitted denoiser.

        Raises
        ------
        ShapeError
            If ``data`` has another number of units than the data fitted on.
        """
        check_is_fitted(self, ["n_units_"])
        data = self._check_input(data)
        if data.n_units != self.n_units_:
            raise ShapeError(
                f"{type(self).__name__} was fitted on {self.n_units_} units but got "
                f"{data.n_units}. Apply it to the same units it was fitted on."
            )
        return self._transform(data)

    def fit_transform(self, data: Any) -> Any:
        """Fit on ``data`` and denoise it."""
        return self.fit(data).transform(data)

    @abstractmethod
    def _fit(self, data: Any) -> Denoiser:
        """Fit on validated input; return self."""

    @abstractmethod
    def _transform(self, data: Any) -> Any:
        """Denoise validated input."""
