"""The Procrustes aligner recovers rotations between subjects."""

from __future__ import annotations

import numpy as np
import pytest
from conform_baselines import ProcrustesAligner
from scipy.stats import special_ortho_group

from conform_core import ConditionData, ShapeError


def _rotated_subjects(n_subjects=4, n_units=12, n_cond=40, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_units, n_cond))
    ids = np.array([f"s{i}" for i in range(n_cond)])
    out = []
    for s in range(n_subjects):
        rot = special_ortho_group.rvs(n_units, random_state=seed + s)
        data = (
            rot @ latent
            + noise * rng.standard_normal((n_units, n_cond))
            + rng.standard_normal((n_units, 1))
        )
        out.append(ConditionData(data, ids, subject=f"sub-{s}"))
    return out


def test_noise_free_rotations_are_inverted_exactly():
    subjects = _rotated_subjects()
    aligner = ProcrustesAligner().fit(subjects[:3])
    aligner.add_subject(subjects[3])
    shared = aligner.transform(subjects[0])
    predicted = aligner.inverse_transform(shared, "sub-3")
    # orthogonal maps between exactly rotated copies: error at machine precision
    np.testing.assert_allclose(predicted.data, subjects[3].data, atol=1e-8)


def test_held_out_subject_is_predicted_from_others_with_noise():
    subjects = _rotated_subjects(noise=0.3, n_cond=80)
    aligner = ProcrustesAligner(n_components=12).fit(subjects[:3])
    aligner.add_subject(subjects[3])
    shared = np.mean([aligner.transform(s).data for s in subjects[:3]], axis=0)
    predicted = aligner.inverse_transform(ConditionData(shared, subjects[0].stimulus_ids), "sub-3")
    r = np.corrcoef(predicted.data.ravel(), subjects[3].data.ravel())[0, 1]
    assert r > 0.9


def test_too_few_shared_stimuli_is_explained():
    a, b = _rotated_subjects(n_subjects=2)
    b = ConditionData(b.data[:, :2] * 0 + 1, ["x", "y"], subject="sub-1")
    with pytest.raises(ShapeError, match="at least 3 stimuli seen by every subject; got 0"):
        ProcrustesAligner().fit([a, b])
