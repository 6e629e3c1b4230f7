"""The shared algebra and each aligner's solver, on planted answers."""

from __future__ import annotations

import numpy as np
import pytest
from conform_align import OptimalTransportAligner, RidgeAligner, SRMAligner
from conform_align._algebra import centre, initial_template, orthogonal_map, refine_template
from conform_align.optimal_transport import sinkhorn, transport_cost
from conform_align.ridge import DEFAULT_ALPHAS
from conform_align.srm import probabilistic_srm
from scipy.stats import ortho_group

from conform_core import ConditionData, ParameterError
from conform_core.testing.fakes import make_subject_conditions


def test_orthogonal_map_recovers_a_known_rotation_and_scale():
    rng = np.random.default_rng(0)
    source = rng.standard_normal((50, 6))
    rotation = ortho_group.rvs(6, random_state=1)
    r, scale = orthogonal_map(source, 2.5 * source @ rotation, scaling=True)
    # exact data: the solution is unique, recovered to machine precision
    np.testing.assert_allclose(r, rotation, atol=1e-10)
    assert scale == pytest.approx(2.5, rel=1e-10)
    assert orthogonal_map(source, source @ rotation)[1] == 1.0  # no scaling asked


def test_orthogonal_map_into_fewer_components_has_orthonormal_columns():
    rng = np.random.default_rng(0)
    r, _ = orthogonal_map(rng.standard_normal((30, 9)), rng.standard_normal((30, 4)))
    np.testing.assert_allclose(r.T @ r, np.eye(4), atol=1e-12)


def test_initial_template_spans_the_shared_signal():
    rng = np.random.default_rng(0)
    latent = centre(rng.standard_normal((40, 3)))[0]
    blocks = [latent @ rng.standard_normal((3, n)) for n in (10, 15, 20)]
    template = initial_template(blocks, 3)
    # noise-free: the three components span exactly the latent space (residual ~ 1e-13)
    coef = np.linalg.lstsq(template, latent, rcond=None)[0]
    np.testing.assert_allclose(template @ coef, latent, atol=1e-10)


def test_refine_template_is_the_mean_of_mapped_subjects():
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((20, 5)) for _ in range(3)]
    fit = lambda x, t: orthogonal_map(x, t)[0]  # noqa: E731
    template, maps = refine_template(blocks, initial_template(blocks, 5), fit,
                                     lambda x, r: x @ r, n_iter=2)
    again, _ = refine_template(blocks, template, fit, lambda x, r: x @ r, n_iter=0)
    assert len(maps) == 3 and again is template
    # generalised Procrustes never increases the misfit to the mean: compare 2 and 6 rounds
    misfit = [sum(np.sum((x @ r - t) ** 2) for x, r in zip(blocks, m))
              for t, m in (refine_template(blocks, initial_template(blocks, 5), fit,
                                           lambda x, r: x @ r, n_iter=n) for n in (2, 6))]
    assert misfit[1] <= misfit[0] + 1e-9


def _planted(n_cond=200, k=3, units=(30, 40, 50), noise=(0.1, 0.3, 0.5), seed=0):
    rng = np.random.default_rng(seed)
    shared = centre(rng.standard_normal((n_cond, k)) * [3.0, 2.0, 1.0])[0]
    blocks, maps = [], []
    for n, sd in zip(units, noise):
        w = ortho_group.rvs(n, random_state=int(rng.integers(1 << 30)))[:, :k]
        blocks.append(centre(shared @ w.T + sd * rng.standard_normal((n_cond, n)))[0])
        maps.append(w)
    return shared, blocks, maps, noise


def test_srm_em_log_likelihood_increases_and_recovers_the_planted_space():
    shared, blocks, maps, noise = _planted()
    estimate, ws, _, rho2, _, _, log_likelihood = probabilistic_srm(blocks, 3, n_iter=20)
    # EM never decreases the likelihood; 1e-8 relative absorbs float64 rounding
    steps = np.diff(log_likelihood)
    assert (steps >= -1e-8 * abs(log_likelihood[-1])).all() and steps.sum() > 0
    # the shared space is identified up to a rotation: project the truth onto the estimate
    coef = np.linalg.lstsq(estimate, shared, rcond=None)[0]
    residual = np.sum((estimate @ coef - shared) ** 2) / np.sum(shared**2)
    assert residual < 0.01  # noise sd <= 0.5 against signal sd >= 1 over 30+ units: ~1e-3
    # and each subject's noise variance is estimated (true 0.01, 0.09, 0.25; within 20%:
    # 200 conditions x 30+ units give many degrees of freedom)
    np.testing.assert_allclose(rho2, np.square(noise), rtol=0.2)


def test_deterministic_srm_is_generalised_procrustes():
    from conform_align import ProcrustesAligner

    subjects = make_subject_conditions(n_subjects=3, n_units=10, n_conditions=20)
    srm = SRMAligner(n_components=3, probabilistic=False, gain=False, n_iter=3).fit(subjects)
    procrustes = ProcrustesAligner(n_components=3, n_iter=3).fit(subjects)
    # one solver: identical maps, bit for bit
    for name in srm.subjects_:
        np.testing.assert_array_equal(srm.maps_[name], procrustes.maps_[name])


def test_sinkhorn_plan_has_uniform_marginals():
    rng = np.random.default_rng(0)
    cost = transport_cost(rng.standard_normal((30, 40)), rng.standard_normal((30, 6)))
    assert cost.min() >= 0 and cost.max() <= 4  # 2 - 2r
    plan = sinkhorn(cost, 0.05 * np.median(cost))
    # the stopping rule is an L1 row error below 1e-7; columns are exact after each sweep
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 40, atol=1e-7)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 6, atol=1e-12)
    # small entropy: mass concentrates on cheap pairs (mean cost under the plan is lower)
    assert np.sum(plan * cost) < cost.mean()


def test_optimal_transport_maps_are_barycentric():
    subjects = make_subject_conditions(n_subjects=3)
    aligner = OptimalTransportAligner(n_components=3).fit(subjects)
    for name in aligner.subjects_:
        np.testing.assert_allclose(aligner.maps_[name].sum(axis=0), 1.0, atol=1e-6)


def test_optimal_transport_refuses_a_plan_over_the_memory_bound():
    subjects = make_subject_conditions(n_subjects=2, n_units=50, n_conditions=20)
    with pytest.raises(ParameterError, match="labels= for piecewise alignment"):
        OptimalTransportAligner(n_components=10, max_memory_mb=1e-3).fit(subjects)


def test_ridge_alpha_is_chosen_within_the_grid():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((3, 60))
    ids = np.array([f"s{i}" for i in range(60)])
    subjects = [ConditionData(rng.standard_normal((n, 3)) @ latent
                              + rng.standard_normal((n, 60)), ids, subject=f"sub-{i}")
                for i, n in enumerate((20, 30, 40))]
    aligner = RidgeAligner(n_components=3).fit(subjects)
    for name in aligner.subjects_:
        assert min(DEFAULT_ALPHAS) <= aligner.alpha_[name] <= max(DEFAULT_ALPHAS)
        assert aligner.decoder_alphas_[name].shape == (aligner.maps_[name].shape[0],)
    # noise as large as the signal: the penalty is not the grid's smallest
    assert max(aligner.alpha_.values()) > min(DEFAULT_ALPHAS)
