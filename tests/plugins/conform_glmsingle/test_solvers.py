"""The vectorised building blocks against straightforward loop versions of the documented maths."""

from __future__ import annotations

import numpy as np
import pytest
from conform_glmsingle._crossval import (
    BadnessScorer,
    TrialPairs,
    robustrange,
    select_noise_regressors,
)
from conform_glmsingle._fracridge import RidgePath, alpha_grid
from conform_glmsingle._nuisance import polynomial_basis


def _fracridge_loop(x, y, fracs):
    """fracridge as documented (glmsingle.md 4.8), one target at a time, dense design."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    c = (u.T @ y) / s[:, None]
    lam = s**2
    grid = alpha_grid(lam.min(), lam.max())
    out = np.zeros((x.shape[1], len(fracs), y.shape[1]))
    for j in range(y.shape[1]):
        sc = (lam[None, :] / (lam[None, :] + grid[:, None])) ** 2
        newlen = np.sqrt(sc @ c[:, j] ** 2)
        newlen /= newlen[0]
        alpha = np.exp(np.interp(fracs, newlen[::-1], np.log1p(grid)[::-1])) - 1
        for f, a in enumerate(alpha):
            out[:, f, j] = vt.T @ (lam / (lam + a) * c[:, j])
    return out


def test_ridge_path_matches_dense_fracridge_on_block_design():
    """Per-run eigen-decomposition + vectorised interpolation == fracridge on the stacked design."""
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(40, 6)), rng.normal(size=(30, 5))]
    ys = [rng.normal(size=(40, 7)), rng.normal(size=(30, 7))]
    x = np.zeros((70, 11))
    x[:40, :6], x[40:, 6:] = blocks
    y = np.vstack(ys)
    fracs = np.array([1.0, 0.8, 0.5, 0.2, 0.05])
    expected = _fracridge_loop(x, y, fracs)
    path = RidgePath.build([b.T @ b for b in blocks], [yy.T @ b for b, yy in zip(blocks, ys)],
                           [np.ones(b.shape[1], bool) for b in blocks])
    alphas = path.alphas(fracs)
    for f in range(fracs.size):
        got = np.concatenate(path.betas(alphas[f]), axis=1).T
        np.testing.assert_allclose(got, expected[:, f], rtol=1e-8, atol=1e-10)


def test_fraction_one_is_ols():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 3))
    path = RidgePath.build([x.T @ x], [y.T @ x], [np.ones(8, bool)])
    alpha = path.alphas(np.array([1.0]))[0]
    np.testing.assert_array_equal(alpha, 0.0)
    np.testing.assert_allclose(
        path.betas(alpha)[0].T, np.linalg.lstsq(x, y, rcond=None)[0], rtol=1e-9
    )


def _calcbadness_loop(folds, validcolumns, stimix, results, sessionindicator):
    """calcbadness as documented (glmsingle.md 4.9), with explicit loops."""
    res = [np.asarray(r, np.float64).copy() for r in results]
    for s in np.unique(sessionindicator):
        cols = np.concatenate([validcolumns[r] for r in np.flatnonzero(sessionindicator == s)])
        mu = res[0][:, cols].mean(1, keepdims=True)
        sd = res[0][:, cols].std(1, ddof=1, keepdims=True)
        ref_cols = res[0][:, cols].copy()
        for k in range(len(res)):
            src = ref_cols if k == 0 else res[k][:, cols]
            res[k][:, cols] = np.where(sd == 0, 0, (src - mu) / np.where(sd == 0, 1, sd))
    bad = np.zeros((res[0].shape[0], len(res)))
    runs = np.arange(len(validcolumns))
    for fold in folds:
        train = np.setdiff1d(runs, fold)
        tcols = np.concatenate([validcolumns[r] for r in fold])
        tids = np.concatenate([stimix[r] for r in fold])
        rcols = np.concatenate([validcolumns[r] for r in train])
        rids = np.concatenate([stimix[r] for r in train])
        for k in range(len(res)):
            for t, c in zip(tcols, tids):
                have = rcols[rids == c]
                bad[:, k] += ((res[k][:, have] - res[0][:, [t]]) ** 2).sum(1)
    return bad


@pytest.mark.parametrize("sessions", [[1, 1, 1, 1], [1, 1, 2, 2]])
@pytest.mark.parametrize("folds", [[[0], [1], [2], [3]], [[0, 2], [1, 3]]])
def test_badness_scorer_matches_loops(sessions, folds):
    rng = np.random.default_rng(2)
    n_per_run, n_cond = 9, 6
    stim = [rng.integers(0, n_cond, n_per_run) for _ in range(4)]
    valid = [np.arange(r * n_per_run, (r + 1) * n_per_run) for r in range(4)]
    results = [rng.normal(size=(5, 36)) for _ in range(3)]
    sess = np.array(sessions)
    expected = _calcbadness_loop([np.array(f) for f in folds], valid, stim, results, sess)
    design = TrialPairs.build([np.array(f) for f in folds], np.repeat(np.arange(4), n_per_run),
                              np.concatenate(stim), sess)
    scorer = BadnessScorer(design, results[0])
    got = np.stack([scorer.score(r) for r in results], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("trend", "pcstop", "expected"),
    [
        ([0, 5, 9, 10, 10.2, 10.1], 1.05, 3),  # first K within 1/1.05 of the best gain
        ([0, 5, 9, 10, 10.2, 10.1], 1.0, 4),  # argmax
        ([0, -1, -2], 1.05, 0),  # nothing improves on 0 PCs
    ],
)
def test_select_noise_regressors(trend, pcstop, expected):
    assert select_noise_regressors(np.array(trend, float), pcstop) == expected


def test_polynomial_basis_is_orthonormal():
    p = polynomial_basis(250, 3)
    np.testing.assert_allclose(p.T @ p, np.eye(4), atol=1e-12)


def test_robustrange_ignores_outliers():
    v = np.r_[np.random.default_rng(3).normal(size=1000), 1e6]
    lo, hi = robustrange(v)
    assert hi < 100 and lo > -100
