"""Piecewise PSN: parcels, neighbourhoods, blending, Dask tasks, and the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import PSNDenoiser
from conform_psn._operators import as_dense, block_operator, lowrank_operator, operator_nbytes
from conform_psn._piecewise import (
    BORROWED_WEIGHT,
    blend_weights,
    largest_neighbourhood,
    neighbourhoods,
    resolve_parcels,
    run_tasks,
)
from threadpoolctl import threadpool_limits

from conform_core.data import Units
from conform_core.exceptions import ParameterError
from conform_core.memory import DataSize
from conform_core.testing.fakes import make_condition_trials

simulation = pytest.importorskip("conform_synthetic")


def _units(n: int, *, roi=None, shuffle: bool = False) -> Units:
    indices = np.random.default_rng(0).permutation(n) if shuffle else np.arange(n)
    return Units(ids=np.array([f"u{i}" for i in range(n)]), indices=indices * 10, roi=roi)


def test_blocks_are_contiguous_in_unit_order():
    units = _units(10, shuffle=True)
    parts = resolve_parcels(3, units, 10)
    assert sorted(p.size for p in parts) == [3, 3, 4]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(10))
    for part in parts:  # each block is a run of consecutive grid positions
        ranks = np.argsort(np.argsort(units.indices))[part]
        assert ranks.max() - ranks.min() == part.size - 1


def test_atlas_labels_and_max_parcel_split():
    roi = np.array(["V1"] * 7 + ["V2"] * 3 + [""] * 2)
    parts = resolve_parcels("atlas", _units(12, roi=roi), 12, max_parcel=4)
    # V1 (7 units) becomes 2 pieces of at most 4; V2 and the unlabelled units stay whole
    assert sorted(p.size for p in parts) == [2, 3, 3, 4]
    assert all(len(set(roi[p])) == 1 for p in parts)
    labels = np.array([2, 2, 1, 1, 1, 0])
    assert [p.tolist() for p in resolve_parcels(labels, None, 6)] == [[5], [2, 3, 4], [0, 1]]


@pytest.mark.parametrize("parcels, match", [
    ("atlas", "carry none"), ("schaefer", "not known"), (0, "between 1 and"),
    (np.zeros(3), "one label per unit")])
def test_bad_parcels_name_the_fix(parcels, match):
    with pytest.raises(ParameterError, match=match):
        resolve_parcels(parcels, _units(8), 8)


def test_neighbourhoods_borrow_the_nearest_units_and_weights_sum_to_one():
    units = _units(20)
    parts = resolve_parcels(4, units, 20)  # blocks of 5
    hoods = neighbourhoods(parts, units, 20, overlap=0.4)  # 2 more units each, nearest first
    assert hoods[0].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert hoods[1].tolist() == [4, 5, 6, 7, 8, 9, 10]  # one on each side (ties: lower first)
    weights = blend_weights(parts, hoods, 20)
    total = np.zeros(20)
    for hood, w in zip(hoods, weights):
        np.add.at(total, hood, w)
    np.testing.assert_allclose(total, 1.0)
    # unit 5 belongs to parcel 1 (weight 1) and is borrowed by parcels 0 (and not 2)
    w5 = {i: float(w[h == 5][0]) for i, (h, w) in enumerate(zip(hoods, weights)) if 5 in h}
    assert w5 == pytest.approx({0: BORROWED_WEIGHT / (1 + BORROWED_WEIGHT),
                                1: 1 / (1 + BORROWED_WEIGHT)})
    assert largest_neighbourhood(20, 4, 2000, 0.4) == 7


def test_block_and_lowrank_operators_equal_their_dense_matrices():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((5, 5))
    parts = [(np.arange(6), np.r_[np.ones(4), 0.5, 0.5], a),
             (np.arange(4, 9), np.r_[0.5, 0.5, np.ones(3)], b)]
    op = block_operator(9, parts)
    dense = np.zeros((9, 9))
    dense[np.ix_(np.arange(6), np.arange(6))] += a * parts[0][1]  # column u weighted
    dense[np.ix_(np.arange(4, 9), np.arange(4, 9))] += b * parts[1][1]
    x = rng.standard_normal((9, 3))
    np.testing.assert_allclose(as_dense(op), dense, atol=1e-12)
    np.testing.assert_allclose(op.T @ x, dense.T @ x, atol=1e-12)
    np.testing.assert_allclose(op.T @ x[:, 0], dense.T @ x[:, 0], atol=1e-12)
    left, right = rng.standard_normal((9, 2)), rng.standard_normal((9, 2))
    low = lowrank_operator(left, right)
    np.testing.assert_allclose(low.T @ x, (left @ right.T).T @ x, atol=1e-12)
    assert operator_nbytes(low) == 2 * 9 * 2 * 8
    assert operator_nbytes(op) > a.nbytes + b.nbytes


def test_one_parcel_is_the_unparcelled_fit():
    trials = make_condition_trials(n_units=30, n_conditions=60)
    whole = PSNDenoiser().fit(trials)
    single = PSNDenoiser(parcels=1).fit(trials)
    np.testing.assert_allclose(single.transform(trials).data, whole.transform(trials).data,
                               rtol=1e-10, atol=1e-10)


def test_threads_give_the_serial_result():
    trials = make_condition_trials(n_units=40, n_conditions=60)
    serial = PSNDenoiser(preset="standard", parcels=4).fit(trials)
    threads = PSNDenoiser(preset="standard", parcels=4, n_jobs=2).fit(trials)
    np.testing.assert_array_equal(serial.transform(trials).data, threads.transform(trials).data)
    assert serial.results_["n_parcels"] == 4
    assert len(run_tasks(np.sum, np.arange(10.0), [np.arange(3), np.arange(3, 10)],
                         n_jobs=2)) == 2


def test_scale_options_need_their_mode():
    with pytest.raises(ParameterError, match="covariance"):
        PSNDenoiser(rank=20).check_params()
    with pytest.raises(ParameterError, match="legacy"):
        PSNDenoiser(preset="cv", covariance="lowrank").check_params()


def test_piecewise_against_the_ground_truth():
    """What piecewise fitting loses against one fit of all units, and what overlap wins back.

    Measured (400 units, 400 stimuli, snr 0.5, tuning correlated over 3 grid steps; NMSE to
    the true signal): trial average 0.73, one fit 0.039, 4 parcels 0.086, with 25 % overlap
    0.071. The signal is 8 latent dimensions shared by all units, so each parcel estimates
    them from fewer units; the bounds leave room for simulator changes while failing if
    the pieces or the blend break.
    """
    sim = simulation.simulate_study(n_subjects=1, n_units=400, n_stimuli=400, n_repeats=3,
                                    snr=0.5, random_state=1, tuning_length_scale=3.0)
    subject = sim.subjects[0]
    trials = subject.trials.by_condition()
    truth = subject.truth.signal.select(trials.stimulus_ids).data.astype(np.float64)
    scale = np.mean((truth - truth.mean(axis=1, keepdims=True)) ** 2)

    def nmse(den: PSNDenoiser) -> float:
        return float(np.mean((den.fit_transform(trials).data - truth) ** 2) / scale)

    with threadpool_limits(1):
        average = float(np.mean((trials.mean().data - truth) ** 2) / scale)
        whole = nmse(PSNDenoiser())
        pieces = nmse(PSNDenoiser(parcels=4))
        blended = nmse(PSNDenoiser(parcels=4, overlap=0.25))
    assert whole < pieces, (whole, pieces)
    assert pieces < 0.25 * average, (pieces, average)
    assert blended < pieces * 1.05, (blended, pieces)
    assert pieces < 4 * whole, (pieces, whole)


def test_above_max_parcel_the_default_fits_contiguous_blocks():
    """parcels=None: one fit up to max_parcel units, else the fewest blocks of at most it."""
    trials = make_condition_trials(n_units=50, n_conditions=60)
    small = PSNDenoiser(preset="standard", max_parcel=20).fit(trials)
    blocks = PSNDenoiser(preset="standard", parcels=3).fit(trials)
    assert small.results_["n_parcels"] == 3 and small.chosen_ == "piecewise-standard"
    np.testing.assert_array_equal(small.transform(trials).data, blocks.transform(trials).data)
    whole = PSNDenoiser(preset="standard", max_parcel=50).fit(trials)
    assert isinstance(whole.denoiser_, np.ndarray) and "n_parcels" not in whole.results_
    lowrank = PSNDenoiser(preset="standard", covariance="lowrank", max_parcel=20).fit(trials)
    assert "n_parcels" not in lowrank.results_  # low rank fits all units at once
    size = DataSize(n_units=91282, n_conditions=1000, n_trials=3)
    default, exact = PSNDenoiser(), PSNDenoiser(max_parcel=100_000)
    assert default.peak_memory(size) < 16 * 1024**3 < exact.peak_memory(size)
    assert {"max_parcel": 1000} in exact.lighter_settings(size)


def test_on_a_dask_worker_the_parcels_are_tasks_of_its_cluster():
    """Inside a task (as under `conform fit --workers N`) each parcel is a task of the cluster."""
    distributed = pytest.importorskip("distributed")
    trials = make_condition_trials(n_units=40, n_conditions=60)
    serial = PSNDenoiser(preset="standard", parcels=4).fit(trials).transform(trials).data
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client, \
            distributed.get_task_stream(client) as stream:
        fitted = client.submit(
            lambda: PSNDenoiser(preset="standard", parcels=4).fit(trials)).result()
    assert len(stream.data) == 1 + 4  # the fit and its 4 parcels
    np.testing.assert_array_equal(fitted.transform(trials).data, serial)
