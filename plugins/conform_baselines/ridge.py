"""Ridge regression encoder with a regularisation chosen per unit by cross-validation.

One factorisation is shared by every alpha: the ridge solution in an eigenbasis is a
rescaling of eigenvalues, so trying another alpha costs a diagonal scaling plus one
matrix product instead of a new solve (the approach of himalaya's ``RidgeCV``).

Three routes, picked automatically:

* **primal K-fold** (``n_stimuli > n_features``): per fold, ``XᵀX`` of the training
  stimuli is ``XᵀX`` of all stimuli minus that of the fold, and likewise ``XᵀY``; one
  ``eigh`` of the (p, p) matrix per fold. The held-out squared error of every alpha is
  then computed in feature space: ``‖y_f‖² − 2 Σ_k d_k z_k w_k + ‖R D z‖²`` where
  ``z = Vᵀ Xᵀ_train y``, ``w = Vᵀ Xᵀ_fold y``, ``D = diag(1/(s + alpha))`` and ``R`` is
  the triangular factor of the fold's features in the eigenbasis (``RᵀR = Vᵀ X_fᵀ X_f V``).
  That costs ``p²`` flops per unit, alpha and fold (a triangular product) instead of
  ``2 n_fold p`` for predicting the fold.
  (When a fold has fewer stimuli than features, ``R`` is (n_fold, p) and a plain product
  costs ``2 n_fold p``.) Flops for n stimuli, p features, t units, K folds, A alphas:
  ``2npt`` (XᵀY, accumulated fold by fold) + ``4Kp²t`` (eigenbasis coordinates) +
  ``KAp²t`` (errors) + ``4p²t`` (refit); at 10,000 x 512 x 20,000, K=5, A=10 that is
  ~0.6 TFLOP, a few seconds of float32 GEMM.
* **dual K-fold** (``n_stimuli <= n_features``): the same with the (n, n) kernel ``XXᵀ``;
  per fold and alpha ``2 n_fold n_train`` flops per unit.
* **leave-one-out** (``cv="loo"``): one thin SVD of ``X`` and the closed-form LOO
  residuals ``(y_i − ŷ_i) / (1 − h_ii)``, as scikit-learn's ``RidgeCV`` (GCV) does. The
  per-stimulus weights ``1/(1 − h_ii)`` depend on alpha, so each alpha costs ``2 n r t``
  flops (r = min(n, p)): slower than K-fold when n > p.

With ``refit=False`` (K-fold only) the coefficients are not refitted on all stimuli but
averaged over the K fold fits at each unit's chosen alpha, as BraInCoRL's baseline
(``ridge_fast_brainwise``) does. Each fold's coefficients come from the factorisation that
the cross-validation already made: ``V_f D_f Z_f`` (primal, ``4p²t`` flops per fold) or
``X_trainᵀ V_f D_f V_fᵀ y_train`` (dual, ``2 n_train (n_train + p) t`` flops per fold).

Targets (units) are processed in batches, so memory stays bounded for any number of
units. The estimator does not change BLAS thread settings; pin them from outside with
``threadpoolctl.threadpool_limits`` on small machines (see ``benchmarks/ridge.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
from numpy.typing import NDArray
from sklearn.utils import check_random_state

from conform_core.components import Encoder
from conform_core.constraints import Boolean, Constraint, InstanceOf, Interval, Options
from conform_core.exceptions import ParameterError, ShapeError
from conform_core.linalg import LeaveOneOutRidge, inverse_spectrum

__all__ = ["RidgeEncoder", "DEFAULT_ALPHAS"]

#: Default grid: 17 values from 1e-2 to 1e6, two per decade.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 6, 17))

#: Bytes a batch of targets may use for its working arrays when ``n_targets_batch=None``.
_BATCH_BYTES = 2**29

Array = NDArray[np.floating]


class _Alphas(Constraint):
    """A non-empty 1-D sequence (or one number) of positive finite numbers."""

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        return arr.ndim <= 1 and arr.size > 0 and bool(np.all(np.isfinite(arr))) \
            and bool(np.all(arr > 0))

    def describe(self) -> str:
        return "a non-empty 1-D sequence of positive finite numbers"

    def invalid_value(self) -> Any:
        return [1.0, -1.0]


class _FloatDtype(Constraint):
    """float32 or float64, as a name, a numpy type or a dtype."""

    def is_satisfied_by(self, value: Any) -> bool:
        if value is None:
            return False
        try:
            return np.dtype(value) in (np.dtype(np.float32), np.dtype(np.float64))
        except TypeError:
            return False

    def describe(self) -> str:
        return "a float dtype ('float32' or 'float64')"

    def invalid_value(self) -> Any:
        return "float16"


class RidgeEncoder(Encoder):
    """Ridge regression with a regularisation per unit chosen by efficient cross-validation.

    Parameters
    ----------
    alphas : sequence of float, default=DEFAULT_ALPHAS
        Positive regularisation strengths to try (default ``np.logspace(-2, 6, 17)``).
    cv : int or "loo", default=5
        Number of contiguous folds of K-fold cross-validation (shuffled first when
        ``random_state`` is set), or ``"loo"`` for efficient leave-one-out (the GCV of
        scikit-learn's ``RidgeCV``).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per unit (features and responses are centred on the
        training stimuli of each fold).
    alpha_per_unit : bool, default=True
        Choose one alpha per unit; if False, one alpha for all units (lowest total error).
    solver : {"auto", "primal", "dual"}, default="auto"
        Form used for K-fold cross-validation: ``"primal"`` factorises the
        (n_features, n_features) matrix ``XᵀX``, ``"dual"`` the (n_stimuli, n_stimuli) kernel
        ``XXᵀ``; ``"auto"`` takes primal when n_stimuli > n_features. Ignored for
        ``cv="loo"``, which always uses a thin SVD of ``X``.
    dtype : {None, "float32", "float64"}, default=None
        Precision of the computation and of ``coef_``. None keeps the input's (float32 if
        both X and Y are float32, float64 otherwise). float32 halves time and memory;
        factorisations of small matrices are always done in float64.
    n_targets_batch : int or None, default=None
        Units processed at once. None picks a batch that keeps working memory near
        512 MiB. Results do not depend on it.
    random_state : int, RandomState or None, default=None
        If not None, stimuli are shuffled with this seed before being split into folds.
        None keeps contiguous folds (scikit-learn's ``KFold`` default).
    refit : bool, default=True
        True: after choosing each unit's alpha, refit on all stimuli. False: return the
        average of the K fold fits (each fitted on the other K-1 folds) at that alpha,
        coefficients and intercepts alike, so ``predict`` is the mean of the K fold models'
        predictions. False is the baseline of BraInCoRL (Yu et al., 2025,
        ``ridge_fast_brainwise``), offered for like-for-like comparisons; it differs from it
        in that the intercept is not penalised and alpha minimises the summed held-out
        squared error rather than maximising the mean fold explained variance. Needs K-fold
        cross-validation (an int ``cv``).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_units), or (n_features,) for 1-D ``Y``
        Weights of the refit on all stimuli (``refit=True``) or the average of the K fold
        fits (``refit=False``), each unit with its chosen alpha.
    intercept_ : ndarray of shape (n_units,), or float for 1-D ``Y``
        ``predict(X)`` is ``X @ coef_ + intercept_``.
    alpha_ : ndarray of shape (n_units,), or float for 1-D ``Y``
        Chosen alpha of each unit.
    cv_scores_ : ndarray of shape (n_alphas, n_units), or (n_alphas,) for 1-D ``Y``
        Cross-validated R² of each alpha: ``1 − SSE_heldout / Σ (y − ȳ)²`` (0 for constant
        units). The chosen alpha maximises it (minimises the held-out squared error).
    alphas_ : ndarray of shape (n_alphas,)
        The validated grid.
    solver_ : str
        The route used: ``"primal"``, ``"dual"`` or ``"loo"``.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((200, 10)), rng.standard_normal((200, 3))
    >>> RidgeEncoder(alphas=[0.1, 1.0, 10.0]).fit(X, Y).coef_.shape
    (10, 3)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alphas": [_Alphas()],
        "cv": [Interval(int, 2, None), Options(("loo",))],
        "fit_intercept": [Boolean()],
        "alpha_per_unit": [Boolean()],
        "solver": [Options(("auto", "primal", "dual"))],
        "dtype": [_FloatDtype(), None],
        "n_targets_batch": [Interval(int, 1, None), None],
        "random_state": [Interval(int, 0, 2**32 - 1),
                         InstanceOf(np.random.RandomState, "a numpy RandomState"), None],
        "refit": [Boolean()],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "alphas": "Use e.g. $alphas=np.logspace(-2, 6, 17).",
        "cv": "Use 2 or more folds (at most one per stimulus), or $cv='loo' for leave-one-out.",
        "dtype": "Use None to keep the precision of the input.",
        "n_targets_batch": "Use None to size batches by memory.",
        "random_state": "Use None for contiguous folds, or an int seed to shuffle stimuli before "
                        "splitting them.",
    }

    def __init__(
        self,
        alphas: Any = DEFAULT_ALPHAS,
        cv: int | str = 5,
        fit_intercept: bool = True,
        alpha_per_unit: bool = True,
        solver: str = "auto",
        dtype: Any = None,
        n_targets_batch: int | None = None,
        random_state: Any = None,
        refit: bool = True,
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.alpha_per_unit = alpha_per_unit
        self.solver = solver
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.random_state = random_state
        self.refit = refit

    # ------------------------------------------------------------------ fit / predict
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # one model per unit (column of Y)
        return tags

    def _fit(self, X: Array, Y: Array) -> RidgeEncoder:
        n, p = X.shape
        t = Y.shape[1]
        if p == 0 or t == 0:
            raise ShapeError(
                f"RidgeEncoder needs at least one feature and one unit; got X of shape {X.shape} "
                f"and Y of shape {Y.shape}. Check that the features and responses are not empty."
            )
        # check_params (run by fit) validated the values; only cv's bound needs the data
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        solver, batch = self.solver, self.n_targets_batch
        dtype = None if self.dtype is None else np.dtype(self.dtype)
        cv = self._check_cv(n)
        average = not self.refit
        if average and cv == "loo":
            raise ParameterError(
                "$refit=False averages the fits of the K cross-validation folds, but $cv='loo' "
                "has no fold fits to average.", param="refit", value=False, owner=self,
                fix="Use K-fold cross-validation with it (e.g. $cv=5), or $refit=True to refit "
                    "on all stimuli after leave-one-out.")
        dt = np.result_type(X.dtype, Y.dtype) if dtype is None else dtype

        x_mean = X.mean(axis=0, dtype=np.float64) if self.fit_intercept else np.zeros(p)
        y_mean = Y.mean(axis=0, dtype=np.float64) if self.fit_intercept else np.zeros(t)
        Xc = np.asarray(X, dtype=np.float64) - x_mean  # float64 for the small factorisations

        if cv == "loo":
            plan: _Plan = _LeaveOneOut(Xc, alphas, self.fit_intercept, dt)
            self.solver_ = "loo"
        else:
            folds = _make_folds(n, cv, self.random_state)
            primal = solver == "primal" or (solver == "auto" and n > p)
            cls = _PrimalKFold if primal else _DualKFold
            plan = cls(Xc, folds, alphas, self.fit_intercept, dt)
            self.solver_ = "primal" if primal else "dual"
        del Xc

        if batch is None:
            per_unit = np.dtype(dt).itemsize * (3 * n + (len(plan.folds) + 6) * p
                                                + 4 * len(alphas))
            batch = max(1, min(t, _BATCH_BYTES // per_unit))
        batches = [slice(j, min(j + batch, t)) for j in range(0, t, batch)]

        def centred(sl: slice) -> Array:
            Yb = np.asarray(Y[:, sl], dtype=dt)  # a copy: Y[:, sl] is strided
            Yb = Yb - y_mean[sl].astype(dt) if self.fit_intercept else Yb.copy()
            return Yb

        sse = np.empty((len(alphas), t))
        sst = np.empty(t)
        coef = np.empty((p, t), dtype=dt)
        # refit=False: the fold-averaged intercept in centred coordinates, mean_f(μ_f − m_f·c_f)
        shift = np.zeros(t) if average else None
        caches: dict[int, Any] = {}

        def solve(sl: slice, Yb: Array, idx: NDArray[np.intp], cache: Any) -> None:
            if shift is None:
                coef[:, sl] = plan.refit(Yb, idx, cache)
            else:
                assert isinstance(plan, _KFold)
                coef[:, sl], shift[sl] = plan.average(Yb, idx)

        for i, sl in enumerate(batches):
            Yb = centred(sl)
            sse[:, sl], cache = plan.sse(Yb)
            sst[sl] = np.einsum("ij,ij->j", Yb, Yb, dtype=np.float64) if self.fit_intercept \
                else n * Y[:, sl].var(axis=0, dtype=np.float64)
            if self.alpha_per_unit:
                solve(sl, Yb, np.argmin(sse[:, sl], axis=0), cache)
            elif not average:  # keep the batch's sufficient statistics for the refit when small
                caches[i] = cache if cache is not None and cache.size <= Yb.size // 4 else None
        if not self.alpha_per_unit:
            best = int(np.argmin(sse.sum(axis=1)))
            for i, sl in enumerate(batches):
                idx = np.full(sl.stop - sl.start, best)
                solve(sl, centred(sl), idx, caches.get(i))
            index = np.full(t, best)
        else:
            index = np.argmin(sse, axis=0)

        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), 0.0)
        if not self.fit_intercept:
            intercept = np.zeros(t, dtype=dt)
        elif shift is None:
            intercept = (y_mean - x_mean @ coef).astype(dt)
        else:
            intercept = (y_mean - x_mean @ coef + shift).astype(dt)
        one = getattr(self, "_y_1d", False)
        self.alphas_ = alphas
        self.coef_ = coef[:, 0] if one else coef
        self.intercept_ = intercept[0] if one else intercept
        self.alpha_ = alphas[index][0] if one else alphas[index]
        self.cv_scores_ = scores[:, 0] if one else scores
        return self

    def _predict(self, X: Array) -> Array:
        coef = self.coef_.reshape(self.n_features_in_, -1)
        return X @ coef + np.reshape(self.intercept_, (1, -1))

    # ------------------------------------------------------------------ checks
    def _check_cv(self, n: int) -> int | str:
        """``cv`` (checked by check_params) against the number of stimuli ``n``."""
        cv = self.cv
        if isinstance(cv, str):
            return cv
        if cv > n:
            raise ParameterError(
                param="cv", value=cv, owner=self, allowed=f"an int in [2, n_stimuli={n}] or 'loo'",
                fix=f"Use 2 to {n} folds, or $cv='loo' for leave-one-out.")
        return int(cv)


def _make_folds(n: int, k: int, random_state: Any) -> list[NDArray[np.intp]]:
    """Test indices of ``k`` folds (sizes as scikit-learn's KFold), each sorted."""
    order = np.arange(n) if random_state is None else \
        check_random_state(random_state).permutation(n)
    return [np.sort(f) for f in np.array_split(order, k)]


def _sq(A: Array, axis: int) -> NDArray[np.float64]:
    """Sum of squares along ``axis`` accumulated in float64."""
    sub = "ij,ij->j" if axis == 0 else "ij,ij->i"
    return np.einsum(sub, A, A, dtype=np.float64)


class _Plan(ABC):
    """Factorisations shared by all batches of units; ``sse`` and ``refit`` per batch."""

    folds: list[NDArray[np.intp]]

    @abstractmethod
    def sse(self, Yb: Array) -> tuple[NDArray[np.float64], Any]:
        """Held-out sum of squared errors (n_alphas, b) and a cache for ``refit``."""

    @abstractmethod
    def refit(self, Yb: Array, index: NDArray[np.intp], cache: Any) -> Array:
        """Coefficients (p, b) fitted on all stimuli with alpha ``alphas[index[j]]``."""


class _KFold(_Plan):
    """A K-fold plan: it can also average the fold fits (``refit=False``)."""

    @abstractmethod
    def average(self, Yb: Array, index: NDArray[np.intp]
                ) -> tuple[Array, NDArray[np.float64]]:
        """Average the K fold fits at alpha ``alphas[index[j]]`` for unit ``j``.

        Returns the mean over folds of the coefficients (p, b) fitted without each fold,
        and of the fold intercepts ``μ_f − m_f·c_f`` (b,) in the centred coordinates
        (float64).
        """


class _PrimalKFold(_KFold):
    """K-fold in feature space: one (p, p) eigh and one triangular factor per fold."""

    def __init__(self, Xc: NDArray[np.float64], folds: list[NDArray[np.intp]],
                 alphas: NDArray[np.float64], intercept: bool, dt: np.dtype) -> None:
        n, p = Xc.shape
        self.folds, self.alphas, self.intercept, self.dt = folds, alphas, intercept, dt
        self.X = Xc.astype(dt)
        xtx = Xc.T @ Xc
        sx = Xc.sum(axis=0)
        self.fold = []
        for test in folds:
            Xf = Xc[test]
            n_f, n_tr = len(test), n - len(test)
            if n_f and np.all(np.diff(test) == 1):  # contiguous fold: views, not copies
                test = slice(int(test[0]), int(test[-1]) + 1)
            sx_f = Xf.sum(axis=0)
            m = (sx - sx_f) / n_tr if intercept else np.zeros(p)
            s, V = np.linalg.eigh(xtx - Xf.T @ Xf - n_tr * np.outer(m, m))
            R = scipy.linalg.qr((Xf - m) @ V, mode="r", check_finite=False)[0][:min(n_f, p)]
            square = R.shape[0] == p
            self.fold.append(dict(
                test=test, X=self.X[test], n_f=n_f, n_tr=n_tr, m=m.astype(dt),
                sx_f=sx_f.astype(dt),
                V=V.astype(dt), D=inverse_spectrum(s, alphas).astype(dt),
                R=np.asfortranarray(np.triu(R) if square else R, dtype=dt), square=square,
            ))
        s, V = np.linalg.eigh(xtx)
        self.V, self.D = V.astype(dt), inverse_spectrum(s, alphas).astype(dt)
        self.trmm = scipy.linalg.blas.get_blas_funcs("trmm", dtype=dt)

    def sse(self, Yb: Array) -> tuple[NDArray[np.float64], Any]:
        dt, b = self.dt, Yb.shape[1]
        # Per-fold blocks Y_fᵀ X_f (b, p); their sum is YᵀX. Arrays are unit-major (b, p).
        blocks, sums, sqs = [], [], []
        for f in self.fold:
            Yf = Yb[f["test"]]
            blocks.append(Yf.T @ f["X"])
            sums.append(Yf.sum(axis=0, dtype=np.float64))
            sqs.append(_sq(Yf, 0))
        yx = np.sum(blocks, axis=0)
        sy = np.sum(sums, axis=0)
        out = np.zeros((len(self.alphas), b))
        for f, bf, sy_f, yy_f in zip(self.fold, blocks, sums, sqs):
            mu = (sy - sy_f) / f["n_tr"] if self.intercept else np.zeros(b)
            mu_dt, m = mu.astype(dt), f["m"]
            # training fold, centred on its own means: X_trᵀY_tr − n_tr m μᵀ
            yx_tr = yx - bf - f["n_tr"] * np.outer(mu_dt, m)
            # held-out fold, centred on the training means
            bf_c = bf - np.outer(sy_f.astype(dt), m) - np.outer(mu_dt, f["sx_f"]) \
                + f["n_f"] * np.outer(mu_dt, m)
            yy = yy_f - 2 * mu * sy_f + f["n_f"] * mu**2
            Z = yx_tr @ f["V"]  # (b, p): coordinates of Xᵀy in the eigenbasis
            W = bf_c @ f["V"]
            cross = (W * Z) @ f["D"].T  # (b, n_alphas)
            out += yy[None, :] - 2 * cross.T.astype(np.float64)
            for a in range(len(self.alphas)):
                DZ = Z * f["D"][a]  # (b, p) C order = (p, b) Fortran order
                if f["square"]:
                    T = self.trmm(1.0, f["R"], DZ.T, overwrite_b=True).T
                else:
                    T = DZ @ f["R"].T
                out[a] += _sq(T, 1)
        return out, yx

    def refit(self, Yb: Array, index: NDArray[np.intp], cache: Any) -> Array:
        yx = cache if cache is not None else Yb.T @ self.X
        Z = yx @ self.V  # (b, p)
        Z *= self.D[index]
        return self.V @ Z.T

    def average(self, Yb: Array, index: NDArray[np.intp]
                ) -> tuple[Array, NDArray[np.float64]]:
        dt, b = self.dt, Yb.shape[1]
        blocks = [Yb[f["test"]].T @ f["X"] for f in self.fold]
        sums = [Yb[f["test"]].sum(axis=0, dtype=np.float64) for f in self.fold]
        yx, sy = np.sum(blocks, axis=0), np.sum(sums, axis=0)
        coef = np.zeros((self.X.shape[1], b), dtype=dt)
        shift = np.zeros(b)
        for f, bf, sy_f in zip(self.fold, blocks, sums):
            mu = (sy - sy_f) / f["n_tr"] if self.intercept else np.zeros(b)
            yx_tr = yx - bf - f["n_tr"] * np.outer(mu.astype(dt), f["m"])  # as in ``sse``
            Z = yx_tr @ f["V"]
            Z *= f["D"][index]
            c = f["V"] @ Z.T  # (p, b): the fold's fit at each unit's alpha
            coef += c
            shift += mu - f["m"].astype(np.float64) @ c
        k = len(self.fold)
        return coef / dt.type(k), shift / k


class _DualKFold(_KFold):
    """K-fold in sample space: one eigh of the centred training kernel per fold."""

    def __init__(self, Xc: NDArray[np.float64], folds: list[NDArray[np.intp]],
                 alphas: NDArray[np.float64], intercept: bool, dt: np.dtype) -> None:
        n = Xc.shape[0]
        self.folds, self.alphas, self.intercept, self.dt = folds, alphas, intercept, dt
        self.X = Xc.astype(dt)
        K = Xc @ Xc.T
        self.fold = []
        for test in folds:
            train = np.setdiff1d(np.arange(n), test)
            if intercept:  # centre the kernel on the training mean of the features
                r = K[:, train].mean(axis=1)
                Kc = K - r[:, None] - r[None, :] + r[train].mean()
            else:
                Kc = K
            lam, V = np.linalg.eigh(Kc[np.ix_(train, train)])
            m = Xc[train].mean(axis=0) if intercept else np.zeros(Xc.shape[1])
            self.fold.append(dict(
                test=test, train=train, V=V.astype(dt), m=m,
                P=(Kc[np.ix_(test, train)] @ V).astype(dt),
                D=inverse_spectrum(lam, alphas).astype(dt),
            ))
        lam, U = np.linalg.eigh(K)
        self.U, self.D = U.astype(dt), inverse_spectrum(lam, alphas).astype(dt)

    def sse(self, Yb: Array) -> tuple[NDArray[np.float64], Any]:
        out = np.zeros((len(self.alphas), Yb.shape[1]))
        for f in self.fold:
            Ytr, Yte = Yb[f["train"]], Yb[f["test"]]
            if self.intercept:
                mu = Ytr.mean(axis=0)
                Ytr, Yte = Ytr - mu, Yte - mu
            Z = f["V"].T @ Ytr
            for a in range(len(self.alphas)):
                E = f["P"] @ (Z * f["D"][a][:, None])
                np.subtract(Yte, E, out=E)
                out[a] += _sq(E, 0)
        return out, None

    def refit(self, Yb: Array, index: NDArray[np.intp], cache: Any) -> Array:
        Q = self.U.T @ Yb
        Q *= self.D[index].T
        return self.X.T @ (self.U @ Q)

    def average(self, Yb: Array, index: NDArray[np.intp]
                ) -> tuple[Array, NDArray[np.float64]]:
        b = Yb.shape[1]
        coef = np.zeros((self.X.shape[1], b), dtype=self.dt)
        shift = np.zeros(b)
        for f in self.fold:
            Ytr = Yb[f["train"]]
            mu = Ytr.mean(axis=0, dtype=np.float64) if self.intercept else np.zeros(b)
            Q = f["V"].T @ (Ytr - mu.astype(self.dt))
            Q *= f["D"][index].T
            dual = f["V"] @ Q  # (n_train, b): (K_c + αI)⁻¹ y_c, columns sum to 0 if centred
            # primal weights (X_train − m)ᵀ dual
            c = self.X[f["train"]].T @ dual - np.outer(f["m"], dual.sum(axis=0)).astype(self.dt)
            coef += c
            shift += mu - f["m"] @ c
        k = len(self.fold)
        return coef / self.dt.type(k), shift / k


class _LeaveOneOut(_Plan):
    """Closed-form leave-one-out from one thin SVD (scikit-learn's RidgeCV/GCV).

    A thin adapter: the algebra is :class:`conform_core.linalg.LeaveOneOutRidge`.
    """

    def __init__(self, Xc: NDArray[np.float64], alphas: NDArray[np.float64],
                 intercept: bool, dt: np.dtype) -> None:
        self.folds, self.alphas, self.dt = [np.arange(Xc.shape[0])], alphas, dt
        self.ridge = LeaveOneOutRidge(Xc, alphas, intercept=intercept, dtype=dt)

    def sse(self, Yb: Array) -> tuple[NDArray[np.float64], Any]:
        return self.ridge.sse(Yb)

    def refit(self, Yb: Array, index: NDArray[np.intp], cache: Any) -> Array:
        return self.ridge.coef(Yb, index, projection=cache)
