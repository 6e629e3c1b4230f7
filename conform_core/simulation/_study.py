"""``simulate_study``: the ground-truth simulator every component is tested against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData, GroundTruth, StimulusSet, Subject, TrialData, Units
from ._design import StudySplit, design_subject, split_study, stimulus_ids
from ._noise import NoiseModel
from ._params import SimulationParams
from ._signal import StudyTuning, make_tuning, subject_signal, unit_scales

__all__ = ["SimulatedStudy", "StudyPlan", "simulate_study", "plan_study", "simulate_subject",
           "subject_name"]

_STUDY_KEY, _SUBJECT_KEY = 0, 1


def subject_name(index: int, n_subjects: int) -> str:
    """Return the BIDS label of subject ``index`` (0-based): ``sub-01``, ``sub-02``, ..."""
    width = max(2, len(str(n_subjects)))
    return f"sub-{index + 1:0{width}d}"


def _rng(params: SimulationParams, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(params.random_state, spawn_key=key))


@dataclass(frozen=True, eq=False)
class StudyPlan:
    """Study-level draws: stimuli, tuning and split (no subject data yet).

    Attributes
    ----------
    params : SimulationParams
    stimuli : StimulusSet
        Every stimulus of the study, embeddings = the features ``F``.
    tuning : StudyTuning
        Features, latent tuning ``Z`` and shared mixing ``M``.
    split : StudySplit
        Shared and held-out stimuli.
    """

    params: SimulationParams
    stimuli: StimulusSet
    tuning: StudyTuning
    split: StudySplit

    @property
    def subject_names(self) -> list[str]:
        """Names of the subjects, ``sub-01`` ... in order."""
        n = self.params.n_subjects
        return [subject_name(i, n) for i in range(n)]

    @property
    def shared_ids(self) -> NDArray[np.str_]:
        """Ids of the stimuli every subject sees."""
        return self.stimuli.ids[self.split.shared]

    @property
    def test_ids(self) -> NDArray[np.str_]:
        """Ids of the held-out stimuli of the study."""
        return self.stimuli.ids[self.split.is_test]


def plan_study(params: SimulationParams) -> StudyPlan:
    """Draw the study-level part of a simulation (cheap; no unit responses)."""
    rng = _rng(params, _STUDY_KEY)
    tuning = make_tuning(params, rng)
    split = split_study(params, rng)
    ids = stimulus_ids(params.n_stimuli)
    stimuli = StimulusSet(ids=ids, sources=np.array([f"synthetic://{i}" for i in ids]),
                          embeddings=tuning.features, categories=tuning.categories)
    return StudyPlan(params=params, stimuli=stimuli, tuning=tuning, split=split)


def simulate_subject(plan: StudyPlan, index: int) -> Subject:
    """Simulate subject ``index`` (0-based) of ``plan``; independent of the other subjects."""
    params = plan.params
    rng = _rng(params, _SUBJECT_KEY, index)
    name = subject_name(index, params.n_subjects)
    design = design_subject(params, plan.split, rng)
    noise_sd, signal_sd, offset = unit_scales(params, rng)
    signal = subject_signal(plan.tuning, design.stimuli, params, signal_sd, offset, rng)
    noise = NoiseModel(params.n_units, noise_sd, params.noise_rank, params.noise_length_scale,
                       params.lowrank_fraction, params.spatial_fraction, rng)
    amplitudes = signal[design.trial_stimulus]
    amplitudes += noise.draw(design.n_trials)

    units = Units(ids=Units.default(params.n_units).ids, space="synthetic",
                  indices=np.arange(params.n_units))
    ids = plan.stimuli.ids[design.stimuli]
    trial_ids = ids[design.trial_stimulus]
    trials = TrialData(betas=amplitudes, stimulus_ids=trial_ids, sessions=design.trial_session,
                       runs=design.trial_run, subject=name, units=units)
    timeseries, hrf_index = None, None
    if params.timeseries:
        from ._timeseries import build_timeseries, draw_hrf_index

        hrf_index = draw_hrf_index(params.n_units, rng)
        timeseries = build_timeseries(params, design, amplitudes, trial_ids, hrf_index, units,
                                      name, rng)
    snr2 = (signal_sd.astype(np.float64) / noise_sd) ** 2
    truth = GroundTruth(
        signal=ConditionData(signal.T, ids, subject=name, units=units),
        trial_amplitudes=trials.betas,
        hrf_index=hrf_index,
        noise_ceiling=100.0 * snr2 / (snr2 + 1.0),
    )
    is_test = plan.split.is_test[design.stimuli]
    return Subject(name=name, stimuli=plan.stimuli.select(ids), trials=trials,
                   timeseries=timeseries, train_ids=ids[~is_test], test_ids=ids[is_test],
                   truth=truth)


@dataclass(frozen=True, eq=False)
class SimulatedStudy:
    """A simulated study: subjects with their ground truth, all stimuli, and the parameters.

    Attributes
    ----------
    subjects : list of Subject
        ``sub-01``, ``sub-02``, ... each with ``trials``, ``timeseries`` (when simulated),
        ``stimuli`` (the ones it saw), ``train_ids``/``test_ids`` and ``truth``.
    stimuli : StimulusSet
        Every stimulus of the study; ``embeddings`` are the features ``F``.
    params : dict
        The parameters, ``random_state`` included, JSON-ready:
        ``simulate_study(**params)`` rebuilds the same study.
    latent : ndarray of shape (n_stimuli, n_latent), float32
        The shared latent tuning ``Z`` of every stimulus.
    shared_ids : ndarray of str
        Stimuli every subject saw.
    test_ids : ndarray of str
        Held-out stimuli of the study (each subject's ``test_ids`` is its share of them).
    """

    subjects: list[Subject]
    stimuli: StimulusSet
    params: dict[str, Any]
    latent: NDArray[np.float32] = field(repr=False)
    shared_ids: NDArray[np.str_] = field(repr=False)
    test_ids: NDArray[np.str_] = field(repr=False)

    def subject(self, name: str) -> Subject:
        """Return the subject called ``name``."""
        for s in self.subjects:
            if s.name == name:
                return s
        from ..exceptions import UnknownComponentError

        names = [s.name for s in self.subjects]
        raise UnknownComponentError(
            f"No subject {name!r} in this study. Subjects: {', '.join(names)}."
        )

    def __iter__(self) -> Iterator[Subject]:
        return iter(self.subjects)

    def __len__(self) -> int:
        return len(self.subjects)


def simulate_study(
    n_subjects: int = 3,
    n_units: int = 100,
    n_stimuli: int = 120,
    *,
    n_features: int = 64,
    n_latent: int = 8,
    n_repeats: int = 3,
    snr: float = 1.0,
    snr_spread: float = 0.5,
    n_shared: int | None = None,
    stimuli_per_subject: int | None = None,
    test_fraction: float = 0.2,
    missing_fraction: float = 0.0,
    noise_rank: int = 5,
    noise_length_scale: float = 2.0,
    lowrank_fraction: float = 0.3,
    spatial_fraction: float = 0.3,
    individual_differences: float = 0.3,
    nonlinearity: float = 0.2,
    timeseries: bool = False,
    tr: float = 1.0,
    stimdur: float = 3.0,
    iti: float = 4.0,
    trials_per_run: int = 60,
    n_runs: int | None = None,
    runs_per_session: int = 6,
    null_fraction: float = 0.15,
    drift: float = 1.0,
    timeseries_noise: float = 0.5,
    random_state: int | None = 0,
) -> SimulatedStudy:
    """Simulate a multi-subject vision fMRI study with known ground truth.

    Stimuli have feature vectors ``F`` (stand-ins for CLIP embeddings). A shared latent
    tuning ``Z = g(F W)`` (z-scored, partly rectified) is mixed into each subject's units
    by ``M_s = sqrt(1 - d**2) M + d E_s``. The true response of a unit is ``Z M_s`` scaled to
    the unit's signal sd, plus an offset. A trial is the true response plus noise that is
    low-rank, spatially correlated on a grid of units, and independent.

    Parameters
    ----------
    n_subjects, n_units, n_stimuli : int, default=3, 100, 120
        Study size (every subject has the same units).
    n_features : int, default=64
        Length of each stimulus feature vector.
    n_latent : int, default=8
        Dimension of the shared tuning.
    n_repeats : int, default=3
        Trials per stimulus and subject (before dropping ``missing_fraction``).
    snr : float, default=1.0
        Median over units of signal sd / noise sd of a single trial (>= 0).
    snr_spread : float, default=0.5
        Sd of log per-unit SNR around ``snr``.
    n_shared : int or None, default=None
        Stimuli seen by every subject; None means a third of ``n_stimuli`` (rounded).
    stimuli_per_subject : int or None, default=None
        Stimuli each subject sees beyond the shared ones, drawn at random from the rest;
        None gives every subject all of them.
    test_fraction : float, default=0.2
        Share of the study's stimuli held out; shared stimuli are held out first, so
        test stimuli are seen by every subject when ``n_test <= n_shared``.
    missing_fraction : float, default=0.0
        Share of trials dropped at random (one trial per stimulus is always kept).
    noise_rank : int, default=5
        Number of shared noise sources.
    noise_length_scale : float, default=2.0
        Spatial correlation length of the noise, in grid steps of the unit grid.
    lowrank_fraction, spatial_fraction : float, default=0.3, 0.3
        Share of noise variance that is low-rank and spatially smooth; the rest is independent.
    individual_differences : float, default=0.3
        ``d`` in [0, 1]: 0 gives every subject the same mixing, 1 unrelated mixings.
    nonlinearity : float, default=0.2
        Rectified share of the latent tuning (0: linear in the features).
    timeseries : bool, default=False
        Also build fMRI runs (events convolved with per-unit library HRFs, drift, AR(1) noise).
    tr, stimdur, iti : float, default=1.0, 3.0, 4.0
        Repetition time, stimulus duration and onset-to-onset interval, in seconds.
    trials_per_run : int, default=60
        Trials per run when ``n_runs`` is None.
    n_runs : int or None, default=None
        Runs per subject (trials split evenly); None derives it from ``trials_per_run``.
    runs_per_session : int, default=6
    null_fraction : float, default=0.15
        Extra empty slots per run, as a share of its trials (time series only).
    drift, timeseries_noise : float, default=1.0, 0.5
        Sd (percent signal change) of each drift term and of the time-series noise.
    random_state : int or None, default=0
        Seed; None draws one (recorded in ``params``).

    Returns
    -------
    SimulatedStudy
        ``truth.trial_amplitudes`` equals ``trials.betas`` (the true single-trial amplitudes;
        with ``timeseries=True`` these are what was convolved). ``truth.noise_ceiling`` is
        ``100 snr_u**2 / (snr_u**2 + 1)`` for a single trial.

    Raises
    ------
    ParameterError
        If a size is not positive, ``n_shared > n_stimuli``, or a fraction is out of range.

    Examples
    --------
    >>> study = simulate_study(n_subjects=2, n_units=20, n_stimuli=30, n_shared=10)
    >>> [s.name for s in study.subjects], study.subjects[0].trials.betas.shape
    (['sub-01', 'sub-02'], (90, 20))
    """
    params = SimulationParams.from_kwargs(**{k: v for k, v in locals().items()})
    return simulate_from_params(params)


def simulate_from_params(params: SimulationParams) -> SimulatedStudy:
    """Simulate a study from a checked :class:`SimulationParams`."""
    plan = plan_study(params)
    subjects = [simulate_subject(plan, i) for i in range(params.n_subjects)]
    return SimulatedStudy(subjects=subjects, stimuli=plan.stimuli, params=params.as_dict(),
                          latent=plan.tuning.latent, shared_ids=plan.shared_ids,
                          test_ids=plan.test_ids)
