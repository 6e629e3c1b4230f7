"""PSN against the simulator's true signal at low SNR.

Baselines: the trial average and the ``pca`` baseline denoiser (rank chosen by
leave-one-trial-out cross-validation), both taken from the registry. Result on this
simulation (MSE relative to the trial average, snr=0.3): PCA 0.45, PSN wiener 0.15,
PSN prediction 0.17, PSN cross-validated 0.16, PSN 'standard' (max-tradeoff) 0.64. The
default 'standard' preset deliberately keeps more dimensions than the MSE-optimal
point (shared/docs/psn_gsn.md pitfall 22): it beats the trial average but not PCA, so
the "beats PCA" claim is tested for the MSE-oriented settings only.
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import PSNDenoiser
from threadpoolctl import threadpool_limits

from conform_core.plugins import default_registry

simulation = pytest.importorskip("conform_synthetic")


@pytest.fixture(scope="module")
def study():
    sim = simulation.simulate_study(n_subjects=1, n_units=80, n_stimuli=300, n_repeats=3,
                                    snr=0.3, random_state=1)
    return sim.subjects[0]


@pytest.fixture(scope="module")
def registry():
    return default_registry()


def _mse(estimate, truth):
    return float(np.mean((np.asarray(estimate, dtype=np.float64) - truth) ** 2))


def test_psn_beats_trial_average_and_pca(study, registry):
    trials = study.trials.by_condition()
    truth = study.truth.signal.select(trials.stimulus_ids).data.astype(np.float64)
    with threadpool_limits(1):
        base = _mse(trials.mean().data, truth)
        pca = _mse(registry.get("denoiser", "pca")().fit_transform(trials).data, truth)
        psn_err = {
            "wiener": PSNDenoiser(preset="wiener"),
            "prediction": PSNDenoiser(criterion="prediction"),
            "aggressive": PSNDenoiser(preset="aggressive"),
            "cv": PSNDenoiser(preset="cv", options={"cv_threshold_per": "population"}),
        }
        psn_err = {k: _mse(d.fit_transform(trials).data, truth) for k, d in psn_err.items()}
        standard = _mse(PSNDenoiser().fit_transform(trials).data, truth)
    # Margins: each PSN variant is at least 30 % below PCA and 70 % below the trial
    # average here (see module docstring); requiring 10 % / 50 % leaves room for
    # simulator changes while still failing if the denoiser stops working.
    for name, err in psn_err.items():
        assert err < 0.9 * pca, (name, err, pca)
        assert err < 0.5 * base, (name, err, base)
    assert standard < 0.8 * base  # the conservative default still improves on averaging


def test_held_out_encoding_improves(study, registry):
    """Ridge fitted on PSN-denoised training responses predicts the true test signal better."""
    trials = study.trials.by_condition(study.train_ids)
    x_train = study.stimuli.select(study.train_ids).embeddings
    x_test = study.stimuli.select(study.test_ids).embeddings
    truth_test = study.truth.signal.select(study.test_ids).data.astype(np.float64)
    ridge = registry.get("encoder", "ridge")
    scores = {}
    with threadpool_limits(1):
        for name, den in (("average", trials.mean()),
                          ("psn", PSNDenoiser(preset="wiener").fit_transform(trials))):
            pred = ridge().fit(x_train, den.data.T).predict(x_test).T
            scores[name] = np.median([np.corrcoef(p, t)[0, 1] for p, t in zip(pred, truth_test)])
    assert scores["psn"] > scores["average"] + 0.02, scores
