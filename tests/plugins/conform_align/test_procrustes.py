"""The Procrustes aligner recovers rotations between subjects."""

from __future__ import annotations

import numpy as np
import pytest
from conform_align import ProcrustesAligner
from scipy.stats import special_ortho_group

from conform_core import ConditionData, ShapeError


def _rotated_subjects(n_subjects=4, n_units=12, n_cond=40, noise=0.0, seed=0, scales=None):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_units, n_cond))
    ids = np.array([f"s{i}" for i in range(n_cond)])
    out = []
    for s in range(n_subjects):
        rot = special_ortho_group.rvs(n_units, random_state=seed + s)
        scale = 1.0 if scales is None else scales[s]
        data = (
            scale * rot @ latent
            + noise * rng.standard_normal((n_units, n_cond))
            + rng.standard_normal((n_units, 1))
        )
        out.append(ConditionData(data, ids, subject=f"sub-{s}"))
    return out


def test_noise_free_rotations_are_inverted_exactly():
    subjects = _rotated_subjects()
    aligner = ProcrustesAligner(n_components=None).fit(subjects[:3])
    assert aligner.n_components_ == 12  # every unit: min(12 units, 40 stimuli - 1)
    aligner.add_subject(subjects[3])
    shared = aligner.transform(subjects[0])
    predicted = aligner.inverse_transform(shared, "sub-3")
    # orthogonal maps between exactly rotated copies: error at machine precision
    np.testing.assert_allclose(predicted.data, subjects[3].data, atol=1e-8)


def test_scaling_recovers_scaled_copies_exactly():
    subjects = _rotated_subjects(scales=[1.0, 2.0, 0.5, 3.0])
    plain = ProcrustesAligner(n_components=None).fit(subjects[:3]).add_subject(subjects[3])
    scaled = ProcrustesAligner(n_components=None, scaling=True).fit(subjects[:3])
    scaled.add_subject(subjects[3])
    errors = []
    for aligner in (plain, scaled):
        predicted = aligner.inverse_transform(aligner.transform(subjects[0]), "sub-3")
        errors.append(np.abs(predicted.data - subjects[3].data).max())
    # with scaling, rotated and rescaled copies map exactly (machine precision); without it
    # the factor 3 between sub-0 and sub-3 stays in the prediction
    assert errors[1] < 1e-8 < 1.0 < errors[0]


def test_held_out_subject_is_predicted_from_others_with_noise():
    subjects = _rotated_subjects(noise=0.3, n_cond=80)
    aligner = ProcrustesAligner(n_components=12).fit(subjects[:3])
    aligner.add_subject(subjects[3])
    shared = np.mean([aligner.transform(s).data for s in subjects[:3]], axis=0)
    predicted = aligner.inverse_transform(ConditionData(shared, subjects[0].stimulus_ids), "sub-3")
    r = np.corrcoef(predicted.data.ravel(), subjects[3].data.ravel())[0, 1]
    # noise sd 0.3 against unit-variance signal, averaged over 3 subjects: r ~ 0.98 expected;
    # 0.9 leaves room for the template's own noise
    assert r > 0.9


def test_too_few_shared_stimuli_is_explained():
    a, b = _rotated_subjects(n_subjects=2)
    b = ConditionData(b.data[:, :2] * 0 + 1, ["x", "y"], subject="sub-1")
    with pytest.raises(ShapeError, match="share 0.*via_encoder"):
        ProcrustesAligner().fit([a, b])
