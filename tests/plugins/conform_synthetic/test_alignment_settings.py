"""The simulator's settings for cross-subject alignment (issue 14, point 5).

``unit_dropout`` (unit counts differ, ids stay the sheet's), ``tuning_length_scale`` (a smooth
shared tuning over the unit sheet), ``misregistration`` (a smooth displacement of each
subject's sheet, so same-id units differ) and ``stimulus_overlap`` (the share of stimuli every
subject sees, 0 for the unpaired case), and the ground truth they fill
(``GroundTruth.shared_space`` and ``GroundTruth.unit_positions``). With these settings at their
defaults every study is the one simulated before they existed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conform_synthetic import (
    SimulationParams,
    linear_tuning,
    noise_covariance,
    population_prior,
    read_study,
    simulate_study,
    write_study,
)
from conform_synthetic._noise import grid_positions
from conform_synthetic.dataset import SyntheticDataset

from conform_core.data import ConditionData, GroundTruth, Units
from conform_core.exceptions import ParameterError, ShapeError

_NEW_DEFAULTS = {"unit_dropout": 0.0, "tuning_length_scale": 0.0, "misregistration": 0.0,
                 "stimulus_overlap": None}

#: A small study and values recorded from the simulator before the alignment settings existed
#: (same seed): the same draws in the same order must give the same study.
_RECORDED_STUDY = {"n_subjects": 3, "n_units": 12, "n_stimuli": 30, "n_shared": 8,
                   "stimuli_per_subject": 10, "missing_fraction": 0.2, "random_state": 11}
_RECORDED = {
    "shared": ["stim-0001", "stim-0003", "stim-0005", "stim-0012", "stim-0020", "stim-0021",
               "stim-0022", "stim-0026"],
    "test": ["stim-0003", "stim-0005", "stim-0012", "stim-0021", "stim-0022", "stim-0026"],
    "sub-01": {
        "stimuli": [1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 19, 20, 21, 22, 23, 25, 26, 29],
        "n_trials": 46, "first_trials": [2, 7, 9, 21, 26, 19],
        "betas": [1.1425836086273193, 7.760005474090576, -0.5648555755615234,
                  1.9430454969406128, 0.8158978223800659, 0.41447997093200684],
        "signal": [1.5882292985916138, 0.01038450002670288, 0.5421092510223389,
                   0.1515369415283203, 5.0907745361328125, 1.4447929859161377],
        "betas_sum": 497.0562131591141},
    "sub-03": {
        "stimuli": [1, 3, 5, 6, 7, 10, 12, 16, 18, 20, 21, 22, 23, 25, 26, 27, 28, 29],
        "n_trials": 47, "first_trials": [20, 16, 5, 26, 22, 28],
        "betas": [0.09298054873943329, 2.6066036224365234, 0.04306577146053314,
                  -0.47188571095466614, 1.5808484554290771, 3.316798686981201],
        "signal": [1.6921770572662354, 0.7394798994064331, 1.1080241203308105,
                   0.3701133728027344, 1.136824131011963, 0.18351542949676514],
        "betas_sum": 805.0896999239922},
}


def _ids(numbers: list[int]) -> list[str]:
    return [f"stim-{i:04d}" for i in numbers]


def _same_id_correlation(study) -> float:
    """Mean over units both have of the correlation of sub-01's and sub-02's true signal."""
    a, b = study.subjects[0].truth.signal, study.subjects[1].truth.signal
    stimuli = np.intersect1d(a.stimulus_ids, b.stimulus_ids)
    units = np.intersect1d(a.units.ids, b.units.ids)
    x = a.select(stimuli).data[np.searchsorted(a.units.ids, units)].astype(np.float64)
    y = b.select(stimuli).data[np.searchsorted(b.units.ids, units)].astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    return float(np.mean((x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1))))


# ------------------------------------------------------------------ defaults unchanged
def test_defaults_reproduce_the_study_recorded_before_these_settings() -> None:
    study = simulate_study(**_RECORDED_STUDY)
    assert study.shared_ids.tolist() == _RECORDED["shared"]
    assert study.test_ids.tolist() == _RECORDED["test"]
    for name in ("sub-01", "sub-03"):
        want, subject = _RECORDED[name], study.subject(name)
        assert subject.stimuli.ids.tolist() == _ids(want["stimuli"])
        assert subject.trials.n_trials == want["n_trials"]
        assert subject.trials.stimulus_ids[:6].tolist() == _ids(want["first_trials"])
        # float32 values: a machine with other BLAS kernels may round the last bit differently
        # (relative 1e-7); a different random draw changes them by O(1).
        np.testing.assert_allclose(np.asarray(subject.trials.betas)[:2, :3].ravel(),
                                   want["betas"], rtol=1e-5)
        np.testing.assert_allclose(np.asarray(subject.truth.signal.data)[:2, :3].ravel(),
                                   want["signal"], rtol=1e-5)
        np.testing.assert_allclose(np.asarray(subject.trials.betas, np.float64).sum(),
                                   want["betas_sum"], rtol=1e-5)


def test_the_new_settings_at_their_defaults_change_nothing() -> None:
    implicit = simulate_study(**_RECORDED_STUDY)
    explicit = simulate_study(**_RECORDED_STUDY, **_NEW_DEFAULTS)
    for a, b in zip(implicit.subjects, explicit.subjects, strict=True):
        np.testing.assert_array_equal(a.trials.betas, b.trials.betas)
        np.testing.assert_array_equal(a.trials.units.ids, b.trials.units.ids)
    assert SimulationParams(**_RECORDED_STUDY).n_shared == 8
    assert SimulationParams().n_shared == 40  # still a third of the stimuli when unset


# ------------------------------------------------------------------ unit dropout
def test_unit_dropout_gives_different_counts_with_the_sheets_ids() -> None:
    full = simulate_study(n_subjects=4, n_units=60, n_stimuli=30, random_state=5)
    study = simulate_study(n_subjects=4, n_units=60, n_stimuli=30, unit_dropout=0.6,
                           random_state=5)
    counts = [s.trials.n_units for s in study.subjects]
    assert len(set(counts)) > 1 and max(counts) <= 60 and min(counts) >= 60 * (1 - 0.6) - 1
    sheet = Units.default(60).ids
    for kept, whole in zip(study.subjects, full.subjects, strict=True):
        units = kept.trials.units
        assert np.all(np.diff(units.indices) > 0)  # sorted, distinct sheet indices
        np.testing.assert_array_equal(units.ids, sheet[units.indices])
        truth = kept.truth
        assert truth.signal.n_units == units.n_units == truth.noise_ceiling.shape[0]
        np.testing.assert_array_equal(truth.signal.units.ids, units.ids)
        np.testing.assert_array_equal(truth.unit_positions, grid_positions(60)[units.indices])
        # dropout only hides units: what a kept unit shows is what it shows without dropout
        # (float32 products of differently shaped matrices may round the last bit apart)
        np.testing.assert_allclose(kept.trials.betas, whole.trials.betas[:, units.indices],
                                   rtol=1e-5, atol=1e-5)


def test_dropout_keeps_the_oracles_consistent_with_the_subject() -> None:
    params = SimulationParams(n_subjects=2, n_units=30, n_stimuli=40, unit_dropout=0.5,
                              nonlinearity=0, random_state=2)
    study = simulate_study(**params.as_dict())
    subject = study.subjects[1]
    n = subject.trials.n_units
    tuning = linear_tuning(params, 1)
    features = study.stimuli.select(subject.truth.signal.stimulus_ids).embeddings
    # float32 simulation against a float64 oracle
    np.testing.assert_allclose(tuning.predict(features), subject.truth.signal.data.T, atol=1e-4)
    assert noise_covariance(params, 1).shape == (n, n)
    assert population_prior(params, n_subjects=3).n_samples > 0


# ------------------------------------------------------------------ smooth tuning
@pytest.mark.parametrize(("length_scale", "low", "high"), [
    # independent tuning: correlation ~ 0 (one pair's sd is 1/sqrt(n_latent) = 0.35, the
    # mean of 380 pairs ~0.02)
    (0.0, -0.1, 0.1),
    # Gaussian kernel at one grid step: exp(-1 / (2 * 2**2)) = 0.88
    (2.0, 0.75, 1.0),
])
def test_smooth_tuning_makes_neighbouring_units_alike(length_scale, low, high) -> None:
    study = simulate_study(n_subjects=1, n_units=400, n_stimuli=120, individual_differences=0,
                           tuning_length_scale=length_scale, random_state=0)
    signal = study.subjects[0].truth.signal.data.astype(np.float64)
    signal -= signal.mean(axis=1, keepdims=True)
    signal /= np.linalg.norm(signal, axis=1, keepdims=True)
    grid = np.arange(400).reshape(20, 20)  # grid_shape(400)
    left, right = grid[:, :-1].ravel(), grid[:, 1:].ravel()
    r = float(np.mean((signal[left] * signal[right]).sum(1)))
    assert low < r < high


def test_smooth_tuning_keeps_unit_norm_mixing() -> None:
    from conform_synthetic import plan_study

    plan = plan_study(SimulationParams(n_units=50, tuning_length_scale=3.0))
    # float32 columns normalised in float64
    np.testing.assert_allclose(np.linalg.norm(plan.tuning.mixing, axis=0), 1.0, rtol=1e-6)


# ------------------------------------------------------------------ misregistration
def test_misregistration_makes_same_id_units_differ_more_as_it_grows() -> None:
    settings = {"n_subjects": 2, "n_units": 400, "n_stimuli": 120, "tuning_length_scale": 2.0,
                "random_state": 0}
    r = {m: _same_id_correlation(simulate_study(**settings, misregistration=m))
         for m in (0.0, 1.0, 2.0, 8.0)}
    # Expected, Gaussian kernel of length l=2 and independent displacements of sd m per axis:
    # (1 - d**2) E[exp(-|D|**2 / (2 l**2))] = 0.91 / (1 + 2 m**2 / l**2), d = 0.3:
    # 0.91, 0.61, 0.30, 0.03. Margins of half a gap allow for one seed's sampling error.
    assert r[0.0] > 0.85
    assert r[0.0] - r[1.0] > 0.15 and r[1.0] - r[2.0] > 0.15
    assert r[1.0] > 0.3  # identity matching is imperfect but far better than chance ...
    assert abs(r[8.0]) < 0.15  # ... which is what it falls to when the shift is large


def test_misregistration_displaces_units_by_its_sd() -> None:
    study = simulate_study(n_subjects=6, n_units=400, n_stimuli=30, tuning_length_scale=2.0,
                           misregistration=1.5, random_state=0)
    shift = np.concatenate([s.truth.unit_positions - grid_positions(400) for s in study.subjects])
    # a smooth field of correlation length 5 on a 20 x 20 sheet has few independent values
    # per subject: its sample sd over 6 subjects lands within a third of 1.5 (measured
    # 1.4-1.7 for seeds 0-3)
    rms = float(np.sqrt(np.mean(shift**2)))
    assert abs(rms - 1.5) < 0.5, f"displacement sd {rms:.2f}, asked for 1.5"
    unshifted = simulate_study(n_subjects=2, n_units=400, n_stimuli=30,
                               tuning_length_scale=2.0, random_state=0)
    for subject in unshifted.subjects:
        np.testing.assert_array_equal(subject.truth.unit_positions, grid_positions(400))


def test_misregistration_needs_a_smooth_tuning() -> None:
    with pytest.raises(ParameterError) as info:
        SimulationParams(misregistration=1.0)
    message = str(info.value)
    assert "misregistration" in message and "tuning_length_scale" in message
    assert "Set $tuning_length_scale > 0" not in message  # the $ placeholders are resolved
    assert "tuning_length_scale > 0" in message


# ------------------------------------------------------------------ stimulus overlap
def _stimulus_sets(study) -> tuple[list[set[str]], list[set[str]]]:
    return ([set(s.train_ids.tolist()) for s in study.subjects],
            [set(s.test_ids.tolist()) for s in study.subjects])


def test_zero_overlap_shares_no_stimulus_train_or_test() -> None:
    study = simulate_study(n_subjects=4, n_units=10, n_stimuli=100, stimulus_overlap=0.0)
    train, test = _stimulus_sets(study)
    seen = [tr | te for tr, te in zip(train, test, strict=True)]
    for i in range(4):
        assert train[i] and test[i]  # every subject still has both sides of a split
        for j in range(i + 1, 4):
            assert not seen[i] & seen[j]
    assert study.shared_ids.size == 0
    assert sum(len(s) for s in seen) <= 100


@pytest.mark.parametrize("overlap", [0.25, 0.5])
def test_overlap_shares_the_asked_share_of_train_and_test(overlap) -> None:
    params = SimulationParams(n_subjects=3, n_units=10, n_stimuli=150, stimulus_overlap=overlap)
    study = simulate_study(**params.as_dict())
    train, test = _stimulus_sets(study)
    common = set.intersection(*(tr | te for tr, te in zip(train, test, strict=True)))
    assert common == set(study.shared_ids.tolist())
    allocation = params.overlap_allocation
    for tr, te, subject in zip(train, test, study.subjects, strict=True):
        assert len(tr) + len(te) == params.n_stimuli_per_subject == subject.stimuli.n_stimuli
        # rounding of a count: within one stimulus of the share asked
        assert abs(len(tr & common) - overlap * len(tr)) <= 0.5 + 1e-9
        assert abs(len(te & common) - overlap * len(te)) <= 0.5 + 1e-9
        assert (len(tr & common), len(te & common)) == (allocation.shared_train,
                                                        allocation.shared_test)
    # the rest is each subject's own: no two subjects share anything beyond the common part
    for i in range(3):
        for j in range(i + 1, 3):
            assert not ((train[i] | test[i]) & (train[j] | test[j])) - common


def test_full_overlap_gives_everyone_every_stimulus() -> None:
    study = simulate_study(n_subjects=3, n_units=10, n_stimuli=40, stimulus_overlap=1.0)
    for subject in study.subjects:
        assert subject.stimuli.n_stimuli == 40


@pytest.mark.parametrize("other", [{"n_shared": 10}, {"stimuli_per_subject": 5}])
def test_overlap_with_an_explicit_allocation_is_an_error_with_the_fix(other) -> None:
    with pytest.raises(ParameterError, match="stimulus_overlap") as info:
        SimulationParams(stimulus_overlap=0.5, **other)
    assert next(iter(other)) in str(info.value) and "unset" in str(info.value)


def test_overlap_that_leaves_too_few_stimuli_says_what_to_raise() -> None:
    with pytest.raises(ParameterError, match="at least 2"):
        SimulationParams(n_subjects=30, n_stimuli=40, stimulus_overlap=0.0)


def test_overlap_record_reproduces_its_study() -> None:
    params = SimulationParams(n_subjects=2, n_units=8, n_stimuli=30, stimulus_overlap=0.4)
    assert params.n_shared is None and params.stimuli_per_subject is None
    again = SimulationParams(**params.as_dict())
    a, b = simulate_study(**params.as_dict()), simulate_study(**again.as_dict())
    np.testing.assert_array_equal(a.subjects[1].trials.betas, b.subjects[1].trials.betas)


# ------------------------------------------------------------------ bad values
@pytest.mark.parametrize(("name", "value"), [
    ("unit_dropout", -0.1), ("unit_dropout", 0.95), ("tuning_length_scale", -1.0),
    ("misregistration", -0.5), ("stimulus_overlap", 1.5), ("stimulus_overlap", -0.1),
    ("stimulus_overlap", float("nan")),
])
def test_bad_values_name_the_setting(name, value) -> None:
    with pytest.raises(ParameterError, match=name):
        SimulationParams(**{name: value})


# ------------------------------------------------------------------ ground truth
@pytest.mark.parametrize("settings", [
    {},
    {"unit_dropout": 0.4, "tuning_length_scale": 2.0, "misregistration": 1.0,
     "stimulus_overlap": 0.5},
])
def test_shared_space_is_z_at_the_subjects_stimuli_and_gives_its_signal(settings) -> None:
    study = simulate_study(n_subjects=3, n_units=30, n_stimuli=60, **settings)
    for subject in study.subjects:
        truth = subject.truth
        shared = truth.shared_space
        np.testing.assert_array_equal(shared.stimulus_ids, truth.signal.stimulus_ids)
        rows = np.searchsorted(study.stimuli.ids, shared.stimulus_ids)
        np.testing.assert_array_equal(shared.data, study.latent[rows].T)
        assert shared.n_units == 8 and truth.unit_positions.shape == (truth.signal.n_units, 2)
        # the signal is linear in the shared space (each unit: Z @ m_u scaled, plus an offset)
        design = np.column_stack([shared.data.T, np.ones(shared.n_conditions)]).astype(np.float64)
        target = truth.signal.data.T.astype(np.float64)
        fit, *_ = np.linalg.lstsq(design, target, rcond=None)
        # float32 signal: residuals at float32 rounding of values of order 1-10
        assert np.abs(design @ fit - target).max() < 1e-4


def test_ground_truth_checks_its_new_fields() -> None:
    signal = ConditionData(np.zeros((3, 4)), np.array(["a", "b", "c", "d"]))
    shared = ConditionData(np.zeros((2, 4)), np.array(["a", "b", "c", "d"]))
    truth = GroundTruth(signal=signal, shared_space=shared, unit_positions=np.zeros((3, 2)))
    assert not truth.unit_positions.flags.writeable
    with pytest.raises(ShapeError, match="shared_space must hold the stimuli"):
        GroundTruth(signal=signal, shared_space=shared.take_conditions(np.array([1, 0, 2, 3])))
    with pytest.raises(ShapeError, match="ConditionData"):
        GroundTruth(signal=signal, shared_space=np.zeros((2, 4)))  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=r"unit_positions must be a finite \(3, 2\)"):
        GroundTruth(signal=signal, unit_positions=np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="unit_positions"):
        GroundTruth(signal=signal, unit_positions=np.full((3, 2), np.nan))


# ------------------------------------------------------------------ interfaces
_ALIGNMENT = {"n_subjects": 3, "n_units": 24, "n_stimuli": 40, "n_repeats": 2,
              "unit_dropout": 0.3, "tuning_length_scale": 2.0, "misregistration": 1.0,
              "stimulus_overlap": 0.5}


def test_the_synthetic_dataset_accepts_the_settings_in_a_spec() -> None:
    from conform_core.analysis.plan import make_plan
    from conform_core.plugins import default_registry
    from conform_core.spec import parse_spec

    spec = parse_spec({"denoiser": "trial-average", "encoder": "ridge", "features": "precomputed",
                       "dataset": {"plugin": "synthetic", "params": _ALIGNMENT}})
    dataset = make_plan(spec, default_registry()).dataset()
    assert isinstance(dataset, SyntheticDataset)
    direct = simulate_study(**_ALIGNMENT)
    for subject in direct.subjects:
        loaded = dataset.load_subject(subject.name)
        np.testing.assert_array_equal(loaded.trials.betas, subject.trials.betas)


def test_simulate_help_shows_the_settings() -> None:
    from conform_synthetic.cli import FLAGS

    assert {FLAGS[name] for name in _NEW_DEFAULTS} == {
        "--unit-dropout", "--tuning-length-scale", "--misregistration", "--stimulus-overlap"}


def test_a_written_study_reads_back_the_new_truth_and_runs(tmp_path: Path) -> None:
    settings = {**_ALIGNMENT, "timeseries": True, "n_stimuli": 20}
    study = simulate_study(**settings)
    back = read_study(write_study(tmp_path / "study", study))
    for a, b in zip(study.subjects, back.subjects, strict=True):
        np.testing.assert_array_equal(a.truth.shared_space.data, b.truth.shared_space.data)
        np.testing.assert_array_equal(a.truth.shared_space.units.ids,
                                      b.truth.shared_space.units.ids)
        np.testing.assert_array_equal(a.truth.unit_positions, b.truth.unit_positions)
        np.testing.assert_array_equal(a.trials.units.indices, b.trials.units.indices)
        # NIfTI runs hold the whole sheet; the subject's units are read back from it
        for run_a, run_b in zip(a.timeseries.runs, b.timeseries.runs, strict=True):
            np.testing.assert_array_equal(run_a, run_b)
