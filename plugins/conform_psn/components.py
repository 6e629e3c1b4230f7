"""The ``psn`` and ``gsn`` denoiser components (conform's estimator interface).

Both fit on a :class:`~conform_core.data.ConditionTrials` and transform one into a
:class:`~conform_core.data.ConditionData`. GSN's held-out split is defined by the
position of each condition, so a fit would depend on how the conditions happen to be
arranged; the components therefore fit on the conditions sorted by stimulus id, which
makes them equivariant to any re-arrangement (the functional :func:`psn` and
:func:`perform_gsn` keep the official position-based split, for parity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core.components import Denoiser
from conform_core.components.base import check_is_fitted
from conform_core.constraints import Boolean, InstanceOf, Interval, check_constraints
from conform_core.data import ConditionData, ConditionTrials, mean_over_trials
from conform_core.exceptions import ParameterError
from conform_core.metrics import noise_ceiling

from ._auto import AUTO, AUTO_CONSTRAINTS, AUTO_FIXES, fit_auto
from ._gsn import perform_gsn
from ._options import CV_PRESETS, PRESETS, PSN_CONSTRAINTS, check_call
from ._psn import psn
from ._validation import Preset

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["PSNDenoiser", "GSNDenoiser"]

_DROP = ("input_data", "residuals", "gsn_result")

#: Peak memory of a fit plus transform, in float64 words per term: (units x units matrices,
#: copies of the units x conditions x trials data, units x conditions arrays). Counted from
#: the arrays each path keeps alive at its peak and checked against tracemalloc on simulated
#: data (tests/plugins/conform_psn/test_peak_memory.py). GSN holds ~9 units^2 matrices
#: (noise, data, signal covariances, the biconvex iterates, shrinkage candidates, eigh); the
#: official presets add the basis, its projections and the denoiser; "compare" and "hybrid"
#: a second basis or per-unit denoiser columns; "cv" (legacy) per-fold denoisers; "auto" the
#: whitened eigenbasis and its two factors, and the candidate filters it scores per fold.
_PEAK_TERMS: dict[str, tuple[float, float, float]] = {
    "gsn": (10, 1, 4),
    "standard": (10, 2, 8),
    "compare": (13, 2.5, 8),
    "hybrid": (13, 2.5, 8),
    "cv": (16, 2, 8),
    "auto": (18, 3, 8),
}


def _peak_bytes(terms: tuple[float, float, float], size: DataSize) -> int:
    """Bytes of ``terms`` (see :data:`_PEAK_TERMS`) plus one copy of the data.

    The copy is the fit's re-ordering of the conditions by stimulus id (made when they are
    not in that order already). Everything is counted in float64, an upper bound for
    float32 data.
    """
    u, c, t = int(size.n_units), int(size.n_conditions), max(int(size.n_trials), 1)
    dense, copies, means = terms
    return int(8 * (dense * u * u + (copies + 1) * u * c * t + means * u * c))


def _canonical(data: ConditionTrials) -> ConditionTrials:
    order = np.argsort(data.stimulus_ids, kind="stable")
    return data if np.all(order == np.arange(order.size)) else data.take_conditions(order)


def _deviation(data: ConditionTrials, means: NDArray) -> NDArray[np.float64]:
    """Return trial means (in float64) minus the training unit means.

    A unit without any trial contributes 0.
    """
    avg = mean_over_trials(np.asarray(data.data, dtype=np.float64))
    dev = avg - means[:, None]
    dev[np.isnan(avg)] = 0.0
    return dev


class PSNDenoiser(Denoiser):
    """Low-rank PSN denoising of condition responses (any preset, or cross-validated).

    Fits GSN signal/noise covariances on training trials, chooses the basis
    dimensions to keep, and applies the resulting linear denoiser to trial averages:
    ``x_hat = denoiser_.T @ (mean_trials(x) - unit_means_) + unit_means_``.

    Parameters
    ----------
    preset : {"auto", "standard", "conservative", "aggressive", "compare", "wiener", \
"cv"} or None, default=None
        None is "auto", unless a PSN option is set (``basis``, ``criterion``,
        ``threshold_method``, ``alpha``, or a :func:`psn` option in ``options``): then it is
        PSN's own default, "standard", as in :func:`psn`.
        "auto" (conform's, not an official preset) chooses among the official presets,
        rank-limited Wiener filters on GSN's covariances and the unit means by
        cross-validation on the training trials, and shrinks toward the unit means when
        the signal is weak (see ``docs/psn.md``, "Which preset?"). The others are PSN's
        official presets; "cv" uses the cross-validated legacy API (:func:`psn_cv`).
    basis : str or ndarray or None, default=None
        Overrides the preset's basis ('signal', 'difference', 'noise', 'pca',
        'random', 'compare', or an (n_units, D) matrix). For "cv": the ``V`` code.
    criterion : str or None, default=None
        Overrides the preset's criterion ('max-tradeoff', 'prediction', 'variance',
        'variance_eigenvalues', 'wiener').
    threshold_method : {"global", "hybrid"} or None, default=None
        One K for all units, or one per unit on the shared order.
    alpha : float or None, default=None
        Interpolation between the prediction peak (0) and all dimensions (1).
    options : dict or None, default=None
        Any other :func:`psn` option (or, with preset "cv", :func:`psn_cv` option; with
        preset "auto": ``n_folds``, ``k_max``, ``z_threshold``, ``presets``).

    Attributes
    ----------
    denoiser_ : ndarray of shape (n_units, n_units)
        Applied transposed (``denoiser_.T @ deviation``).
    unit_means_ : ndarray of shape (n_units,)
        Training unit means.
    best_threshold_ : int, ndarray or float
        Dimensions kept (per unit for hybrid; effective dimensions for Wiener).
    signalsubspace_ : ndarray of shape (n_units, K) or None
        Kept basis vectors (global thresholds).
    ncsnr_ : ndarray of shape (n_units,) or None
        GSN's per-unit ncsnr (None when the basis needs no GSN, e.g. legacy PCA).
    results_ : dict
        The official result dict of the fit, without the large per-trial arrays (for
        "auto": what it chose and why).
    chosen_ : str
        The preset used: the preset itself, or what "auto" chose (``"mean"``, an
        official preset, or ``"wiener-k<K>-<rule>"``: a rank-K whitened Wiener filter).
    cv_scores_ : dict of str to float or None
        "auto" only: each candidate's cross-validated error in NMSE units (about 1 for
        the unit means; lower is better).
    shrinkage_ : float
        Share of the chosen denoiser's deviation from the unit means removed (0: none,
        1: the unit means); 0 for the official presets.
    returns_mean_ : bool
        True when the denoiser returns the training unit means (no usable signal found).
    n_units_ : int
        Units seen in fit.

    Examples
    --------
    >>> from conform_core.testing.fakes import make_condition_trials
    >>> trials = make_condition_trials(n_units=12, n_conditions=40)
    >>> PSNDenoiser(preset="aggressive").fit_transform(trials).data.shape
    (12, 40)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "preset": [Preset((AUTO, *PRESETS, *CV_PRESETS)), None],
        "basis": [*PSN_CONSTRAINTS["basis"], Interval(int, 0, 5), None],
        "criterion": [*PSN_CONSTRAINTS["criterion"], None],
        "threshold_method": [*PSN_CONSTRAINTS["threshold_method"], None],
        "alpha": PSN_CONSTRAINTS["alpha"],
        "options": [InstanceOf(dict, "a dict of psn options"), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "basis": "Use a basis name or an (n_units, D) matrix; with $preset='cv', the V code of "
                 "psn_cv (0..5) or a matrix. None keeps the preset's.",
        "criterion": "None keeps the preset's.",
        "preset": "None chooses 'auto' (or 'standard' when a PSN option is set).",
        "threshold_method": "None keeps the preset's.",
        "alpha": "0 keeps the prediction peak, 1 every dimension; None turns interpolation off.",
        "options": "Pass e.g. $options={'basis_ordering': 'signalvariance'}.",
    }

    def __init__(self, preset: str | None = None, basis: Any = None, criterion: str | None = None,
                 threshold_method: str | None = None, alpha: float | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.preset = preset
        self.basis = basis
        self.criterion = criterion
        self.threshold_method = threshold_method
        self.alpha = alpha
        self.options = options

    def _preset(self) -> str:
        """Return the preset used: ``preset``; for None, "auto" ("standard" with PSN options)."""
        if isinstance(self.preset, str):
            return self.preset.lower()
        named = any(getattr(self, k) is not None
                    for k in ("basis", "criterion", "threshold_method", "alpha"))
        psn_options = any(k not in AUTO_CONSTRAINTS for k in (self.options or {}))
        return "standard" if named or psn_options else AUTO

    def _legacy(self) -> bool:
        return self._preset() in CV_PRESETS

    def _auto(self) -> bool:
        return self._preset() == AUTO

    def _psn_options(self) -> dict[str, Any]:
        """Return the options ``fit`` passes to :func:`psn`.

        ``options`` overridden by the named parameters that are set (for preset "cv",
        ``basis`` is the ``V`` code).
        """
        opts = dict(self.options or {})
        named = {"basis": self.basis, "criterion": self.criterion,
                 "threshold_method": self.threshold_method, "alpha": self.alpha}
        if self._legacy():
            if self.basis is not None:
                opts["V"] = self.basis
            named = {}
        opts.update({k: v for k, v in named.items() if v is not None})
        return opts

    def _check_params_extra(self) -> None:
        """Check the options as :func:`psn` (or :func:`psn_cv`, for preset "cv") would.

        The named parameters are declared in ``_parameter_constraints``; here, every option
        (known names, values, combinations PSN rejects such as Wiener with a basis,
        ``gsn_args``, a ``gsn_result`` path) without the data. Only the length of
        ``unit_groups`` (one label per unit) waits for the data.
        """
        if self._auto():
            named = [k for k in ("basis", "criterion", "threshold_method", "alpha")
                     if getattr(self, k) is not None]
            if named:
                names = ", ".join(f"${k}" for k in named)
                raise ParameterError(
                    "With $preset='auto' PSNDenoiser chooses the denoiser itself, so it takes "
                    f"no {names}.", param=named[0], value=getattr(self, named[0]), owner=self,
                    fix=f"Remove {names}, or pick an official preset (e.g. $preset='wiener').")
            check_constraints(AUTO_CONSTRAINTS, dict(self.options or {}), owner=self,
                              fixes=AUTO_FIXES, reject_unknown=True)
            return
        if self._legacy():
            ignored = [k for k in ("criterion", "threshold_method", "alpha")
                       if getattr(self, k) is not None]
            if ignored:
                names = ", ".join(f"${k}" for k in ignored)
                raise ParameterError(
                    "With $preset='cv' PSNDenoiser chooses dimensions by cross-validation, so it "
                    f"takes no {names}.", param=ignored[0], value=getattr(self, ignored[0]),
                    owner=self, fix=f"Remove {names}, or use another preset; options of the "
                    "cross-validated API (cv_mode, cv_threshold_per, ...) go in $options.")
        check_call(self._preset(), None, self._psn_options())

    def peak_memory(self, size: DataSize) -> int:
        """Return the peak bytes of ``fit`` plus ``transform`` on data of ``size``.

        ``8 * (a U^2 + (b + 1) U C T + m U C)`` for U units, C conditions and T trials, with
        per path (float64 words): the official presets and Wiener ``a, b, m = 10, 2, 8``;
        "compare" and the hybrid threshold ``13, 2.5, 8``; "cv" ``16, 2, 8``; "auto" (the
        default) ``18, 3, 8``. ``a`` counts the dense units x units matrices alive at the peak
        (GSN's covariances and iterates, the basis, the denoiser, "auto"'s whitened
        eigenbasis and candidate filters), ``b + 1`` the copies of the data (the re-ordered
        input, residuals, trial contrasts), ``m`` the units x conditions arrays (trial
        means, deviations, the denoised output). For 1,000 conditions x 3 trials "auto"
        comes to about 1.6x the measured peak at 2,000-5,000 units (144 + 256,000/U bytes
        per U^2 against the measured ~111).
        """
        preset = self._preset()
        opts = self._psn_options()
        if preset == AUTO:
            key = "auto"
        elif preset in CV_PRESETS:
            key = "cv"
        elif preset == "compare" or opts.get("basis") == "compare":
            key = "compare"
        elif opts.get("threshold_method") == "hybrid":
            key = "hybrid"
        else:
            key = "standard"
        return _peak_bytes(_PEAK_TERMS[key], size)

    def _fit(self, data: ConditionTrials) -> PSNDenoiser:
        data = _canonical(data)
        if self._auto():
            return self._fit_auto(np.asarray(data.data))
        results = psn(np.asarray(data.data), self._preset(), **self._psn_options())
        self.denoiser_ = results["denoiser"]
        self.unit_means_ = results["unit_means"]
        self.best_threshold_ = results["best_threshold"]
        self.signalsubspace_ = results.get("signalsubspace")
        gsn = results.get("gsn_result")
        self.ncsnr_ = None if gsn is None else np.asarray(gsn["ncsnr"])
        self.results_ = {k: v for k, v in results.items() if k not in _DROP}
        self.chosen_ = self._preset()
        self.cv_scores_ = None
        self.shrinkage_ = 0.0
        self.returns_mean_ = bool(not np.any(self.denoiser_))
        return self

    def _fit_auto(self, data: NDArray) -> PSNDenoiser:
        fit = fit_auto(data, **dict(self.options or {}))
        self.denoiser_ = fit.denoiser
        self.unit_means_ = fit.unit_means
        self.best_threshold_ = fit.best_threshold
        self.signalsubspace_ = None
        self.ncsnr_ = np.asarray(fit.gsn_result["ncsnr"])
        self.chosen_ = fit.chosen
        self.cv_scores_ = fit.cv_scores
        self.shrinkage_ = fit.shrinkage
        self.returns_mean_ = fit.returns_mean
        self.results_ = {"denoiser": fit.denoiser, "unit_means": fit.unit_means,
                         "best_threshold": fit.best_threshold, "chosen": fit.chosen,
                         "cv_scores": fit.cv_scores, "shrinkage": fit.shrinkage,
                         "returns_mean": fit.returns_mean, **fit.details}
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        dev = _deviation(data, self.unit_means_)
        out = self.denoiser_.T @ dev + self.unit_means_[:, None]
        return ConditionData(out.astype(data.data.dtype), data.stimulus_ids, data.subject,
                             data.units)

    def noise_component(self, data: ConditionTrials) -> ConditionData:
        """Return what the denoiser removes: trial mean minus the denoised response."""
        denoised = self.transform(data)
        average = _deviation(data, self.unit_means_) + self.unit_means_[:, None]
        return denoised.with_data((average - denoised.data).astype(data.data.dtype))


class GSNDenoiser(Denoiser):
    """GSN signal/noise estimation; returns trial averages and exposes noise ceilings.

    ``transform`` is the trial average (nothing is denoised); the fitted attributes
    carry GSN's covariances, per-unit ncsnr and noise ceilings, for ``conform fit`` to
    report data quality.

    Parameters
    ----------
    wantshrinkage : bool, default=True
        Choose shrinkage toward the diagonal by held-out likelihood (else none).
    n_trials : float >= 1 or None, default=None
        Trials averaged for ``noise_ceiling_``; None uses the fitted data's trial
        counts (``1 / mean_c(1 / n_c)``).

    Attributes
    ----------
    ncsnr_ : ndarray of shape (n_units,)
        Noise-ceiling SNR per unit (GSN's raw signal sd over noise sd).
    noise_ceiling_ : ndarray of shape (n_units,)
        Percent of variance explainable in an ``n_trials`` average.
    cSb_, cNb_ : ndarray of shape (n_units, n_units)
        Signal and noise covariances (positive semi-definite).
    gsn_result_ : dict
        The official ``perform_gsn`` dict.
    n_units_ : int
        Units seen in fit.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "wantshrinkage": [Boolean()],
        "n_trials": [Interval(float, 1, None), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "n_trials": "Use None to take the fitted data's trial counts.",
    }

    def __init__(self, wantshrinkage: bool = True, n_trials: float | None = None) -> None:
        self.wantshrinkage = wantshrinkage
        self.n_trials = n_trials

    def peak_memory(self, size: DataSize) -> int:
        """Return the peak bytes of ``fit`` plus ``transform`` on data of ``size``.

        ``8 * (10 U^2 + 2 U C T + 4 U C)`` for U units, C conditions and T trials: GSN's
        dense units x units float64 matrices (noise, data and signal covariances, the
        biconvex iterates, the shrinkage candidates, an eigendecomposition), two copies of
        the data (the re-ordered input and the trial contrasts) and the units x conditions
        trial means.
        """
        return _peak_bytes(_PEAK_TERMS["gsn"], size)

    def _fit(self, data: ConditionTrials) -> GSNDenoiser:
        data = _canonical(data)
        result = perform_gsn(np.asarray(data.data), {"wantshrinkage": bool(self.wantshrinkage)})
        self.gsn_result_ = result
        self.ncsnr_ = np.asarray(result["ncsnr"], dtype=np.float64)
        self.cSb_, self.cNb_ = result["cSb"], result["cNb"]
        if self.n_trials is None:
            counts = np.maximum(data.trial_counts(), 1)
            n_avg = 1.0 / float(np.mean(1.0 / counts))
        else:
            n_avg = float(self.n_trials)
        self.noise_ceiling_ = noise_ceiling(self.ncsnr_, n_avg)
        return self

    def noise_ceiling(self, n_trials: float = 1) -> NDArray[np.float64]:
        """Noise ceiling (percent) of an average of ``n_trials`` trials, per unit.

        :func:`conform_core.metrics.noise_ceiling` of the fitted ``ncsnr_``.
        """
        check_is_fitted(self)
        return noise_ceiling(self.ncsnr_, n_trials)

    def _transform(self, data: ConditionTrials) -> ConditionData:
        return data.mean()
