"""``simulate_study``: the ground-truth simulator every component is tested against."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.data import ConditionData, GroundTruth, StimulusSet, Subject, TrialData, Units
from conform_core.metrics import noise_ceiling

from ._design import StudySplit, SubjectDesign, design_subject, split_study, stimulus_ids
from ._noise import NoiseModel, grid_positions
from ._params import SimulationParams
from ._signal import (
    StudyTuning,
    displacement,
    make_tuning,
    present_units,
    subject_mixing,
    subject_signal,
    unit_scales,
)

__all__ = ["SimulatedStudy", "StudyPlan", "SubjectDraws", "draw_subject", "simulate_study",
           "plan_study", "simulate_subject", "subject_motion_rng", "subject_name",
           "subject_noise_model"]

#: Spawn keys of the random streams under ``random_state``: the study's draws, subject i's
#: ``(_SUBJECT_KEY, i)``, ``(_PRIOR_KEY, seed, i)`` for the fresh subjects that
#: ``population_prior`` draws (never one of the study's subjects), ``(_FIELD_KEY,)``
#: for the smooth tuning field (``tuning_length_scale > 0``) and ``(_MOTION_KEY, i)`` for
#: subject i's head motion (in its runs only with ``motion > 0``; the fMRIPrep layout writes
#: it as confounds in any case). A subject's unit dropout and displacement come from the two
#: children its own stream spawns (``Generator.spawn``), which leaves that stream's draws
#: unchanged: with these settings at their defaults a study is the same, draw for draw, as
#: before they existed.
_STUDY_KEY, _SUBJECT_KEY, _PRIOR_KEY, _FIELD_KEY, _MOTION_KEY = 0, 1, 2, 3, 4


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
    tuning = make_tuning(params, rng, field_rng=_rng(params, _FIELD_KEY))
    split = split_study(params, rng)
    ids = stimulus_ids(params.n_stimuli)
    stimuli = StimulusSet(ids=ids, sources=np.array([f"synthetic://{i}" for i in ids]),
                          embeddings=tuning.features, categories=tuning.categories)
    return StudyPlan(params=params, stimuli=stimuli, tuning=tuning, split=split)


@dataclass(frozen=True, eq=False)
class SubjectDraws:
    """The draws that fix a subject's true responses (everything but the noise itself).

    Attributes
    ----------
    design : SubjectDesign
        Its stimuli and trials.
    noise_sd, signal_sd, offset : ndarray of shape (n_units_s,), float32
        Single-trial noise sd, signal sd over its stimuli, and response offset of each of
        its units.
    mixing : ndarray of shape (n_latent, n_units_s), float32
        Its mixing ``M_s``.
    units : ndarray of int, shape (n_units_s,)
        Sheet index of each of its units (sorted; every unit without ``unit_dropout``).
    positions : ndarray of shape (n_units_s, 2), float64
        Where each of its units reads the shared tuning: its grid position (row, column)
        plus its displacement (``misregistration``).
    """

    design: SubjectDesign
    noise_sd: NDArray[np.float32]
    signal_sd: NDArray[np.float32]
    offset: NDArray[np.float32]
    mixing: NDArray[np.float32]
    units: NDArray[np.intp]
    positions: NDArray[np.float64]


def draw_subject(plan: StudyPlan, rng: np.random.Generator,
                 index: int | None = None) -> SubjectDraws:
    """Draw a subject's design, unit scales and mixing from ``rng``, in the simulator's order.

    :func:`simulate_subject` goes on to draw the noise from the same ``rng``. ``index`` is
    the subject's position in the study (None for a fresh subject of the population). The
    units it misses and its displacement come from two streams ``rng`` spawns, so the draws
    from ``rng`` itself do not depend on them. Everything is drawn over the whole sheet, then
    restricted to the units the subject has.
    """
    params = plan.params
    design = design_subject(params, plan.split, rng, index)
    noise_sd, signal_sd, offset = unit_scales(params, rng)
    units_rng, shift_rng = rng.spawn(2)
    positions = grid_positions(params.n_units)
    shared = None
    if params.misregistration > 0:
        assert plan.tuning.field is not None  # SimulationParams requires tuning_length_scale > 0
        positions = positions + displacement(params, positions, shift_rng)
        shared = plan.tuning.field.mixing(positions)
    mixing = subject_mixing(plan.tuning, params, rng, shared)
    units = present_units(params, units_rng)
    if units.size < params.n_units:
        noise_sd, signal_sd, offset = noise_sd[units], signal_sd[units], offset[units]
        mixing, positions = mixing[:, units], positions[units]
    return SubjectDraws(design=design, noise_sd=noise_sd, signal_sd=signal_sd, offset=offset,
                        mixing=mixing, units=units, positions=positions)


def subject_noise_model(params: SimulationParams, draws: SubjectDraws,
                        rng: np.random.Generator) -> NoiseModel:
    """Return the noise model of a subject, over the whole sheet (draws loadings from ``rng``).

    Noise is drawn on the whole sheet (so its spatial structure is the sheet's), then
    restricted to ``draws.units``; a unit the subject misses gets noise sd 1, unused.
    """
    noise_sd = draws.noise_sd
    if draws.units.size < params.n_units:
        noise_sd = np.ones(params.n_units, np.float32)
        noise_sd[draws.units] = draws.noise_sd
    return NoiseModel(params.n_units, noise_sd, params.noise_rank, params.noise_length_scale,
                      params.lowrank_fraction, params.spatial_fraction, rng)


def subject_rng(params: SimulationParams, index: int) -> np.random.Generator:
    """Return the random stream of subject ``index`` (0-based) of the study."""
    return _rng(params, _SUBJECT_KEY, index)


def subject_motion_rng(params: SimulationParams, index: int) -> np.random.Generator:
    """Return the head-motion stream of subject ``index`` (0-based): no other draw uses it."""
    return _rng(params, _MOTION_KEY, index)


def fresh_subject_rng(params: SimulationParams, seed: int, index: int) -> np.random.Generator:
    """Return the stream of fresh subject ``index`` of draw ``seed``: never a study subject's."""
    return _rng(params, _PRIOR_KEY, seed, index)


def simulate_subject(plan: StudyPlan, index: int) -> Subject:
    """Simulate subject ``index`` (0-based) of ``plan``; independent of the other subjects."""
    params = plan.params
    rng = subject_rng(params, index)
    name = subject_name(index, params.n_subjects)
    draws = draw_subject(plan, rng, index)
    design, noise_sd, signal_sd = draws.design, draws.noise_sd, draws.signal_sd
    signal = subject_signal(plan.tuning, design.stimuli, draws.mixing, signal_sd, draws.offset)
    noise = subject_noise_model(params, draws, rng).draw(design.n_trials)
    dropped = draws.units.size < params.n_units
    amplitudes = signal[design.trial_stimulus]
    amplitudes += noise[:, draws.units] if dropped else noise

    units = Units(ids=Units.default(params.n_units).ids[draws.units], space="synthetic",
                  indices=draws.units)
    ids = plan.stimuli.ids[design.stimuli]
    trial_ids = ids[design.trial_stimulus]
    trials = TrialData(betas=amplitudes, stimulus_ids=trial_ids, sessions=design.trial_session,
                       runs=design.trial_run, subject=name, units=units)
    timeseries, hrf_index = None, None
    if params.timeseries:
        from ._timeseries import build_timeseries, draw_hrf_index

        hrf_index = draw_hrf_index(params.n_units, rng)[draws.units]
        timeseries = build_timeseries(params, design, amplitudes, trial_ids, hrf_index, units,
                                      name, rng, motion_rng=subject_motion_rng(params, index))
    truth = GroundTruth(
        signal=ConditionData(signal.T, ids, subject=name, units=units),
        trial_amplitudes=trials.betas,
        hrf_index=hrf_index,
        noise_ceiling=noise_ceiling(signal_sd.astype(np.float64) / noise_sd, 1),
        shared_space=ConditionData(plan.tuning.latent[design.stimuli].T, ids, subject=name,
                                   units=latent_units(params.n_latent)),
        unit_positions=draws.positions,
    )
    is_test = plan.split.is_test[design.stimuli]
    return Subject(name=name, stimuli=plan.stimuli.select(ids), trials=trials,
                   timeseries=timeseries, train_ids=ids[~is_test], test_ids=ids[is_test],
                   truth=truth)


def latent_units(n_latent: int) -> Units:
    """Units of the shared space: ``z00``, ``z01``, ... in space ``"synthetic-latent"``."""
    width = max(2, len(str(n_latent - 1)))
    return Units(ids=np.array([f"z{i:0{width}d}" for i in range(n_latent)]),
                 space="synthetic-latent")


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
        from conform_core.exceptions import UnknownComponentError

        names = [s.name for s in self.subjects]
        raise UnknownComponentError(
            f"No subject {name!r} in this study. Subjects: {', '.join(names)}."
        )

    def __iter__(self) -> Iterator[Subject]:
        return iter(self.subjects)

    def __len__(self) -> int:
        return len(self.subjects)


def simulate_study(*args: Any, **kwargs: Any) -> SimulatedStudy:
    """Simulate a multi-subject vision fMRI study with known ground truth.

    Stimuli have feature vectors ``F`` (stand-ins for CLIP embeddings). A shared latent
    tuning ``Z = g(F W)`` (z-scored, partly rectified) is mixed into each subject's units
    by ``M_s = sqrt(1 - d**2) M + d E_s``. The true response of a unit is ``Z M_s`` scaled to
    the unit's signal sd, plus an offset. A trial is the true response plus noise that is
    low-rank, spatially correlated on a grid of units, and independent.

    The parameters are the fields of :class:`SimulationParams` (the signature is derived
    from them); ``n_subjects``, ``n_units`` and ``n_stimuli`` may be given by position.

    Parameters
    ----------
    {parameters}

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
    TypeError
        If an argument is not a setting of the simulator.

    Examples
    --------
    >>> study = simulate_study(n_subjects=2, n_units=20, n_stimuli=30, n_shared=10)
    >>> [s.name for s in study.subjects], study.subjects[0].trials.betas.shape
    (['sub-01', 'sub-02'], (90, 20))
    """
    bound = _SIGNATURE.bind(*args, **kwargs)
    return simulate_from_params(SimulationParams(**bound.arguments))


_SIGNATURE = inspect.Signature(SimulationParams.signature_parameters(positional=3),
                               return_annotation=SimulatedStudy)
simulate_study.__signature__ = _SIGNATURE  # type: ignore[attr-defined]
simulate_study.__doc__ = (simulate_study.__doc__ or "").replace(
    "{parameters}", SimulationParams.numpydoc(indent="    ").lstrip())


def simulate_from_params(params: SimulationParams) -> SimulatedStudy:
    """Simulate a study from a checked :class:`SimulationParams`."""
    plan = plan_study(params)
    subjects = [simulate_subject(plan, i) for i in range(params.n_subjects)]
    return SimulatedStudy(subjects=subjects, stimuli=plan.stimuli, params=params.as_dict(),
                          latent=plan.tuning.latent, shared_ids=plan.shared_ids,
                          test_ids=plan.test_ids)
