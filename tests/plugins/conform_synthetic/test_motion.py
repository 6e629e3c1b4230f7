"""Head motion (``motion``): its own random stream, mixed into the runs, carried as confounds,
written and read back by the default layout, and what a GLM gains by fitting them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conform_synthetic import read_study, simulate_study, write_study
from conform_synthetic._motion import MOTION_NAMES, cosine_basis, framewise_displacement
from threadpoolctl import threadpool_limits

from conform_core.exceptions import DataFileError, ParameterError

TS = dict(n_subjects=1, n_units=40, n_stimuli=20, n_repeats=2, n_features=8, n_latent=3,
          timeseries=True, trials_per_run=20, random_state=3)


@pytest.fixture(scope="module")
def pair():
    """The same study without and with motion."""
    return simulate_study(**TS), simulate_study(**TS, motion=0.8)


def test_no_motion_means_no_confounds(pair) -> None:
    still, _ = pair
    ts = still.subjects[0].timeseries
    assert ts.confounds is None and ts.confound_names is None and ts.n_confounds == 0


def test_motion_changes_nothing_but_the_runs(pair) -> None:
    """Motion has a stream of its own: every other draw, hence all but the runs, is unchanged.

    (That motion=0 leaves a study bit-identical to one simulated before the setting existed
    was checked against the base commit when it was added; this is the property that
    guarantees it.)
    """
    still, moving = pair
    a, b = still.subjects[0], moving.subjects[0]
    np.testing.assert_array_equal(a.trials.betas, b.trials.betas)
    np.testing.assert_array_equal(a.truth.signal.data, b.truth.signal.data)
    np.testing.assert_array_equal(a.truth.hrf_index, b.truth.hrf_index)
    for ea, eb in zip(a.timeseries.events, b.timeseries.events, strict=True):
        np.testing.assert_array_equal(ea.onset, eb.onset)
    assert not np.array_equal(a.timeseries.runs[0], b.timeseries.runs[0])


def test_runs_differ_by_the_loadings_on_z_scored_motion() -> None:
    """Without drift and noise, run_motion - run_still = baseline * (L z(t)) / 100 exactly.

    The baseline is the first volume (8 s of rest, no drift, no noise); L (units x 6) is drawn
    once per subject, after the walks, from the subject's motion stream.
    """
    from conform_synthetic import SimulationParams
    from conform_synthetic._motion import draw_loadings, draw_motion, motion_psc
    from conform_synthetic._study import subject_motion_rng

    quiet = dict(TS, drift=0.0, timeseries_noise=0.0)
    a = simulate_study(**quiet).subjects[0].timeseries
    b = simulate_study(**quiet, motion=0.8).subjects[0].timeseries
    assert b.confound_names == MOTION_NAMES and b.n_confounds == 6
    rng = subject_motion_rng(SimulationParams(**quiet, motion=0.8), 0)
    walks = draw_motion(rng, [r.shape[1] for r in a.runs])
    loadings = draw_loadings(rng, 40, 0.8)
    assert 0.6 < loadings.std() < 1.0  # 240 draws of sd 0.8: the estimate is within ~5%
    for r, (ra, rb) in enumerate(zip(a.runs, b.runs, strict=True)):
        np.testing.assert_array_equal(b.confounds[r], walks[r])
        assert walks[r].shape == (ra.shape[1], 6)
        np.testing.assert_array_equal(walks[r][0], 0.0)  # the walk starts at the reference
        ra64, rb64 = np.asarray(ra, np.float64), np.asarray(rb, np.float64)
        psc = (rb64 - ra64) / ra64[:, :1] * 100
        # float32 runs near 100 round at ~1e-5; in PSC (x100 / 100) that stays below 1e-3
        np.testing.assert_allclose(psc, motion_psc(walks[r], loadings), atol=1e-3)


def test_motion_is_a_smooth_walk_of_plausible_size(pair) -> None:
    motion = pair[1].subjects[0].timeseries.confounds[0]
    steps = np.diff(motion, axis=0)
    lag1 = [np.corrcoef(steps[:-1, j], steps[1:, j])[0, 1] for j in range(6)]
    assert min(lag1) > 0.5  # smoothed steps (kernel sd 2 volumes: lag-1 correlation ~0.88)
    assert np.abs(motion[:, :3]).max() < 5.0  # mm: a still subject, not a scanner fault
    assert np.abs(motion[:, 3:]).max() < 0.1  # radians


def test_framewise_displacement_and_cosines() -> None:
    params = np.zeros((5, 6))
    params[2:, 0] = 0.1  # a 0.1-mm step in x after volume 1
    params[3:, 3] = 0.002  # then a 0.002-rad rotation: 0.1 mm at 50 mm
    fd = framewise_displacement(params)
    assert np.isnan(fd[0])
    np.testing.assert_allclose(fd[1:], [0.0, 0.1, 0.1, 0.0])
    basis = cosine_basis(300, 1.0)  # floor(2 * 300 / 128) = 4 terms, the constant left out
    assert basis.shape == (300, 3)
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)  # orthonormal DCT


def test_motion_needs_timeseries() -> None:
    with pytest.raises(ParameterError, match=r"motion=0.5.*timeseries"):
        simulate_study(n_subjects=1, n_units=9, n_stimuli=12, motion=0.5)
    with pytest.raises(ParameterError, match="motion"):
        simulate_study(n_subjects=1, n_units=9, n_stimuli=12, timeseries=True, motion=-1.0)


def test_default_layout_writes_and_reads_the_confounds(pair, tmp_path: Path) -> None:
    still, moving = pair
    write_study(tmp_path / "moving", moving)
    write_study(tmp_path / "still", still)
    func = tmp_path / "moving" / "sub-01" / "func"
    tables = sorted(func.glob("*_desc-confounds_timeseries.tsv"))
    assert [p.name for p in tables] == [
        f"sub-01_task-conform_run-{r:02d}_desc-confounds_timeseries.tsv" for r in (1, 2)]
    assert tables[0].read_text().splitlines()[0].split("\t") == list(MOTION_NAMES)
    back = read_study(tmp_path / "moving").subjects[0].timeseries
    assert back.confound_names == MOTION_NAMES
    for c, d in zip(moving.subjects[0].timeseries.confounds, back.confounds, strict=True):
        np.testing.assert_array_equal(c, d)  # written with repr: exact
    assert not list((tmp_path / "still").rglob("*confounds*"))
    assert read_study(tmp_path / "still").subjects[0].timeseries.confounds is None
    tables[1].unlink()
    with pytest.raises(DataFileError, match=r"Only 1 of the 2 runs .* confounds table"):
        read_study(tmp_path / "moving")


def _design(ts) -> list[np.ndarray]:
    ids = np.unique(ts.stimulus_ids())
    design = []
    for run, ev in zip(ts.runs, ts.events, strict=True):
        d = np.zeros((run.shape[1], ids.size))
        d[np.round(ev.onset / ts.tr).astype(int), np.searchsorted(ids, ev.stimulus_ids)] = 1
        design.append(d)
    return design


def test_glm_with_the_confounds_recovers_the_amplitudes_better() -> None:
    """GLMsingle type B (library HRF, no GLMdenoise/ridge, which would absorb motion through
    PCs) with and without the motion parameters as extra regressors.

    At motion=1 PSC per parameter, over seeds 0-3 the RMSE to the true amplitudes fell from
    2.0-2.7 to 0.96-1.27 PSC (ratio 0.40-0.52) and the median per-unit correlation rose by
    0.20-0.31. The margins asserted (ratio < 0.75, gain > 0.1) are half of the smallest
    improvements seen.
    """
    from conform_glmsingle import GLM_single

    study = simulate_study(n_subjects=1, n_units=30, n_stimuli=24, n_repeats=2,
                           timeseries=True, motion=1.0, trials_per_run=24, random_state=0)
    subject = study.subjects[0]
    ts, truth = subject.timeseries, np.asarray(subject.truth.trial_amplitudes, np.float64)
    runs = [np.asarray(r) for r in ts.runs]
    scores = {}
    for name, extra in (("without", False), ("with", [np.asarray(c) for c in ts.confounds])):
        params = {"verbose": False, "wantglmdenoise": 0, "wantfracridge": 0,
                  "wantmemoryoutputs": [0, 1, 0, 0], "extra_regressors": extra}
        with threadpool_limits(1):
            fit = GLM_single(params).fit(_design(ts), runs, 3.0, ts.tr)
        betas = fit["typeb"]["betasmd"].reshape(truth.shape[1], -1).T
        rmse = float(np.sqrt(np.mean((betas - truth) ** 2)))
        corr = float(np.median([np.corrcoef(betas[:, u], truth[:, u])[0, 1]
                                for u in range(truth.shape[1])]))
        scores[name] = rmse, corr
    assert scores["with"][0] < 0.75 * scores["without"][0], scores
    assert scores["with"][1] > scores["without"][1] + 0.1, scores
