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
        """Fit the encoder on features ``X`` and responses ``Y``; return self.

        Raises
        ------
        ShapeError
            For wrong shapes, mismatched rows, NaN or infinite values, fewer than 2
            stimuli (scikit-learn's wording, plus the axis convention).
        """
        self.check_params()
        from sklearn.utils.validation import check_X_y

        if Y is None:
            raise ShapeError(f"{type(self).__name__} requires y to be passed, but the target y is "
                             "None. Pass responses of shape (n_stimuli, n_units).")
        if _n_rows(X) is not None and _n_rows(Y) is not None and _n_rows(X) != _n_rows(Y):
            raise ShapeError(
                f"X and Y must have one row per stimulus each; got {_n_rows(X)} rows in X and "
                f"{_n_rows(Y)} in Y. Align them by stimulus id first."
            )
        _precheck(X, "X", "(stimuli, features)")
        _precheck(Y, "Y", "(stimuli, units)")
        try:
            X, Y = check_X_y(X, Y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), ensure_min_samples=2)
        except ValueError as exc:
            raise ShapeError(f"{exc} (X is stimuli x features, Y is stimuli x units.)") from None
        self._y_1d = Y.ndim == 1
        Y = check_float_array(Y[:, None] if self._y_1d else Y, ndim=2, name="Y",
                              axes="(stimuli, units)")
        self.n_features_in_ = X.shape[1]
        return self._fit(X, Y)

    def predict(self, X: Any) -> NDArray[np.floating]:
        """Predict responses (n_stimuli, n_units) for features ``X``."""
        from sklearn.utils.validation import check_array

        check_is_fitted(self, ["n_features_in_"])
        _precheck(X, "X", "(stimuli, features)")
        try:
            X = check_array(X, dtype=(np.float64, np.float32))
        except ValueError as exc:
            raise ShapeError(f"{exc} (X is stimuli x features.)") from None
        if X.shape[1] != self.n_features_in_:
            raise ShapeError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input. Use the same feature extractor for fit "
                "and predict."
            )
        Y = self._predict(X)
        return Y[:, 0] if getattr(self, "_y_1d", False) else Y

    def check_features(self, feature_space: str, n_features: int | None) -> None:
        """Check, before any work, that this encoder can read the features it will be given.

        ``conform fit`` calls it with the features stage's ``feature_space_`` (e.g.
        ``clip:ViT-B-32:<weights sha256>``; ``""`` when unknown) and vector length (None when
        not known until computed), once while checking the plan and again before each fit.
        Encoders that learn nothing about the features themselves (most) accept anything;
        a pretrained one (BraInCoRL) refuses another backbone's embeddings. The default
        checks nothing.

        Raises
        ------
        ConformError
            Naming the features given, the ones expected and the fix.
        """

    @abstractmethod
    def _fit(self, X: NDArray[np.floating], Y: NDArray[np.floating]) -> Encoder:
        """Fit on validated arrays; return self."""

    @abstractmethod
    def _predict(self, X: NDArray[np.floating]) -> NDArray[np.floating]:
        """Predict (n_stimuli, n_units) from validated features."""


def _precheck(value: Any, name: str, axes: str) -> None:
    """Conform's own messages for empty feature sets and non-finite values (with positions)."""
    if hasattr(value, "toarray") or isinstance(value, (str, bytes)):
        return  # sparse or nonsense input: scikit-learn's validation explains it
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        return
    if name == "X" and array.ndim == 2 and array.shape[1] == 0:
        raise ShapeError(
            f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 "
            "is required: an encoder needs at least one feature (a column of X); got "
            f"X of shape {array.shape}. Check the features stage."
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        check_float_array(array, ndim=array.ndim, name=name, axes=axes)


def _n_rows(value: Any) -> int | None:
    """Return the number of rows of an array-like (sparse too), or None when it has none."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    try:
        return len(value)
    except TypeError:
        return None
