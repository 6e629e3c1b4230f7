"""The psn and gsn components: registration, held-out application.

The contract kit checks them (each preset) from tests/test_common.py, with the instances of
conform_psn's ``conform_contract_instances``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import GSNDenoiser, PSNDenoiser, psn

from conform_core.data import ConditionTrials
from conform_core.plugins import default_registry
from conform_core.testing.fakes import make_condition_trials


def test_registered():
    registry = default_registry()
    assert registry.get("denoiser", "psn") is PSNDenoiser
    assert registry.get("denoiser", "gsn") is GSNDenoiser


@pytest.fixture
def trials():
    return make_condition_trials(n_units=15, n_conditions=80, n_trials=3, snr=0.7)


def test_fit_matches_functional_psn(trials):
    den = PSNDenoiser(preset="aggressive").fit(trials)
    ref = psn(np.asarray(trials.data), "aggressive")  # ids already sorted
    np.testing.assert_allclose(den.denoiser_, ref["denoiser"], atol=1e-12)
    np.testing.assert_allclose(den.transform(trials).data, ref["denoiseddata"], atol=1e-10)


def test_held_out_conditions_use_training_fit(trials):
    train, test = trials.take_conditions(np.arange(60)), trials.take_conditions(np.arange(60, 80))
    den = PSNDenoiser(criterion="prediction").fit(train)
    out = den.transform(test)
    avg = test.data.mean(axis=2)
    expected = den.denoiser_.T @ (avg - den.unit_means_[:, None]) + den.unit_means_[:, None]
    np.testing.assert_allclose(out.data, expected, atol=1e-10)
    np.testing.assert_array_equal(out.stimulus_ids, test.stimulus_ids)
    removed = den.noise_component(test)
    np.testing.assert_allclose(out.data + removed.data, avg, atol=1e-10)


def test_transform_rejects_other_units(trials):
    den = PSNDenoiser().fit(trials)
    with pytest.raises(Exception, match="fitted on 15 units but got 14"):
        den.transform(trials.take_units(np.arange(14)))


def test_gsn_component_noise_ceilings(trials):
    gsn = GSNDenoiser().fit(trials)
    assert gsn.ncsnr_.shape == (15,)
    assert np.all((gsn.noise_ceiling_ >= 0) & (gsn.noise_ceiling_ <= 100))
    one, many = gsn.noise_ceiling(1), gsn.noise_ceiling(10)
    assert np.all(many >= one)
    np.testing.assert_allclose(gsn.noise_ceiling(3), gsn.noise_ceiling_)
    np.testing.assert_allclose(gsn.transform(trials).data, trials.mean().data)


def test_fit_does_not_depend_on_condition_order(trials):
    perm = np.random.default_rng(3).permutation(trials.n_conditions)
    a = PSNDenoiser().fit(trials).denoiser_
    b = PSNDenoiser().fit(trials.take_conditions(perm)).denoiser_
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_accepts_trialdata(trials):
    from conform_core.data import TrialData

    n_u, n_c, n_t = trials.data.shape
    betas = trials.data.transpose(1, 2, 0).reshape(-1, n_u)
    ids = np.repeat(trials.stimulus_ids, n_t)
    out = PSNDenoiser().fit_transform(TrialData(betas, ids))
    assert isinstance(out.data, np.ndarray) and out.data.shape == (n_u, n_c)
    assert isinstance(trials, ConditionTrials)
