"""Sinkhorn of the optimal-transport aligner: its two domains agree, and agree with POT.

Tolerance. Every route stops when the plan's row marginals are within ``tol`` (L1, of a
total mass 1) of uniform, and its columns are exact after the last update, so two routes'
plans differ by about ``tol`` spread over a row: entries (~1/(n m)) agree to a relative ~1e-6
at ``tol=1e-7`` (measured: 2e-7 on these problems). We assert 1e-5 relative to the largest
entry, an order of margin, while a wrong update (a missing ``reg`` or a transposed kernel)
moves entries by > 1e-2.
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_align import OptimalTransportAligner
from conform_align import optimal_transport as ot_module
from conform_align.optimal_transport import sinkhorn, transport_cost
from threadpoolctl import threadpool_limits

from conform_core.testing.fakes import make_subject_conditions

RTOL = 1e-5


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def cost_matrix(n_units: int = 30, k: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((60, 3))
    x = latent @ rng.standard_normal((3, n_units)) + rng.standard_normal((60, n_units))
    return transport_cost(x, latent @ rng.standard_normal((3, k)))


def assert_close_plans(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=RTOL * np.abs(b).max())


@pytest.mark.parametrize("k", [4, 30])
def test_scaling_and_log_domains_give_the_same_plan(k, monkeypatch):
    cost = cost_matrix(k=k)
    reg = 0.1 * np.median(cost)
    assert (cost.max() - cost.min()) / reg < ot_module._SCALING_SPREAD  # the scaling route
    fast = sinkhorn(cost, reg)
    monkeypatch.setattr(ot_module, "_SCALING_SPREAD", -1.0)  # force the log domain
    assert_close_plans(fast, sinkhorn(cost, reg))
    np.testing.assert_allclose(fast.sum(axis=1), 1 / cost.shape[0], rtol=0, atol=1e-7)
    # the last update is the columns': exact up to rounding (1e-15 on sums of ~1/k)
    np.testing.assert_allclose(fast.sum(axis=0), 1 / k, rtol=1e-12)


def test_a_sharp_plan_iterates_in_the_log_domain_and_stays_finite():
    cost = cost_matrix()
    reg = (cost.max() - cost.min()) / 300  # the kernel would span exp(-300) ~ 1e-130
    plan = sinkhorn(cost, reg, n_iter=20000)
    assert np.all(np.isfinite(plan))
    np.testing.assert_allclose(plan.sum(axis=1), 1 / cost.shape[0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / cost.shape[1], rtol=1e-12)


def test_agrees_with_pot():
    ot = pytest.importorskip("ot", reason="POT is not installed (pip install pot)")
    cost = cost_matrix(k=8)
    reg = 0.1 * np.median(cost)
    n, m = cost.shape
    theirs = ot.sinkhorn(np.full(n, 1 / n), np.full(m, 1 / m), cost, reg,
                         method="sinkhorn_log", stopThr=1e-9, numItermax=10000)
    assert_close_plans(sinkhorn(cost, reg), np.asarray(theirs))


def test_aligner_maps_do_not_depend_on_the_route(monkeypatch):
    """The scaling route (fast) against the log-domain route the aligner used before."""
    subjects = make_subject_conditions(n_subjects=4, n_units=20, n_conditions=50, rank=4)
    fast = OptimalTransportAligner(n_components=5).fit(subjects)
    monkeypatch.setattr(ot_module, "_SCALING_SPREAD", -1.0)
    slow = OptimalTransportAligner(n_components=5).fit(subjects)
    for s in fast.subjects_:
        assert_close_plans(fast.maps_[s], slow.maps_[s])
        assert_close_plans(fast.inverse_maps_[s], slow.inverse_maps_[s])
