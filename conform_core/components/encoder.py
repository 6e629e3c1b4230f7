"""Encoders: predict unit responses from stimulus features (scikit-learn estimators)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.base import RegressorMixin

from ..data import ConditionData
from ..exceptions import ShapeError
from ..validation import check_float_array
from .base import Component, check_is_fitted

__all__ = ["Encoder"]


class Encoder(RegressorMixin, Component):
    """Maps stimulus features to unit responses, with the scikit-learn estimator contract.

    ``fit(X, Y)`` with ``X`` of shape (n_stimuli, n_features) and ``Y`` of shape
    (n_stimuli, n_units) (or (n_stimuli,)), then ``predict(X)``; ``score`` is the mean R²
    over units (scikit-learn's). Subclasses implement ``_fit`` and ``_predict`` and
    receive validated float arrays with ``Y`` always 2-D.
    """

    kind: ClassVar[str] = "encoder"
    consumes: ClassVar[tuple[type, ...]] = (ConditionData,)
    produces: ClassVar[type] = ConditionData

    def fit(self, X: Any, Y: Any) -> Encoder:
        """Fit the encoder on features ``X`` and responses ``Y``; return self."""
        X = check_float_array(X, ndim=2, name="X", axes="(stimuli, features)")
        Y_arr = np.asarray(Y)
        self._y_1d = Y_arr.ndim == 1
        Y = check_float_array(Y_arr[:, None] if self._y_1d else Y_arr, ndim=2, name="Y",
                              axes="(stimuli, units)")
        if X.shape[0] != Y.shape[0]:
            raise ShapeError(
                f"X and Y must have one row per stimulus each; got {X.shape[0]} rows in X and "
                f"{Y.shape[0]} in Y. Align them by stimulus id first."
            )
        if X.shape[0] < 2:
            raise ShapeError(f"An encoder needs at least 2 stimuli to fit; got {X.shape[0]}.")
        self.n_features_in_ = X.shape[1]
        return self._fit(X, Y)

    def predict(self, X: Any) -> NDArray[np.floating]:
        """Predict responses (n_stimuli, n_units) for features ``X``."""
        check_is_fitted(self, ["n_features_in_"])
        X = check_float_array(X, ndim=2, name="X", axes="(stimuli, features)")
        if X.shape[1] != self.n_features_in_:
            raise ShapeError(
                f"X has {X.shape[1]} features but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}. Use the same feature extractor for fit and predict."
            )
        Y = self._predict(X)
        return Y[:, 0] if getattr(self, "_y_1d", False) else Y

    @abstractmethod
    def _fit(self, X: NDArray[np.floating], Y: NDArray[np.floating]) -> Encoder:
        """Fit on validated arrays; return self."""

    @abstractmethod
    def _predict(self, X: NDArray[np.floating]) -> NDArray[np.floating]:
        """Predict (n_stimuli, n_units) from validated features."""
