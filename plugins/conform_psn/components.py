"""The ``psn`` and ``gsn`` denoiser components (conform's estimator interface).

Both fit on a :class:`~conform_core.data.ConditionTrials` and transform one into a
:class:`~conform_core.data.ConditionData`. GSN's held-out split is defined by the
position of each condition, so a fit would depend on how the conditions happen to be
arranged; the components therefore fit on the conditions sorted by stimulus id, which
makes them equivariant to any re-arrangement (the functional :func:`psn` and
:func:`perform_gsn` keep the official position-based split, for parity).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.components import Denoiser
from conform_core.data import ConditionData, ConditionTrials
from conform_core.exceptions import ParameterError, ShapeError
from conform_core.validation import (
    check_bool_param,
    check_choice,
    check_existing_path,
    check_float_param,
)

from ._gsn import noise_ceiling, perform_gsn
from ._options import CV_PRESETS, PRESETS, check_call
from ._psn import psn

__all__ = ["PSNDenoiser", "GSNDenoiser"]

_DROP = ("input_data", "residuals", "gsn_result")


def _canonical(data: ConditionTrials) -> ConditionTrials:
    order = np.argsort(data.stimulus_ids, kind="stable")
    return data if np.all(order == np.arange(order.size)) else data.take_conditions(order)


def _check_units(component: Denoiser, data: ConditionTrials) -> None:
    if data.n_units != component.n_units_:
        raise ShapeError(
            f"{type(component).__name__} was fitted on {component.n_units_} units but got "
            f"{data.n_units}. Apply it to the same units, in the same order, as in fit."
        )


def _deviation(data: ConditionTrials, means: NDArray) -> NDArray[np.float64]:
    """Trial means minus the training unit means; a unit without any trial contributes 0."""
    finite = np.isfinite(data.data)
    counts = finite.sum(axis=2)
    total = np.where(finite, data.data, 0).sum(axis=2, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = total / counts
    dev = avg - means[:, None]
    dev[counts == 0] = 0.0
    return dev


class PSNDenoiser(Denoiser):
    """Low-rank PSN denoising of condition responses (any preset, or cross-validated).

    Fits GSN signal/noise covariances on training trials, chooses the basis
    dimensions to keep, and applies the resulting linear denoiser to trial averages:
    ``x_hat = denoiser_.T @ (mean_trials(x) - unit_means_) + unit_means_``.

    Parameters
    ----------
    preset : {"standard", "conservative", "aggressive", "compare", "wiener", "cv"}, \
