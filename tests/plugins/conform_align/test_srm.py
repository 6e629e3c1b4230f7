"""SRM with a gain per subject: EM on planted answers, the gain-free model unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from conform_align import ProcrustesAligner, SRMAligner
from conform_align._algebra import centre, initial_template, orthogonal_map
from conform_align.srm import probabilistic_srm
from scipy.stats import ortho_group

from conform_core import ConditionData, ParameterError
from conform_core.testing.fakes import make_subject_conditions

GAINS = (1.0, 2.0, 0.5, 1.5)
UNITS = (30, 60, 20, 45)
NOISE = (0.5, 1.0, 0.3, 0.6)


def _planted(n_cond=200, k=3, gains=GAINS, units=UNITS, noise=NOISE, seed=0):
    """Centred blocks ``a_i * s @ W_i.T + noise`` with known gains, maps and noise sd."""
    rng = np.random.default_rng(seed)
    shared = centre(rng.standard_normal((n_cond, k)) * [3.0, 2.0, 1.0])[0]
    blocks, maps = [], []
    for a, n, sd in zip(gains, units, noise):
        w = ortho_group.rvs(n, random_state=int(rng.integers(1 << 30)))[:, :k]
        blocks.append(centre(a * shared @ w.T + sd * rng.standard_normal((n_cond, n)))[0])
        maps.append(w)
    return shared, blocks, maps


def _as_data(blocks, prefix="sub"):
    ids = np.array([f"stim{j:03d}" for j in range(blocks[0].shape[0])])
    return [ConditionData(x.T, ids, f"{prefix}-{i}") for i, x in enumerate(blocks)]


def _chen_srm(blocks, k, n_iter):
    """Chen et al. 2015 EM transcribed from brainiak's ``SRM._srm`` (units x samples).

    Independent of the package's code but for the starting maps (brainiak draws random ones)
    and the floor on rho2 (never reached here). Returns shared (k x samples), maps, rho2,
    sigma_s and the log-likelihood of brainiak's ``_likelihood`` before each iteration.
    """
    x = [b.T for b in blocks]
    samples = x[0].shape[1]
    voxels = np.array([xi.shape[0] for xi in x])
    w = [orthogonal_map(b, initial_template(blocks, k))[0] for b in blocks]
    rho2 = np.ones(len(x))
    trace_xtx = np.array([np.sum(xi**2) for xi in x])
    sigma_s = np.identity(k)
    loglike = []
    for _ in range(n_iter):
        rho0 = (1 / rho2).sum()
        chol_sigma_s = scipy.linalg.cho_factor(sigma_s)
        inv_sigma_s = scipy.linalg.cho_solve(chol_sigma_s, np.identity(k))
        chol_sigma_s_rhos = scipy.linalg.cho_factor(inv_sigma_s + np.identity(k) * rho0)
        inv_sigma_s_rhos = scipy.linalg.cho_solve(chol_sigma_s_rhos, np.identity(k))
        wt_invpsi_x = sum(wi.T @ xi / r for wi, xi, r in zip(w, x, rho2))
        trace_xt_invsigma2_x = np.sum(trace_xtx / rho2)
        log_det_psi = np.sum(np.log(rho2) * voxels)
        loglike.append(-0.5 * samples * (2 * np.log(np.diag(chol_sigma_s_rhos[0])).sum()
                                         + log_det_psi + 2 * np.log(np.diag(chol_sigma_s[0])).sum())
                       - 0.5 * trace_xt_invsigma2_x
                       + 0.5 * np.trace(wt_invpsi_x.T @ inv_sigma_s_rhos @ wt_invpsi_x))
        shared = sigma_s @ (np.identity(k) - rho0 * inv_sigma_s_rhos) @ wt_invpsi_x
        sigma_s = inv_sigma_s_rhos + shared @ shared.T / samples
        trace_sigma_s = samples * np.trace(sigma_s)
        for i, xi in enumerate(x):
            a_subject = xi @ shared.T
            u, _, vt = np.linalg.svd(a_subject, full_matrices=False)
            w[i] = u @ vt
            rho2[i] = (trace_xtx[i] - 2 * np.sum(w[i] * a_subject) + trace_sigma_s) / (
                samples * voxels[i])
    return shared, w, rho2, sigma_s, loglike


def test_without_gain_the_em_is_chen_et_al():
    _, blocks, _ = _planted()
    fit = probabilistic_srm(blocks, 3, n_iter=8, gain=False)
    shared, maps, rho2, sigma_s, loglike = _chen_srm(blocks, 3, n_iter=8)
    # same arithmetic in another order (orientation, sums): agreement to rounding, 1e-8
    np.testing.assert_allclose(fit.log_likelihood[:8], loglike, rtol=1e-8)
    np.testing.assert_allclose(fit.rho2, rho2, rtol=1e-8)
    for ours, theirs in zip(fit.maps, maps):
        np.testing.assert_allclose(ours, theirs, atol=1e-8)
    np.testing.assert_allclose(fit.sigma_s, sigma_s, rtol=1e-8)
    np.testing.assert_allclose(fit.gains, 1.0)
    # brainiak keeps the E-step before its last M-step; ours comes after it (one more E-step)
    again = probabilistic_srm(blocks, 3, n_iter=7, gain=False)
    np.testing.assert_allclose(again.shared.T, shared, atol=1e-8)


def test_aligner_without_gain_keeps_orthonormal_maps():
    _, blocks, _ = _planted()
    srm = SRMAligner(n_components=3, gain=False).fit(_as_data(blocks))
    for name in srm.subjects_:
        w = srm.maps_[name]
        assert srm.gains_[name] == 1.0
        np.testing.assert_allclose(w.T @ w, np.eye(3), atol=1e-12)  # orthonormal, rounding
        np.testing.assert_array_equal(srm.inverse_maps_[name], w.T)


@pytest.mark.parametrize("gain", [True, False])
def test_em_log_likelihood_never_decreases(gain):
    _, blocks, _ = _planted()
    log_likelihood = probabilistic_srm(blocks, 3, n_iter=30, gain=gain).log_likelihood
    # exact M-steps: EM never decreases the likelihood; 1e-10 relative absorbs rounding
    steps = np.diff(log_likelihood)
    assert (steps >= -1e-10 * abs(log_likelihood[-1])).all() and steps.sum() > 0


def test_gain_raises_the_likelihood_and_recovers_gains_and_noise():
    shared, blocks, _ = _planted()
    with_gain = probabilistic_srm(blocks, 3, n_iter=30, gain=True)
    without = probabilistic_srm(blocks, 3, n_iter=30, gain=False)
    # the gain-free model is nested in the gain model (planted gains 0.5 to 2): far above
    assert with_gain.log_likelihood[-1] > without.log_likelihood[-1] + 100
    # gains are identified up to one factor (rescaled to a root mean square of 1): compare
    # ratios; 200 conditions x 20+ units: within 5%
    truth = np.array(GAINS) / np.sqrt(np.mean(np.square(GAINS)))
    np.testing.assert_allclose(with_gain.gains, truth, rtol=0.05)
    assert np.sqrt(np.mean(with_gain.gains**2)) == pytest.approx(1.0, rel=1e-12)
    # noise variances (true 0.25, 1, 0.09, 0.36); the k fitted dimensions take a few degrees
    # of freedom: within 15%
    np.testing.assert_allclose(with_gain.rho2, np.square(NOISE), rtol=0.15)
    # the shared response spans the planted one (up to rotation and scale)
    coef = np.linalg.lstsq(with_gain.shared, shared, rcond=None)[0]
    # (noise sd <= 1 against signal sd >= 0.5 over 20+ units; measured 0.011)
    assert np.sum((with_gain.shared @ coef - shared) ** 2) / np.sum(shared**2) < 0.02


def test_add_subject_recovers_the_new_gain_and_noise():
    _, blocks, _ = _planted(gains=GAINS + (3.0,), units=UNITS + (25,), noise=NOISE + (0.4,))
    subjects = _as_data(blocks)
    srm = SRMAligner(n_components=3, n_iter=30).fit(subjects[:4])
    before = {name: srm.maps_[name].copy() for name in srm.subjects_}
    srm.add_subject(subjects[4])
    ratio = srm.gains_["sub-4"] / srm.gains_["sub-0"]
    # planted ratio 3 (measured 2.92-3.01 over 4 seeds): within 5%
    assert ratio == pytest.approx(3.0, rel=0.05)
    # its noise variance (0.16) once the shared response's uncertainty is taken off:
    # measured 0.156-0.168 over 4 seeds
    assert srm.rho2_["sub-4"] == pytest.approx(0.16, rel=0.15)
    for name, w in before.items():
        np.testing.assert_array_equal(srm.maps_[name], w)


def test_transform_undoes_inverse_transform():
    _, blocks, _ = _planted()
    subjects = _as_data(blocks)
    srm = SRMAligner(n_components=3).fit(subjects)
    shared = srm.transform(subjects[1])
    for name in srm.subjects_:
        into = srm.inverse_transform(shared, name)
        back = srm.transform(ConditionData(into.data, into.stimulus_ids, name, into.units))
        # transform = x W / a is the left inverse of the model's mean a s W.T: rounding only
        np.testing.assert_allclose(back.data, shared.data, atol=1e-9)


def test_gain_corrects_the_amplitude_of_a_subject_with_few_units():
    # the same signal per unit, unit counts 20 and 60: a subject's energy grows with its
    # units (planted gains sqrt(units / 20)), and an orthonormal map without a gain squeezes
    # the shared response's energy into the 20 units of the smallest subject
    units = (20, 60, 60, 60)
    shared, blocks, maps = _planted(gains=tuple(np.sqrt(np.divide(units, 20))), units=units,
                                    noise=(0.3,) * 4)
    signal = shared @ maps[0].T  # the smallest subject's noise-free responses (gain 1)
    subjects = _as_data(blocks)
    size = {}
    for gain in (True, False):
        srm = SRMAligner(n_components=3, gain=gain).fit(subjects[1:])
        srm.add_subject(subjects[0])
        mean = np.mean([srm.transform(s).data for s in subjects[1:]], axis=0)
        predicted = srm.inverse_transform(srm.template_.with_data(mean), "sub-0").data.T
        size[gain] = np.sum(predicted**2) / np.sum(signal**2)
    # with the gain, the right energy (noise sd 0.3 against signal sd 1 to 3: within 10%);
    # without, about 3 times too much (measured 3.0)
    assert abs(size[True] - 1) < 0.1
    assert size[False] > 2


def test_deterministic_srm_is_procrustes_scaled_by_gain():
    subjects = make_subject_conditions(n_subjects=3, n_units=10, n_conditions=20)
    for gain in (True, False):
        srm = SRMAligner(n_components=3, probabilistic=False, gain=gain, n_iter=3).fit(subjects)
        procrustes = ProcrustesAligner(n_components=3, scaling=gain, n_iter=3).fit(subjects)
        # one solver: identical maps, bit for bit
        for name in srm.subjects_:
            np.testing.assert_array_equal(srm.maps_[name], procrustes.maps_[name])
            scale = np.linalg.norm(procrustes.maps_[name][:, 0])
            assert srm.gains_[name] == pytest.approx(1 / scale if gain else 1.0, rel=1e-12)


def test_gain_must_be_boolean():
    with pytest.raises(ParameterError, match="gain"):
        SRMAligner(gain="yes").fit(make_subject_conditions(n_subjects=3))
