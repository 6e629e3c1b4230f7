"""simulate_study: determinism, shapes, ids, split, shared stimuli, SNR and noise ceiling."""

from __future__ import annotations

import numpy as np
import pytest
from conform_synthetic import SimulatedStudy, simulate_study

from conform_core.exceptions import ConformError, ParameterError
from conform_core.metrics import noise_ceiling_from_trials

SMALL = dict(n_subjects=3, n_units=24, n_stimuli=40, n_shared=12, stimuli_per_subject=14,
             n_repeats=2, n_features=16, n_latent=4)


def _arrays(study: SimulatedStudy) -> list[np.ndarray]:
    out = [study.stimuli.embeddings, study.latent]
    for s in study.subjects:
        out += [s.trials.betas, s.trials.stimulus_ids, s.trials.runs, s.truth.signal.data,
                s.truth.noise_ceiling, s.train_ids, s.test_ids]
    return out


def test_same_random_state_gives_identical_study() -> None:
    a, b = simulate_study(**SMALL, random_state=7), simulate_study(**SMALL, random_state=7)
    for x, y in zip(_arrays(a), _arrays(b)):
        np.testing.assert_array_equal(x, y)


def test_other_random_state_gives_other_study() -> None:
    a, b = simulate_study(**SMALL, random_state=1), simulate_study(**SMALL, random_state=2)
    assert not np.array_equal(a.subjects[0].trials.betas, b.subjects[0].trials.betas)


def test_subject_does_not_depend_on_number_of_subjects() -> None:
    """Each subject has its own random stream, so adding subjects leaves the others unchanged."""
    two = simulate_study(**{**SMALL, "n_subjects": 2})
    three = simulate_study(**SMALL)
    np.testing.assert_array_equal(two.subjects[1].trials.betas, three.subjects[1].trials.betas)


def test_shapes_dtypes_and_names() -> None:
    study = simulate_study(**SMALL)
    assert [s.name for s in study.subjects] == ["sub-01", "sub-02", "sub-03"]
    assert study.stimuli.n_stimuli == 40 and study.stimuli.embeddings.shape == (40, 16)
    assert study.latent.shape == (40, 4)
    for s in study.subjects:
        assert s.stimuli.n_stimuli == 12 + 14
        assert s.trials.betas.shape == (26 * 2, 24) and s.trials.betas.dtype == np.float32
        assert s.truth.signal.data.shape == (24, 26)
        np.testing.assert_array_equal(np.sort(s.truth.signal.stimulus_ids), np.sort(s.stimuli.ids))
        assert s.truth.trial_amplitudes.shape == s.trials.betas.shape
        assert s.timeseries is None and s.truth.hrf_index is None
    assert study.params["random_state"] == 0 and study.params["n_units"] == 24


def test_split_is_disjoint_and_covers_each_subjects_stimuli() -> None:
    study = simulate_study(**SMALL, test_fraction=0.25)
    assert study.test_ids.size == 10
    for s in study.subjects:
        assert not set(s.train_ids) & set(s.test_ids)
        assert set(s.train_ids) | set(s.test_ids) == set(s.stimuli.ids)


def test_shared_stimuli_seen_by_every_subject_and_tested_first() -> None:
    study = simulate_study(**SMALL, test_fraction=0.25)  # 10 test stimuli <= 12 shared
    for s in study.subjects:
        assert set(study.shared_ids) <= set(s.trials.stimulus_ids)
        np.testing.assert_array_equal(np.sort(s.test_ids), np.sort(study.test_ids))
    assert set(study.test_ids) <= set(study.shared_ids)


def test_subjects_differ_beyond_shared_stimuli() -> None:
    study = simulate_study(**SMALL)
    own = [set(s.stimuli.ids) - set(study.shared_ids) for s in study.subjects]
    assert own[0] != own[1]


def test_missing_trials_are_absent_and_nan_by_condition() -> None:
    study = simulate_study(**{**SMALL, "n_repeats": 4}, missing_fraction=0.3)
    s = study.subjects[0]
    assert s.trials.n_trials < 26 * 4
    counts = s.trials.by_condition().trial_counts()
    assert counts.min() >= 1 and counts.max() == 4 and (counts < 4).any()
    ct = s.trials.by_condition()
    assert np.isnan(ct.data).any() and not np.isnan(s.trials.betas).any()


