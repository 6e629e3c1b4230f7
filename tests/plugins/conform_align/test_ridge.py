"""The ridge aligner: agreement with a scikit-learn reference, its template, its factorisations."""

from __future__ import annotations

import numpy as np
import pytest
from conform_align import RidgeAligner
from conform_align import ridge as ridge_module
from conform_align._algebra import as_float64, centre, initial_template
from conform_align.ridge import DEFAULT_ALPHAS
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from conform_core.linalg import LeaveOneOutRidge
from conform_core.testing.fakes import make_subject_conditions


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def subjects():
    return make_subject_conditions(n_subjects=4, n_units=12, n_conditions=40, rank=3,
                                   unit_counts=[12, 9, 15, 12])


def sklearn_reference(subjects, k: int, n_iter: int):
    """The aligner's algorithm written with scikit-learn's RidgeCV (GCV) for every ridge."""
    grid = np.asarray(DEFAULT_ALPHAS)

    def ridge(x, y, per_target):
        scale = float(np.sum(x**2)) / min(x.shape)
        model = RidgeCV(alphas=grid * scale, fit_intercept=False, alpha_per_target=per_target)
        model.fit(x, y)
        return model.coef_.T, np.atleast_1d(model.alpha_) / scale

    blocks = [centre(as_float64(s))[0] for s in subjects]
    template = initial_template(blocks, k)
    for _ in range(n_iter):
        template = np.mean([x @ ridge(x, template, False)[0] for x in blocks], axis=0)
    encoders = [ridge(x, template, False) for x in blocks]
    template = np.mean([x @ e[0] for x, e in zip(blocks, encoders)], axis=0)
    decoders = [ridge(template, x, True) for x in blocks]
    return encoders, decoders, template


def test_maps_match_a_scikit_learn_ridgecv_reference(subjects):
    aligner = RidgeAligner(n_components=3, n_iter=2).fit(subjects)
    encoders, decoders, template = sklearn_reference(subjects, 3, 2)
    # Both sides solve the same well-conditioned GCV problems through different factorisations
    # (SVD here, scikit-learn's SVD or eigendecomposition): maps agree to ~1e-12 (measured);
    # 1e-8 leaves room for the template iterations without hiding an algebraic slip (> 1e-3).
    for s, (enc, alpha), (dec, dec_alphas) in zip(subjects, encoders, decoders):
        np.testing.assert_allclose(aligner.maps_[s.subject], enc, rtol=1e-8,
                                   atol=1e-8 * np.abs(enc).max())
        np.testing.assert_allclose(aligner.inverse_maps_[s.subject], dec, rtol=1e-8,
                                   atol=1e-8 * np.abs(dec).max())
        assert aligner.alpha_[s.subject] == pytest.approx(alpha[0], rel=1e-12)
        np.testing.assert_allclose(aligner.decoder_alphas_[s.subject], dec_alphas, rtol=1e-12)
    np.testing.assert_allclose(aligner.template_.data, template.T, rtol=1e-8,
                               atol=1e-8 * np.abs(template).max())


def test_template_is_the_mean_of_the_training_subjects_in_the_shared_space(subjects):
    """The maps back are fitted on what the maps in produce, so a prediction (the mean of the
    others' mapped responses) has the scale the maps back learnt from."""
    aligner = RidgeAligner(n_components=3).fit(subjects)
    mean = np.mean([aligner.transform(s).data for s in subjects], axis=0)
    # the same products in another order: float64 rounding, ~1e-15 relative
    np.testing.assert_allclose(mean, aligner.template_.data, rtol=0,
                               atol=1e-12 * np.abs(mean).max())


def test_each_block_is_factorised_once_per_fit(subjects, monkeypatch):
    made: list[tuple[int, int]] = []

    class Counting(LeaveOneOutRidge):
        def __init__(self, X, alphas, **kwargs):
            made.append(np.shape(X))
            super().__init__(X, alphas, **kwargs)

    monkeypatch.setattr(ridge_module, "LeaveOneOutRidge", Counting)
    aligner = RidgeAligner(n_components=3, n_iter=3).fit(subjects)
    # one SVD per subject, reused by its 3 template iterations and its final map, and one of
    # the template, shared by every subject's map back
    assert sorted(made) == sorted([(40, s.n_units) for s in subjects] + [(40, 3)])
    made.clear()
    new = make_subject_conditions(n_subjects=5, n_units=12, n_conditions=40, rank=3)[4]
    aligner.add_subject(new)
    assert sorted(made) == sorted([(40, 3), (40, new.n_units)])


def test_an_all_zero_subject_gets_zero_maps_and_no_alpha(subjects):
    zero = subjects[0].with_data(np.zeros_like(subjects[0].data))
    zero = type(zero)(zero.data, zero.stimulus_ids, "sub-zero", zero.units)
    aligner = RidgeAligner(n_components=3).fit(subjects).add_subject(zero)
    assert not np.any(aligner.maps_["sub-zero"]) and not np.any(aligner.inverse_maps_["sub-zero"])
    assert np.isnan(aligner.alpha_["sub-zero"])
