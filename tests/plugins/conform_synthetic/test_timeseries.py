"""Time-series mode: events inside runs, amplitudes and HRF indices consistent with the runs."""

from __future__ import annotations

import numpy as np
import pytest
from conform_synthetic import simulate_study
from scipy.signal import lfilter

from conform_core.hrf import hrf_library

TS = dict(n_subjects=2, n_units=12, n_stimuli=30, n_shared=10, n_repeats=2, n_features=8,
          n_latent=3, timeseries=True, trials_per_run=20, missing_fraction=0.1)


@pytest.fixture(scope="module")
def study():
    return simulate_study(**TS, random_state=4)


def test_timeseries_and_trials_agree(study) -> None:
    for s in study.subjects:
        ts = s.timeseries
        assert ts is not None and ts.tr == 1.0 and ts.n_units == 12
        np.testing.assert_array_equal(ts.stimulus_ids(), s.trials.stimulus_ids)
        runs_of_events = np.concatenate([np.full(ev.n_events, r) for r, ev in enumerate(ts.events)])
        np.testing.assert_array_equal(runs_of_events, s.trials.runs)
        np.testing.assert_array_equal(ts.sessions[s.trials.runs], s.trials.sessions)
        np.testing.assert_array_equal(s.truth.trial_amplitudes, s.trials.betas)
        assert s.truth.hrf_index.shape == (12,) and s.truth.hrf_index.min() >= 0
        assert s.truth.hrf_index.max() < 20


def test_events_lie_inside_runs_on_the_tr_grid(study) -> None:
    for s in study.subjects:
        ts = s.timeseries
        for run, ev in zip(ts.runs, ts.events):
            length = run.shape[1] * ts.tr
            assert np.all(ev.onset >= 0) and np.all(ev.onset + ev.duration <= length)
            assert np.all(np.diff(ev.onset) > 0)
            np.testing.assert_allclose(ev.onset / ts.tr, np.round(ev.onset / ts.tr))
            assert run.dtype == np.float32


def test_noise_free_runs_are_amplitudes_convolved_with_true_hrfs() -> None:
    """Without drift and noise, a run is baseline * (1 + sum_e amp_e h(t - onset_e) / 100)."""
    study = simulate_study(**TS, drift=0.0, timeseries_noise=0.0, random_state=4)
    s = study.subjects[0]
    lib = hrf_library(3.0, 1.0)
    amp, hrf = s.truth.trial_amplitudes, s.truth.hrf_index
    for r, (run, ev) in enumerate(zip(s.timeseries.runs, s.timeseries.events)):
        rows = np.flatnonzero(s.trials.runs == r)
        expected = np.zeros(run.shape, np.float64)
        for i_trial, onset in zip(rows, ev.onset.astype(int)):
            for u in range(run.shape[0]):
                seg = lib[:, hrf[u]][: run.shape[1] - onset]
                expected[u, onset:onset + seg.size] += amp[i_trial, u] * seg
        baseline = run[:, :1].astype(np.float64)  # 8 s of rest before the first event
        psc = (run / baseline - 1) * 100
        np.testing.assert_allclose(psc, expected, atol=1e-3)  # float32 at a scale of 100: ~1e-5


def test_glm_with_true_hrf_recovers_amplitudes(study) -> None:
    """A GLM with each unit's true HRF (and drift terms) fits better than with a wrong HRF,
    and its betas track the true single-trial amplitudes (noise sd 0.5 PSC vs amplitude sd ~1)."""
    s = study.subjects[0]
    lib = hrf_library(3.0, 1.0)
    run, ev = s.timeseries.runs[0].astype(np.float64), s.timeseries.events[0]
    rows = np.flatnonzero(s.trials.runs == 0)
    psc = (run / run.mean(axis=1, keepdims=True) - 1) * 100
    t = np.linspace(-1, 1, run.shape[1])
    drift = np.stack([np.ones_like(t), t, t * t], axis=1)
    better, r_true = 0, []
    for u in range(run.shape[0]):
        fits = {}
        for h in (s.truth.hrf_index[u], (s.truth.hrf_index[u] + 10) % 20):
            sticks = np.zeros((run.shape[1], len(rows)))
            sticks[ev.onset.astype(int), np.arange(len(rows))] = 1
            design = np.hstack([lfilter(lib[:, h], [1.0], sticks, axis=0), drift])
            coef, res, *_ = np.linalg.lstsq(design, psc[u], rcond=None)
            fits[h] = (float(res[0]), coef[: len(rows)])
        true_h = s.truth.hrf_index[u]
        wrong = [v for k, v in fits.items() if k != true_h][0]
        better += fits[true_h][0] < wrong[0]
        r_true.append(np.corrcoef(fits[true_h][1], s.truth.trial_amplitudes[rows, u])[0, 1])
    assert better >= 0.9 * run.shape[0]
    assert np.median(r_true) > 0.8


def test_trials_only_study_has_no_runs() -> None:
    study = simulate_study(**{**TS, "timeseries": False})
    assert all(s.timeseries is None for s in study.subjects)