default="standard"
        PSN preset; "cv" uses the cross-validated legacy API (:func:`psn_cv`).
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
        Any other :func:`psn` option (or, with preset "cv", :func:`psn_cv` option).

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
        The official result dict of the fit, without the large per-trial arrays.
    n_units_ : int
        Units seen in fit.

    Examples
    --------
    >>> from conform_core.testing.fakes import make_condition_trials
    >>> trials = make_condition_trials(n_units=12, n_conditions=40)
    >>> PSNDenoiser(preset="aggressive").fit_transform(trials).data.shape
    (12, 40)
    """

    def __init__(self, preset: str = "standard", basis: Any = None, criterion: str | None = None,
                 threshold_method: str | None = None, alpha: float | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.preset = preset
        self.basis = basis
        self.criterion = criterion
        self.threshold_method = threshold_method
        self.alpha = alpha
        self.options = options

    def _legacy(self) -> bool:
        return isinstance(self.preset, str) and self.preset.lower() in CV_PRESETS

    def _psn_options(self) -> dict[str, Any]:
        """The options ``fit`` passes to :func:`psn`: ``options`` overridden by the named
        parameters that are set (for preset "cv", ``basis`` is the ``V`` code)."""
        opts = dict(self.options or {})
        named = {"basis": self.basis, "criterion": self.criterion,
                 "threshold_method": self.threshold_method, "alpha": self.alpha}
        if self._legacy():
            if self.basis is not None:
                opts["V"] = self.basis
            named = {}
        opts.update({k: v for k, v in named.items() if v is not None})
        return opts

    def check_params(self) -> None:
        """Check the preset and every option as :func:`psn` would, without the data.

        ``preset`` (a known preset), ``options`` (a dict of known option names), ``basis``,
        ``criterion``, ``threshold_method``, ``alpha`` and every option value, combinations
        PSN rejects (e.g. Wiener with a basis), ``gsn_args``, and a ``gsn_result`` path (an
        existing ``.npz``). With preset "cv", the options of the cross-validated API.
        Only the length of ``unit_groups`` (one label per unit) waits for the data.
        """
        names = [*PRESETS, *CV_PRESETS]
        if not isinstance(self.preset, str) or self.preset.lower() not in names:
            check_choice(self.preset, names, name="preset", owner=self)
        if self.options is not None and not isinstance(self.options, dict):
            raise ParameterError(
                f"The 'options' parameter of PSNDenoiser must be a dict of psn options or None; "
                f"got {self.options!r}. Pass e.g. options={{'basis_ordering': 'signalvariance'}}."
            )
        if self._legacy():
            ignored = [k for k in ("criterion", "threshold_method", "alpha")
                       if getattr(self, k) is not None]
            if ignored:
                raise ParameterError(
                    f"PSNDenoiser(preset={self.preset!r}) chooses dimensions by cross-validation "
                    f"and takes no {', '.join(repr(k) for k in ignored)}; got "
                    + ", ".join(f"{k}={getattr(self, k)!r}" for k in ignored)
                    + ". Remove them, or use another preset; options of the cross-validated "
                    "API (cv_mode, cv_threshold_per, ...) go in options."
                )
        opts = self._psn_options()
        cache = opts.get("gsn_result")
        if isinstance(cache, (str, os.PathLike)):
            path = check_existing_path(
                cache, name="gsn_result", owner="PSNDenoiser's options",
                fix="Pass a .npz file written from a previous result's 'gsn_result'.")
            if path.suffix != ".npz":
                raise ParameterError(
                    f"The 'gsn_result' option of PSNDenoiser must be a .npz file (or a dict); "
                    f"got {str(cache)!r}. Write it with np.savez(path, **result['gsn_result'])."
                )
        check_call(self.preset, None, opts)

    def _fit(self, data: ConditionTrials) -> PSNDenoiser:
        data = _canonical(data)
        results = psn(np.asarray(data.data), self.preset, **self._psn_options())
        self.denoiser_ = results["denoiser"]
        self.unit_means_ = results["unit_means"]
        self.best_threshold_ = results["best_threshold"]
        self.signalsubspace_ = results.get("signalsubspace")
        gsn = results.get("gsn_result")
        self.ncsnr_ = None if gsn is None else np.asarray(gsn["ncsnr"])
        self.results_ = {k: v for k, v in results.items() if k not in _DROP}
        self.n_units_ = data.n_units
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        _check_units(self, data)
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
    n_trials : float or None, default=None
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

    def __init__(self, wantshrinkage: bool = True, n_trials: float | None = None) -> None:
        self.wantshrinkage = wantshrinkage
        self.n_trials = n_trials

    def check_params(self) -> None:
        """Check ``wantshrinkage`` (True/False) and ``n_trials`` (a number > 0, or None)."""
        check_bool_param(self.wantshrinkage, name="wantshrinkage", owner=self)
        check_float_param(self.n_trials, name="n_trials", owner=self, low=0, low_open=True,
                          none_ok=True, fix="Use None to take the fitted data's trial counts.")

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
        self.n_units_ = data.n_units
        return self

    def noise_ceiling(self, n_trials: float = 1) -> NDArray[np.float64]:
        """Noise ceiling (percent) of an average of ``n_trials`` trials, per unit."""
        from conform_core.components.base import check_is_fitted

        check_is_fitted(self)
        return noise_ceiling(self.ncsnr_, n_trials)

    def _transform(self, data: ConditionTrials) -> ConditionData:
        _check_units(self, data)
        return data.mean()
