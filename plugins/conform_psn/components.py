"""The ``psn`` and ``gsn`` denoiser components (conform's estimator interface).

Both fit on a :class:`~conform_core.data.ConditionTrials` and transform one into a
:class:`~conform_core.data.ConditionData`. GSN's held-out split is defined by the
position of each condition, so a fit would depend on how the conditions happen to be
arranged; the components therefore fit on the conditions sorted by stimulus id, which
makes them equivariant to any re-arrangement (the functional :func:`psn` and
:func:`perform_gsn` keep the official position-based split, for parity).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core.components import Denoiser
from conform_core.components.base import check_is_fitted
from conform_core.constraints import Boolean, InstanceOf, Interval, Options, check_constraints
from conform_core.data import ConditionData, ConditionTrials, mean_over_trials
from conform_core.exceptions import ParameterError
from conform_core.metrics import noise_ceiling

from ._auto import AUTO, AUTO_CONSTRAINTS, AUTO_FIXES
from ._fit import Piece, PieceSpec, fit_piece, fit_piecewise
from ._gsn import perform_gsn
from ._lowrank import DEFAULT_RANK
from ._options import CV_PRESETS, PRESETS, PSN_CONSTRAINTS, check_call
from ._piecewise import ATLAS, DEFAULT_MAX_PARCEL, largest_neighbourhood
from ._validation import Preset

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conform_core.memory import DataSize

__all__ = ["PSNDenoiser", "GSNDenoiser"]

#: Peak memory of a fit plus transform, in float64 words per term: (units x units matrices,
#: copies of the units x conditions x trials data, units x conditions arrays). Counted from
#: the arrays each path keeps alive at its peak and checked against tracemalloc on simulated
#: data (tests/plugins/conform_psn/test_peak_memory.py). GSNDenoiser keeps ~9 units^2
#: matrices (noise, data, signal covariances, the biconvex iterates, shrinkage candidates,
#: eigh); inside PSN GSN keeps only cSb and cNb and shares its last eigendecomposition with
#: the basis, so the official presets hold ~6 with the basis, its projections and the
#: denoiser; "compare" and "hybrid" a second basis or per-unit denoiser columns; "cv"
#: (legacy) per-fold denoisers; "auto" the whitened eigenbasis and its two factors, and the
#: candidate filters it scores per fold.
_PEAK_TERMS: dict[str, tuple[float, float, float]] = {
    "gsn": (10, 1, 4),
    "standard": (6, 2, 8),
    "compare": (10, 2.5, 8),
    "hybrid": (11, 2.5, 8),
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


#: Low-rank terms, float64 words: (factors per unit and subspace direction, copies of the
#: data, units x conditions arrays); calibrated with tracemalloc in test_peak_memory.py.
_LOWRANK_TERMS = (12, 1.5, 4)

_LIGHTER_PARCELS = (DEFAULT_MAX_PARCEL, 500, 250)
"""``max_parcel`` values a refused fit is offered (those below its current piece size)."""


def _lowrank_rank(rank: int | None, size: DataSize) -> int:
    return int(rank) if rank is not None else DEFAULT_RANK


def _lowrank_peak(rank: int | None, size: DataSize) -> int:
    """Peak bytes of a low-rank fit: ``8 (f U q + (b + 1) U C T + m U C)``, q directions."""
    u, c, t = int(size.n_units), int(size.n_conditions), max(int(size.n_trials), 1)
    q = min(_lowrank_rank(rank, size), u)
    factors, copies, means = _LOWRANK_TERMS
    return int(8 * (factors * u * q + (copies + 1) * u * c * t + means * u * c))


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
    covariance : {"full", "lowrank"}, default="full"
        "full": GSN's exact units x units covariances (memory ~ units^2: up to a few
        thousand units). "lowrank": covariances low rank plus diagonal in a subspace of
        ``rank`` directions (memory ~ units x conditions x trials), for whole-cortex data.
    rank : int >= 1 or None, default=None
        Directions of the low-rank subspace (None: the default of ``psn(...,
        covariance="lowrank")``). Only with ``covariance="lowrank"``.
    parcels : "atlas", int, array-like of shape (n_units,) or None, default=None
        Piecewise PSN: fit independently per parcel (each parcel a Dask task) and blend.
        "atlas": the units' ROI labels; an int N: N contiguous blocks in unit order; or one
        label per unit. None: all units in one fit up to ``max_parcel`` units, beyond that
        the fewest contiguous blocks of at most ``max_parcel`` (with full covariances; low
        rank fits all units at once). Exact full-rank PSN costs ~units^3 time and ~units^2
        memory; see ``conform_psn._piecewise.DEFAULT_MAX_PARCEL`` for what blocks cost.
    overlap : float in [0, 1), default=0.0
        Piecewise only: each parcel is fitted with this share (of its size) of the nearest
        units of other parcels, and the outputs of the fits that saw a unit are blended.
    max_parcel : int >= 2, default=1000
        Largest piece fitted at once: larger parcels (and, with ``parcels=None``, larger
        data) are split into contiguous pieces of at most this many units. Set it to the
        number of units or more for one exact fit of all units.
    n_jobs : int >= 1, default=1
        Piecewise fits, outside a Dask cluster: parcels fitted at once (threads). Under
        ``conform fit --workers N`` the parcels go to the cluster's workers instead.

    Attributes
    ----------
    denoiser_ : ndarray of shape (n_units, n_units) or LinearOperator
        Applied transposed (``denoiser_.T @ deviation``). With ``covariance="lowrank"`` or
        ``parcels`` a :class:`scipy.sparse.linalg.LinearOperator` of the same shape (a
        dense matrix would not fit in memory at whole-cortex scale).
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
        "covariance": [Options(("full", "lowrank"))],
        "rank": [Interval(int, 1, None), None],
        "parcels": [Options((ATLAS,)), Interval(int, 1, None),
                    InstanceOf((np.ndarray, list, tuple), "one parcel label per unit"), None],
        "overlap": [Interval(float, 0, 1, closed="left")],
        "max_parcel": [Interval(int, 2, None)],
        "n_jobs": [Interval(int, 1, None)],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "covariance": "Use 'full' (exact, up to a few thousand units) or 'lowrank' (any size).",
        "parcels": "Use 'atlas' (the units' ROI labels), a number of blocks such as 50, or one "
                   "label per unit; None fits all units at once.",
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
                 options: dict[str, Any] | None = None, covariance: str = "full",
                 rank: int | None = None, parcels: Any = None, overlap: float = 0.0,
                 max_parcel: int = DEFAULT_MAX_PARCEL, n_jobs: int = 1) -> None:
        self.preset = preset
        self.basis = basis
        self.criterion = criterion
        self.threshold_method = threshold_method
        self.alpha = alpha
        self.options = options
        self.covariance = covariance
        self.rank = rank
        self.parcels = parcels
        self.overlap = overlap
        self.max_parcel = max_parcel
        self.n_jobs = n_jobs

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
        ``gsn_args``, a ``gsn_result`` path) without the data, and the scale options
        (``rank`` only with low rank, which the legacy "cv" preset lacks). Only the length
        of ``unit_groups`` and of parcel labels (one per unit) wait for the data.
        """
        self._check_scale_params()
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

    def _check_scale_params(self) -> None:
        if self.rank is not None and self.covariance != "lowrank":
            raise ParameterError(
                "PSNDenoiser: $rank sets the low-rank subspace, but $covariance is "
                f"{self.covariance!r}.", param="rank", value=self.rank, owner=self,
                fix="Add $covariance='lowrank', or remove $rank.")
        if self.covariance == "lowrank" and self._legacy():
            raise ParameterError(
                "PSNDenoiser: the cross-validated legacy API ($preset='cv') has no low-rank "
                "mode.", param="covariance", value=self.covariance, owner=self,
                fix="Use $preset='auto' or an official preset with $covariance='lowrank'.")

    def peak_memory(self, size: DataSize) -> int:
        """Return the peak bytes of ``fit`` plus ``transform`` on data of ``size``.

        ``8 * (a U^2 + (b + 1) U C T + m U C)`` for U units, C conditions and T trials, with
        per path (float64 words): the official presets and Wiener ``a, b, m = 6, 2, 8``;
        "compare" ``10, 2.5, 8``; the hybrid threshold ``11, 2.5, 8``; "cv" ``16, 2, 8``;
        "auto" (the default) ``18, 3, 8``. ``a`` counts the dense units x units matrices alive
        at the peak (GSN's covariances and iterates, the basis, the denoiser, "auto"'s
        whitened eigenbasis and candidate filters), ``b + 1`` the copies of the data (the
        re-ordered input, residuals, trial contrasts), ``m`` the units x conditions arrays
        (trial means, deviations, the denoised output). Low rank: ``8 (12 U q + 2.5 U C T +
        4 U C)`` for ``q = rank`` (100 by default). Piecewise (``parcels``, or more than
        ``max_parcel`` units): ``n_jobs`` pieces at once at their largest, plus the
        data-wide arrays and the blended denoiser. Each checked against tracemalloc's peak
        in ``tests/plugins/conform_psn/test_peak_memory.py`` (1.1-2.2x of it).
        """
        if not self._whole(int(size.n_units)):
            return self._piecewise_peak(size)
        if self.covariance == "lowrank":
            return _lowrank_peak(self.rank, size)
        return self._piece_peak(size)

    def check_roi_labels(self, labels: Sequence[str]) -> None:
        """Refuse ``parcels="atlas"`` before the fit when the units carry no ROI labels."""
        if isinstance(self.parcels, str) and self.parcels == ATLAS and not any(labels):
            raise ParameterError(
                "psn: parcels='atlas' fits one piece per ROI label of the units, and this "
                "dataset's units carry none.", param="parcels", value=self.parcels,
                owner=type(self).__name__,
                fix="Use $parcels=N for N contiguous blocks of units, or a dataset with atlas "
                    "labels (e.g. bids with an atlas dseg, mosaic with an atlas).")

    def _whole(self, n_units: int) -> bool:
        """Return whether all ``n_units`` are fitted at once.

        So they are without ``parcels``, with low rank or at most ``max_parcel`` units.
        """
        return self.parcels is None and (self.covariance == "lowrank"
                                         or n_units <= int(self.max_parcel))

    def _parcels(self, n_units: int) -> Any:
        """``parcels``, or for None the fewest contiguous blocks of at most ``max_parcel``."""
        return self.parcels if self.parcels is not None else -(-n_units // int(self.max_parcel))

    def _piece_peak(self, size: DataSize) -> int:
        """Peak of one full-rank fit (the preset's terms, :data:`_PEAK_TERMS`)."""
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

    def _piecewise_peak(self, size: DataSize) -> int:
        """Data-wide arrays, the blended denoiser, and ``n_jobs`` parcel fits at once.

        The parcels are not known before the data (atlas labels), so each is taken at its
        largest: ``max_parcel`` units (or the block size for ``parcels=N``) plus its overlap.
        """
        parcels = self._parcels(int(size.n_units))
        n_parcels = parcels if isinstance(parcels, int) else None
        hood = largest_neighbourhood(int(size.n_units), n_parcels, int(self.max_parcel),
                                     float(self.overlap))
        piece_size = replace(size, n_units=hood)
        piece = (_lowrank_peak(self.rank, piece_size) if self.covariance == "lowrank"
                 else self._piece_peak(piece_size))
        u, c, t = int(size.n_units), int(size.n_conditions), max(int(size.n_trials), 1)
        stored = (2 * min(_lowrank_rank(self.rank, piece_size), hood) if self.covariance ==
                  "lowrank" else hood) * u * (1 + float(self.overlap))
        return int(8 * (1.5 * u * c * t + 4 * u * c + stored) + int(self.n_jobs) * piece)

    def lighter_settings(self, size: DataSize) -> list[dict[str, Any]]:
        """Smaller pieces (``max_parcel`` of 1,000, 500, 250 units), then low rank."""
        if self.covariance == "lowrank":
            return []
        n_units = int(size.n_units)
        piece = min(n_units, int(self.max_parcel))
        if isinstance(self.parcels, int):
            piece = min(piece, -(-n_units // self.parcels))
        smaller = [{"max_parcel": m} for m in _LIGHTER_PARCELS if m < piece]
        return [*smaller, {"covariance": "lowrank"}]

    def _piece_spec(self) -> PieceSpec:
        auto = self._auto()
        return PieceSpec(preset=self._preset(), options={} if auto else self._psn_options(),
                         auto_options=dict(self.options or {}) if auto else {},
                         covariance=self.covariance, rank=self.rank)

    def _fit(self, data: ConditionTrials) -> PSNDenoiser:
        data = _canonical(data)
        array = np.asarray(data.data)
        if self._whole(array.shape[0]):
            piece = fit_piece(self._piece_spec(), array)
        else:
            piece = fit_piecewise(self._piece_spec(), array, data.units,
                                  parcels=self._parcels(array.shape[0]),
                                  overlap=float(self.overlap), max_parcel=int(self.max_parcel),
                                  n_jobs=int(self.n_jobs))
        self._store(piece)
        return self

    def _store(self, piece: Piece) -> None:
        self.denoiser_ = piece.denoiser
        self.unit_means_ = piece.unit_means
        self.best_threshold_ = piece.best_threshold
        self.signalsubspace_ = piece.signalsubspace
        self.ncsnr_ = piece.ncsnr
        self.chosen_ = piece.chosen
        self.cv_scores_ = piece.cv_scores
        self.shrinkage_ = piece.shrinkage
        self.returns_mean_ = piece.returns_mean
        self.results_ = piece.results

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
