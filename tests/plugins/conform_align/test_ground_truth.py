"""Ground truth: held-out subjects predicted through the shared space, scored against the truth.

A study is simulated with a smooth shared tuning over the unit sheet; each aligner is fitted on
every subject but one, the held-out one is added from its training stimuli only, and its test
responses are predicted from the other subjects' test responses (mapped into the shared space,
averaged, mapped back), then compared with the noise-free signal (``truth.signal``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_align import (
    IdentityAligner,
    OptimalTransportAligner,
    ProcrustesAligner,
    RidgeAligner,
    SRMAligner,
)
from conform_synthetic import simulate_study
from threadpoolctl import threadpool_limits

#: Five subjects seeing the same 150 stimuli (120 train, 30 test), 100 units on a 10 x 10 sheet.
STUDY = dict(n_subjects=5, n_units=100, n_stimuli=150, n_shared=150, tuning_length_scale=2.0)


def _scores(aligner, study, held):
    """Per-unit R² and r of the held-out subject's predicted test responses."""
    data = [s.trials.by_condition().mean() for s in study.subjects]
    subject = study.subjects[held]
    others = [d for i, d in enumerate(data) if i != held]
    with threadpool_limits(1):
        aligner.fit([d.select(subject.train_ids) for d in others])
        aligner.add_subject(data[held].select(subject.train_ids))
        shared = [aligner.transform(d.select(subject.test_ids)) for d in others]
        mean = shared[0].with_data(np.nanmean([s.data for s in shared], axis=0))
        predicted = aligner.inverse_transform(mean, subject.name).data
    truth = subject.truth.signal.select(subject.test_ids).data
    truth_c = truth - truth.mean(axis=1, keepdims=True)
    r2 = 1 - ((predicted - truth) ** 2).sum(axis=1) / (truth_c**2).sum(axis=1)
    pred_c = predicted - predicted.mean(axis=1, keepdims=True)
    r = (pred_c * truth_c).sum(axis=1) / np.sqrt((pred_c**2).sum(axis=1) * (truth_c**2).sum(axis=1))
    return float(np.mean(r2)), float(np.mean(r))


@pytest.fixture(scope="module")
def misregistered():
    return simulate_study(**STUDY, misregistration=1.5, random_state=3)


@pytest.fixture(scope="module")
def uneven():
    # each subject misses up to half of the sheet: 50 to 100 units, ids still the sheet's
    return simulate_study(**STUDY, misregistration=1.5, unit_dropout=0.5, random_state=4)


@pytest.mark.parametrize("aligner", [ProcrustesAligner(), RidgeAligner(n_components=8),
                                     SRMAligner(n_components=8),
                                     OptimalTransportAligner(n_components=16)],
                         ids=["procrustes", "ridge", "srm", "optimal-transport"])
def test_functional_aligners_beat_identity_under_misregistration(misregistered, aligner):
    identity = _scores(IdentityAligner(), misregistered, held=0)
    functional = _scores(aligner, misregistered, held=0)
    # Measured (seeds 3 and 7): identity R² -0.8/-0.6, r 0.52/0.65 (units with the same id
    # sample the tuning at displaced places, and no gain per unit is learned); functional R²
    # 0.63-0.96, r 0.81-0.98. The margins (R² +0.5, r +0.1) are far below the measured gaps and far above the
    # spread between seeds seen while choosing them (about 0.1 in R²).
    assert functional[0] > identity[0] + 0.5
    assert functional[1] > identity[1] + 0.1


def test_ridge_beats_procrustes_with_different_unit_counts(uneven):
    counts = {s.trials.n_units for s in uneven.subjects}
    assert len(counts) > 1
    held = range(3)
    ridge = np.mean([_scores(RidgeAligner(n_components=8), uneven, h)[0] for h in held])
    procrustes = np.mean([_scores(ProcrustesAligner(n_components=8), uneven, h)[0]
                          for h in held])
    # Measured (seeds 4 and 8, 3 held-out subjects): ridge 0.94-0.95, procrustes 0.64-0.88.
    # An orthonormal map puts the template's energy (an average subject's) into every
    # subject's units, so a subject with fewer units gets inflated amplitudes; ridge maps
    # rescale per unit. 0.1 is well under the measured gap.
    assert ridge > procrustes + 0.1


@pytest.fixture(scope="module", params=[0.5, 1.0], ids=["snr0.5", "snr1"])
def uneven_pair(request):
    """Two uneven studies (seeds 4 and 5) at one SNR."""
    return request.param, [simulate_study(**STUDY, misregistration=1.5, unit_dropout=0.5,
                                          snr=request.param, random_state=seed)
                           for seed in (4, 5)]


def test_srm_beats_procrustes_with_different_unit_counts(uneven_pair):
    """SRM's gain per subject undoes the amplitude an orthonormal map gives few units."""
    snr, studies = uneven_pair
    srm, procrustes = (np.mean([_scores(make(), study, h)[0] for study in studies
                                for h in range(STUDY["n_subjects"])])
                       for make in (lambda: SRMAligner(n_components=8),
                                    lambda: ProcrustesAligner(n_components=8)))
    # Measured over seeds 4-15, every subject held out in turn (mean R² per seed):
    # SRM - Procrustes at SNR 0.5: 0.037 to 0.149 (mean 0.066, sd 0.036; seeds 4, 5: 0.055,
    # 0.047); at SNR 1: 0.009 to 0.098 (mean 0.036, sd 0.029; seeds 4, 5: 0.032, 0.017). SRM
    # never lost a seed. The margins (0.02 and 0.005) are below the smallest gap of any seed.
    assert srm > procrustes + {0.5: 0.02, 1.0: 0.005}[snr]
