"""The ``glmsingle`` denoiser: fMRI time series in, single-trial betas (PSC) out."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from conform_core.components.denoiser import Denoiser
from conform_core.constraints import Boolean, InstanceOf, Interval, Options, PathLike
from conform_core.data import TimeSeriesData, TrialData
from conform_core.exceptions import ParameterError

from ._options import OPTION_CONSTRAINTS, OPTION_FIXES, Fractions, check_options, check_pcstop

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["GLMsingleDenoiser"]

_TYPE_KEY = {"A": "typea", "B": "typeb", "C": "typec", "D": "typed"}
_PER_UNIT = ("onoffR2", "meanvol", "betasmd", "FitHRFR2", "FitHRFR2run", "HRFindex", "HRFindexrun",
             "R2", "R2run", "noisepool", "pcvoxels", "glmbadness", "rrbadness", "FRACvalue",
             "scaleoffset")


def _unit_first(res: dict[str, Any], n_units: int) -> dict[str, Any]:
    """Official results for 2-D input (``V x 1 x 1 x ...``) as unit-first arrays (``V x ...``)."""
    out = dict(res)
    for key in _PER_UNIT:
        val = out.get(key)
        if isinstance(val, np.ndarray) and val.ndim >= 3 and val.shape[0] == n_units:
            out[key] = val.reshape((n_units,) + val.shape[3:])
    return out


class GLMsingleDenoiser(Denoiser):
    """GLMsingle single-trial estimation as a conform denoiser.

    ``fit`` runs GLMsingle on the runs of a :class:`TimeSeriesData` (events give the trial
    onsets and durations in seconds, anywhere in the run; each distinct stimulus id is a
    condition, so repeats drive the cross-validation; the data's ``confounds`` are fitted as
    extra regressors) and keeps the chosen HRF per unit, the number of PCs and the ridge
    fraction per unit.
    ``transform`` returns the betas of the fitted data, or, for other runs of the same units,
    refits them with those choices fixed.

    Parameters
    ----------
    stimdur : float or None, default=None
        Duration the HRFs are scaled for, in seconds (each trial keeps its own event duration;
        events on the TR grid all lasting ``stimdur`` give the classic GLMsingle design);
        None uses the median event duration.
    model : {"D", "C", "B"}, default="D"
        Which GLMsingle type's betas to return.
    wantlibrary, wantglmdenoise, wantfracridge : {0, 1}, default=1
        As in GLMsingle (HRF library, GLMdenoise PCs, fractional ridge).
    n_pcs : int, default=10
        Maximum number of noise PCs tried.
    pcstop : float, default=1.05
        PC stopping rule (<= 0: use exactly ``-pcstop`` PCs).
    fracs : sequence of float or None, default=None
        Ridge fractions (None: ``linspace(1, 0.05, 20)``).
    chunklen : int, default=50000
        Units processed at once (bounds memory; results do not depend on it).
    hrf_library : str or None, default=None
        Path of a time x HRFs table at 0.1 s; None uses GLMsingle's library (regenerated to
        the official values; the official TSV as a path gives the same).
    options : dict or None, default=None
        Any other official GLMsingle option (e.g. ``{"brainthresh": [99, 0.1]}``).
        ``{"engine": "official"}`` fits with the official ``glmsingle`` package if it is
        installed (for comparison); ``transform`` on other runs then refits natively with the
        official fit's choices (HRF, PC count, noise pool, fractions).
    verbose : bool, default=False
        Show a progress bar per stage (only on a terminal).

    Attributes
    ----------
    results_ : dict
        The official GLMsingle outputs of the fit (unit-first arrays).
    hrf_index_ : ndarray of shape (n_units,)
        0-based library HRF chosen for each unit.
    pcnum_ : int
        Number of GLMdenoise PCs.
    frac_value_ : ndarray of shape (n_units,) or None
        Ridge fraction per unit (type D).
    conditions_ : ndarray of shape (n_conditions,)
        Stimulus ids in design-column order.
    nuisance_betas_ : list of ndarray of shape (n_units, n_confounds), or None
        Per run, the coefficients of the data's confounds in the returned model (percent
        signal change per confound unit); None when the data have no confounds.

    References
    ----------
    Prince, J. S., et al. (2022). Improving the accuracy of single-trial fMRI response
    estimates using GLMsingle. eLife, 11, e77599. https://doi.org/10.7554/eLife.77599
    """

    consumes: ClassVar[tuple[type, ...]] = (TimeSeriesData,)
    produces: ClassVar[type] = TrialData
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "stimdur": [Interval(float, 0, None, closed="right"), None],
        "model": [Options(("D", "C", "B"))],
        "wantlibrary": [Interval(int, 0, 1), Boolean()],
        "wantglmdenoise": [Interval(int, 0, 1), Boolean()],
        "wantfracridge": [Interval(int, 0, 1), Boolean()],
        "n_pcs": OPTION_CONSTRAINTS["n_pcs"],
        "pcstop": OPTION_CONSTRAINTS["pcstop"],
        "fracs": [Fractions(), None],
        "chunklen": OPTION_CONSTRAINTS["chunklen"],
        "hrf_library": [PathLike("file"), None],
        "options": [InstanceOf(dict, "a dict of GLMsingle options"), None],
        "verbose": [Boolean()],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "stimdur": "Use None to take the median event duration.",
        "wantlibrary": "Use 0 or 1.",
        "wantglmdenoise": "Use 0 or 1.",
        "wantfracridge": "Use 0 or 1.",
        "pcstop": OPTION_FIXES["pcstop"],
        "fracs": OPTION_FIXES["fracs"],
        "chunklen": OPTION_FIXES["chunklen"],
        "hrf_library": "Pass a time x HRFs table sampled every 0.1 s (TSV, CSV or .npy), or None "
                       "for the built-in library.",
        "options": "Pass e.g. $options={'brainthresh': [99, 0.1]}.",
    }

    def __init__(self, stimdur: float | None = None, model: Literal["D", "C", "B"] = "D",
                 wantlibrary: int = 1, wantglmdenoise: int = 1, wantfracridge: int = 1,
                 n_pcs: int = 10, pcstop: float = 1.05, fracs: Any = None, chunklen: int = 50000,
                 hrf_library: str | None = None, options: dict[str, Any] | None = None,
                 verbose: bool = False) -> None:
        self.stimdur = stimdur
        self.model = model
        self.wantlibrary = wantlibrary
        self.wantglmdenoise = wantglmdenoise
        self.wantfracridge = wantfracridge
        self.n_pcs = n_pcs
        self.pcstop = pcstop
        self.fracs = fracs
        self.chunklen = chunklen
        self.hrf_library = hrf_library
        self.options = options
        self.verbose = verbose

    def _check_params_extra(self) -> None:
        """Check ``pcstop`` against ``n_pcs``, and ``options`` as GLM_single would.

        The named parameters are declared in ``_parameter_constraints``; ``options`` must
        hold known GLMsingle option names with valid values. The timing checks (onsets inside
        their runs, runs long enough) need the runs and stay in ``fit``.
        """
        check_pcstop(self.pcstop, self.n_pcs, owner=self)
        check_options(self._params())

    def peak_memory(self, size: DataSize) -> int | None:
        """Return the peak bytes of a native fit on time series of ``size`` (None without one).

        :func:`conform_glmsingle._memory.predict_peak_bytes` (docs/glmsingle.md "Memory")
        with the ``size.n_timepoints`` volumes and ``size.n_events`` trials spread evenly
        over ``size.n_runs`` runs (the largest run rounded up), one type returned, 20 library
        HRFs (1 with ``wantlibrary=0``) of 50 samples, ``chunklen``, and the noise-pool PCA
        when type C or D denoises. ``transform`` of the fitted data returns the stored betas.
        """
        from ._memory import predict_peak_bytes

        n_time, n_runs = int(size.n_timepoints), int(size.n_runs)
        if n_time <= 0 or n_runs <= 0:
            return None
        times = [n_time // n_runs + (r < n_time % n_runs) for r in range(n_runs)]
        events = int(size.n_events)
        trials = [events // n_runs + (r < events % n_runs) for r in range(n_runs)]
        return predict_peak_bytes(
            int(size.n_units), times, trials, chunklen=int(self.chunklen),
            n_hrfs=20 if self.wantlibrary else 1,
            denoise=bool(self.wantglmdenoise) and self.model in "CD")

    def _params(self) -> dict[str, Any]:
        flags = [0, 0, 0, 0]
        flags["ABCD".index(self.model)] = 1
        params: dict[str, Any] = dict(self.options or {})
        params.update(
            wantlibrary=self.wantlibrary,
            wantglmdenoise=int(bool(self.wantglmdenoise) and self.model in "CD"),
            wantfracridge=int(bool(self.wantfracridge) and self.model == "D"),
            n_pcs=self.n_pcs, pcstop=self.pcstop, chunklen=self.chunklen,
            wantmemoryoutputs=flags, wantfileoutputs=[0, 0, 0, 0], verbose=self.verbose,
            quirks=params.get("quirks", "fixed"))
        if self.fracs is not None:
            params["fracs"] = self.fracs
        if self.hrf_library is not None:
            params["hrflibrary"] = str(self.hrf_library)
        return params

    def _design(self, data: TimeSeriesData) -> tuple[Any, NDArray[np.str_], float]:
        """Event tables of the data (onsets and durations in seconds), conditions, stimdur."""
        from ._timing import events_design

        if self.stimdur is None:
            stimdur = float(np.median(np.concatenate([ev.duration for ev in data.events])))
        else:
            stimdur = float(self.stimdur)
        tables, conditions = events_design(
            [ev.onset for ev in data.events],
            [ev.duration for ev in data.events],
            [ev.stimulus_ids for ev in data.events],
            [r.shape[1] for r in data.runs],
            data.tr,
        )
        return tables, conditions, stimdur

    def _run(
        self, data: TimeSeriesData, force: dict[str, Any] | None
    ) -> tuple[dict[str, Any], Any]:
        from ._design import check_design
        from ._native import fit_native
        from ._options import resolve_options
        from ._timing import check_tables
        from .api import check_timing, prepare_data

        runs, _, _ = prepare_data(list(data.runs))
        n_times = [r.shape[1] for r in runs]
        tables, conditions, stimdur = self._design(data)
        sd, tr = check_timing(stimdur, data.tr, n_times)
        events = check_tables(tables, len(runs), n_times, tr)
        grid = events.on_grid_matrices(sd, tr, n_times)
        design: Any = events if grid is None else check_design(grid, len(runs), n_times)
        params = self._params()
        if data.confounds is not None:
            if params.get("extra_regressors") not in (None, False):
                raise ParameterError(
                    "The data carry confounds and options also set extra_regressors. The "
                    "denoiser fits TimeSeriesData.confounds as extra regressors: drop "
                    "extra_regressors from options (or the confounds from the data)."
                )
            params["extra_regressors"] = [np.asarray(c, np.float64) for c in data.confounds]
        _, session_codes = np.unique(np.asarray(data.sessions), return_inverse=True)
        params["sessionindicator"] = (session_codes + 1).tolist()
        opts = resolve_options(params, stimdur=sd, tr=tr, n_times=n_times)
        if opts["engine"] == "official" and force is None:
            from ._design import build_layout
            from ._official import fit_official

            if grid is None:
                raise ParameterError(
                    "engine='official' needs event onsets on the TR grid, all lasting stimdur; "
                    "these events are not. Use the native engine (the default)."
                )

            res, _ = fit_official(
                params, opts, design, runs, (runs[0].shape[0],), False, sd, tr, None
            )
            return _unit_first(self._requested(res), runs[0].shape[0]), (
                build_layout(design, tr),
                conditions,
            )
        results, ctx = fit_native(runs, design, tr, opts, force=force, stimdur=sd)
        return self._requested(results), (ctx.layout, conditions)

    def _requested(self, results: dict[str, Any]) -> dict[str, Any]:
        """Return the results of type ``model``; refuse when the fit switched it off."""
        key = _TYPE_KEY[self.model]
        if key not in results:  # quirks="official" on a design without repeats across runs
            raise ParameterError(
                f"model={self.model!r} was not computed: no condition occurs in more than one "
                "run, so the official quirks switched cross-validated GLMdenoise and ridge off. "
                "Use model='B', fix pcstop=-K and a single fraction in fracs, or present "
                "conditions in several runs.")
        return results[key]

    def _fit(self, data: TimeSeriesData) -> GLMsingleDenoiser:
        res, (layout, conditions) = self._run(data, None)
        self.results_ = res
        self.conditions_ = conditions
        self.hrf_index_ = np.asarray(res["HRFindex"])
        self.pcnum_ = int(res.get("pcnum", 0))
        self.frac_value_ = res.get("FRACvalue")
        self.noisepool_ = res.get("noisepool")
        self.nuisance_betas_ = res.get("extrabetas")
        self._fitted_on = weakref.ref(data)
        self.trial_data_ = self._to_trials(res, layout, conditions, data)
        return self

    def _to_trials(
        self, res: dict[str, Any], lay: Any, conditions: NDArray[np.str_], data: TimeSeriesData
    ) -> TrialData:
        sessions = np.asarray(data.sessions)[lay.trial_run]
        return TrialData(
            betas=np.ascontiguousarray(np.asarray(res["betasmd"], np.float32).T),
            stimulus_ids=conditions[lay.stimorder],
            sessions=sessions,
            runs=lay.trial_run,
            subject=data.subject,
            units=data.units,
        )

    def _transform(self, data: TimeSeriesData) -> TrialData:
        ref = getattr(self, "_fitted_on", None)
        if ref is not None and ref() is data:
            return self.trial_data_
        force: dict[str, Any] = {
            "HRFindex": self.hrf_index_,
            "pcnum": self.pcnum_,
            "skip_xval": True,
        }
        if self.noisepool_ is not None:
            force["noisepool"] = self.noisepool_
        if self.frac_value_ is not None:
            force["FRACvalue"] = self.frac_value_
        res, (layout, conditions) = self._run(data, force)
        return self._to_trials(res, layout, conditions, data)