def test_requested_snr_is_achieved() -> None:
    """Median over units of sd(signal) / sd(trial - signal) matches ``snr``.

    Each unit's noise sd is estimated from 150 stimuli x 4 trials = 600 residuals (relative
    standard error 1/sqrt(2*600) ~ 3 %); the median over 150 units is tighter still, and
    the signal sd is exact by construction. 8 % leaves a wide margin.
    """
    for snr in (0.4, 1.5):
        study = simulate_study(n_subjects=1, n_units=150, n_stimuli=150, n_shared=150, n_repeats=4,
                               snr=snr, random_state=3)
        s = study.subjects[0]
        ct = s.trials.by_condition(s.truth.signal.stimulus_ids)
        resid = ct.data - s.truth.signal.data[:, :, None]
        ratio = s.truth.signal.data.std(axis=1) / np.nanstd(resid.reshape(150, -1), axis=1)
        assert np.median(ratio) == pytest.approx(snr, rel=0.08)


def test_ncsnr_recovers_true_noise_ceiling() -> None:
    """The NSD ncsnr estimate tracks the true single-trial noise ceiling.

    With 150 conditions x 4 trials the per-unit estimate has a standard error of a few
    percentage points (the mean |error| was ~1.5 points in development), so we ask for a
    median absolute error under 4 points and a correlation above 0.9 across units.
    """
    study = simulate_study(n_subjects=1, n_units=150, n_stimuli=150, n_shared=150, n_repeats=4,
                           snr=1.0, random_state=5)
    s = study.subjects[0]
    estimate = noise_ceiling_from_trials(s.trials.by_condition(), n_trials=1)
    truth = s.truth.noise_ceiling
    assert np.median(np.abs(estimate - truth)) < 4.0
    assert np.corrcoef(estimate, truth)[0, 1] > 0.9
    assert np.all((truth > 0) & (truth < 100))


def test_zero_individual_differences_shares_tuning_across_subjects() -> None:
    """With d=0 the subjects' signals on shared stimuli are perfectly correlated per unit."""
    study = simulate_study(**SMALL, individual_differences=0.0)
    a, b = (s.truth.signal.select(study.shared_ids).data for s in study.subjects[:2])
    r = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]
    assert min(r) > 0.999
    far = simulate_study(**SMALL, individual_differences=1.0)
    a, b = (s.truth.signal.select(far.shared_ids).data for s in far.subjects[:2])
    assert np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]) < 0.5


def test_none_random_state_is_recorded_and_reproducible() -> None:
    study = simulate_study(**SMALL, random_state=None)
    again = simulate_study(**study.params)
    np.testing.assert_array_equal(study.subjects[0].trials.betas, again.subjects[0].trials.betas)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"n_units": -5}, "'n_units' parameter of simulate_study must be an int in [1, inf); got -5"),
    ({"n_subjects": 0}, "Pass n_subjects=1 or more"),
    ({"n_stimuli": 10, "n_shared": 20}, "Lower n_shared or raise n_stimuli"),
    ({"stimuli_per_subject": 500}, "at most n_stimuli - n_shared"),
    ({"snr": -1.0}, "'snr' parameter"),
    ({"lowrank_fraction": 0.7, "spatial_fraction": 0.6}, "Lower one of them"),
    ({"noise_rank": 0}, "Set lowrank_fraction=0"),
    ({"timeseries": True, "iti": 1.0}, "Raise iti or shorten stimdur"),
])
def test_bad_parameters_raise_with_fix(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ParameterError) as info:
        simulate_study(**kwargs)
    assert isinstance(info.value, ConformError)
    assert fragment in str(info.value)


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"n_units": -5}, "n_units"), ({"n_stimuli": 10, "n_shared": 20}, "n_shared"),
    ({"stimuli_per_subject": 500}, "stimuli_per_subject"), ({"tr": 0.0}, "tr"),
    ({"timeseries": True, "iti": 1.0}, "iti"),
])
def test_bad_parameters_are_structured(kwargs: dict, param: str) -> None:
    """The error names the Python parameter, so a command line can show its flag."""
    with pytest.raises(ParameterError) as info:
        simulate_study(**kwargs)
    assert info.value.param == param and info.value.owner == "simulate_study"
    assert "--" not in str(info.value)


def test_default_shared_is_a_third_of_the_stimuli_and_recorded() -> None:
    study = simulate_study(n_subjects=1, n_units=6, n_stimuli=30)
    assert study.params["n_shared"] == 10 and study.shared_ids.size == 10
