"""Linear algebra shared by plugins: closed-form leave-one-out ridge from one thin SVD.

:class:`LeaveOneOutRidge` factorises a design matrix once and then, for any number of
targets, gives the leave-one-out (generalised cross-validation) squared error of every
penalty of a grid and the coefficients at the chosen penalty (one per target or one shared).
It is the algebra of scikit-learn's ``RidgeCV`` (GCV mode): with ``X = U S Vᵀ`` and
``d_a = s² / (s² + alpha_a)``, the fitted values are ``U diag(d_a) Uᵀ y``, the hat diagonal is
``h_ia = Σ_j U_ij² d_aj`` (plus ``1/n`` with an intercept), and the leave-one-out residual is
``(y_i − ŷ_i) / (1 − h_ia)``. Factorising once pays off when the same predictors serve many
targets or many calls: the ridge encoder (``conform_baselines``) uses it per batch of units,
and the ridge aligner (``conform_align``) reuses each subject's factorisation across template
iterations and the template's for every subject's map back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from .exceptions import ParameterError, ShapeError

__all__ = ["LeaveOneOutRidge", "inverse_spectrum"]

Float64 = NDArray[np.float64]

#: Elements of the residual arrays that :meth:`LeaveOneOutRidge.sse` holds at once (32 MiB).
_CHUNK_ELEMENTS = 2**22


def inverse_spectrum(eig: Float64, alphas: Float64) -> Float64:
    """Return ``1 / (eig + alpha)`` of shape (n_alphas, n_eig), eigenvalues clipped at 0."""
    return np.asarray(1.0 / (np.clip(eig, 0.0, None)[None, :] + alphas[:, None]))


class LeaveOneOutRidge:
    """Ridge regressions from one design matrix, penalty chosen by closed-form leave-one-out.

    The thin SVD of ``X`` is computed once, at construction; :meth:`sse`, :meth:`coef` and
    :meth:`fit` then serve any number of targets (columns of ``Y``) and every penalty of the
    grid at the cost of a few matrix products.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Predictors. With ``intercept=True`` the caller has centred ``X`` (and centres every
        ``Y``) on the samples; the intercept's column is then orthogonal to ``X`` and only adds
        ``1/n`` to the hat diagonal.
    alphas : array-like of shape (n_alphas,)
        Positive penalties (absolute: in units of the squared singular values of ``X``).
    intercept : bool, default=False
        Account for an unpenalised intercept in the leave-one-out errors (see ``X``).
    dtype : {None, "float32", "float64"}, default=None
        Precision of the per-target products (the factorisation is always float64). None is
        float64.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
    singular_values : ndarray of shape (rank,)
        Of ``X`` (rank = min(n_samples, n_features)).
    hat_diagonal : ndarray of shape (n_samples, n_alphas)
        Leverage of each sample at each penalty (``1/n`` included with an intercept).

    Notes
    -----
    A sample with leverage 1 (fitted exactly whatever its response) would give an infinite
    leave-one-out error; the weight ``1 / (1 − h)`` is capped at ``1 / eps`` so that its
    penalty is never chosen (scikit-learn divides by zero there).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 5)), rng.standard_normal((50, 3))
    >>> ridge = LeaveOneOutRidge(X, [0.1, 1.0, 10.0])
    >>> coef, index, sse = ridge.fit(Y)
    >>> coef.shape, index.shape, sse.shape
    ((5, 3), (3,), (3, 3))
    """

    def __init__(self, X: Any, alphas: Any, *, intercept: bool = False,
                 dtype: Any = None) -> None:
        X = np.asarray(X, dtype=np.float64)
        alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
        if X.ndim != 2 or min(X.shape) == 0:
            raise ShapeError(
                f"LeaveOneOutRidge needs a non-empty 2-D X (samples x features); got shape "
                f"{X.shape}. Pass at least one sample and one feature.")
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) \
                or not np.all(alphas > 0):
            raise ParameterError(
                f"LeaveOneOutRidge needs a non-empty 1-D grid of positive finite alphas; got "
                f"{alphas.tolist()}. Use e.g. alphas=np.logspace(-2, 6, 17).")
        dt = np.dtype(np.float64 if dtype is None else dtype)
        n = X.shape[0]
        self.alphas, self.dtype = alphas, dt
        U, s, Vt = scipy.linalg.svd(X, full_matrices=False, check_finite=False)
        eig = s**2
        inverse = inverse_spectrum(eig, alphas)
        shrink = eig[None, :] * inverse  # (n_alphas, r): fitted share of each direction
        self.singular_values = s
        self.hat_diagonal = (U**2) @ shrink.T + (1.0 / n if intercept else 0.0)
        self._w = (1.0 / np.maximum(1.0 - self.hat_diagonal, np.finfo(np.float64).eps)
                   ).astype(dt)
        self._U, self._shrink = U.astype(dt), shrink.astype(dt)
        self._coef_scale = (s[None, :] * inverse).astype(dt)
        self._V = Vt.T.astype(dt)

    @property
    def n_samples(self) -> int:
        """Rows of ``X``."""
        return int(self._U.shape[0])

    @property
    def n_features(self) -> int:
        """Columns of ``X``."""
        return int(self._V.shape[0])

    def project(self, Y: Any) -> NDArray[np.floating]:
        """Return ``Uᵀ Y`` (rank x n_targets), the targets' coordinates that :meth:`coef` uses."""
        return np.asarray(self._U.T @ self._targets(Y))

    def sse(self, Y: Any) -> tuple[Float64, NDArray[np.floating]]:
        """Leave-one-out sum of squared errors of every penalty and target.

        Parameters
        ----------
        Y : array-like of shape (n_samples, n_targets)
            Targets (centred by the caller when ``intercept=True``).

        Returns
        -------
        sse : ndarray of shape (n_alphas, n_targets)
        projection : ndarray of shape (rank, n_targets)
            ``Uᵀ Y``, to pass to :meth:`coef` and save its product.
        """
        Y = self._targets(Y)
        Q = self._U.T @ Y
        n_alphas, (n, t) = len(self.alphas), Y.shape
        out = np.empty((n_alphas, t))
        # alphas in chunks of bounded memory: one stacked product per chunk, not one per alpha
        step = max(1, min(n_alphas, _CHUNK_ELEMENTS // max(1, n * t)))
        for start in range(0, n_alphas, step):
            a = slice(start, min(start + step, n_alphas))
            E = self._U @ (Q[None, :, :] * self._shrink[a][:, :, None])  # (chunk, n, t)
            np.subtract(Y[None], E, out=E)
            E *= self._w.T[a][:, :, None]
            out[a] = np.einsum("aij,aij->aj", E, E, dtype=np.float64)
        return out, Q

    def coef(self, Y: Any, index: Any, *, projection: Any = None) -> NDArray[np.floating]:
        """Coefficients with penalty ``alphas[index[j]]`` for target ``j``.

        Parameters
        ----------
        Y : array-like of shape (n_samples, n_targets) or None
            Targets; may be None when ``projection`` is given.
        index : int or array-like of int of shape (n_targets,)
            Position in ``alphas`` of each target's penalty (one int: the same for all).
        projection : ndarray of shape (rank, n_targets), optional
            ``Uᵀ Y`` as returned by :meth:`sse` or :meth:`project`.

        Returns
        -------
        ndarray of shape (n_features, n_targets)
        """
        Q = self.project(Y) if projection is None else np.asarray(projection)
        index = np.broadcast_to(np.asarray(index, dtype=np.intp), (Q.shape[1],))
        return np.asarray(self._V @ (Q * self._coef_scale[index].T))

    @staticmethod
    def choose(sse: Float64, *, per_target: bool = True) -> NDArray[np.intp]:
        """Index of the penalty with the least leave-one-out error (first on ties).

        Parameters
        ----------
        sse : ndarray of shape (n_alphas, n_targets)
        per_target : bool, default=True
            One penalty per target; otherwise the one with the least total error, for all.

        Returns
        -------
        ndarray of int of shape (n_targets,)
        """
        if per_target:
            return np.asarray(np.argmin(sse, axis=0), dtype=np.intp)
        return np.full(sse.shape[1], int(np.argmin(sse.sum(axis=1))), dtype=np.intp)

    def fit(self, Y: Any, *, per_target: bool = True
            ) -> tuple[NDArray[np.floating], NDArray[np.intp], Float64]:
        """Choose each target's penalty by leave-one-out and return the coefficients.

        Parameters
        ----------
        Y : array-like of shape (n_samples, n_targets)
        per_target : bool, default=True
            One penalty per target (scikit-learn's ``alpha_per_target=True``), or one for all
            targets, the least total error (``alpha_per_target=False``).

        Returns
        -------
        coef : ndarray of shape (n_features, n_targets)
        index : ndarray of int of shape (n_targets,)
            Position of each target's penalty in ``alphas``.
        sse : ndarray of shape (n_alphas, n_targets)
            Leave-one-out sum of squared errors.
        """
        sse, Q = self.sse(Y)
        index = self.choose(sse, per_target=per_target)
        return self.coef(None, index, projection=Q), index, sse

    def _targets(self, Y: Any) -> NDArray[np.floating]:
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[0] != self.n_samples:
            raise ShapeError(
                f"Targets must be 2-D with {self.n_samples} rows (the samples of X); got shape "
                f"{Y.shape}. Pass Y as samples x targets (reshape(-1, 1) for one target).")
        return Y
