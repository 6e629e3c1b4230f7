"""GSN's shrinkage choice on nearly singular data matches the official decision rule.

When a few units are near-copies of others (independent noise of 1e-8 to 1e-6 of their
scale added to a copy), the unshrunk covariances are within rounding of singular. The
official GSN (cvnlab/GSN v1.2.0, numpy backend) keeps a shrinkage level when
``numpy.linalg.cholesky`` of the shrunken training matrix succeeds, and such a level
(1.0) then wins by its log-determinant; whether it succeeds at 1e-8 depends on the
rounding of that exact matrix. ``_reference_levels`` below re-states that rule in
plain numpy, so these tests need no official package.
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import _gsn, perform_gsn, psn
from conform_psn._linalg import deterministic_randperm
from scipy.linalg import solve_triangular
from threadpoolctl import threadpool_limits

LEVELS = np.linspace(0, 1, 51)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small matrices: BLAS threads only contend (tens of times slower on a loaded machine)."""
    with threadpool_limits(1):
        yield


def _near_copy_data(seed: int, eps: float, n_units: int = 40, n_cond: int = 200,
                    n_trials: int = 3, n_copies: int = 4) -> np.ndarray:
    """Rank-6 signal plus unit noise; the last ``n_copies`` units copy earlier ones.

    Each copy is its source plus independent noise of ``eps`` times the source's scale.
    """
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((n_units, 6))
    signal = loadings @ (rng.standard_normal((6, n_cond)) * np.linspace(2, 0.5, 6)[:, None])
    data = signal[:, :, None] + rng.standard_normal((n_units, n_cond, n_trials))
    sources = rng.choice(n_units - n_copies, n_copies, replace=False)
    for k, src in enumerate(sources):
        noise = rng.standard_normal((n_cond, n_trials))
        data[n_units - n_copies + k] = data[src] + eps * data[src].std() * noise
    return data


# ----------------------------------------------------------------- the official rule

def _first_min_of_cholesky_nll(cov: np.ndarray, rows: np.ndarray) -> float:
    """Mirrors gsn/batched_nll.py ``_numpy_loop`` and the ``nanargmin`` of its callers.

    A level is scored only when ``np.linalg.cholesky`` of ``cov * level`` (diagonal
    restored) succeeds; the NLL is the mean over held-out rows; NaN levels are skipped.
    """
    nll = np.full(LEVELS.size, np.nan)
    for i, level in enumerate(LEVELS):  # level is np.float64: float32 cov promotes
        shrunk = cov * level
        np.fill_diagonal(shrunk, np.diag(cov))
        try:
            chol = np.linalg.cholesky(shrunk)
        except np.linalg.LinAlgError:
            continue
        y = solve_triangular(chol, rows.T, lower=True)
        nll[i] = np.mean(0.5 * (y**2).sum(axis=0) + np.log(np.diag(chol)).sum()
                         + 0.5 * cov.shape[0] * np.log(2 * np.pi))
    return float(LEVELS[0] if np.all(np.isnan(nll)) else LEVELS[np.nanargmin(nll)])


def _reference_levels(data: np.ndarray) -> tuple[float, float]:
    """Official (shrinklevelN, shrinklevelD) for complete (no-NaN) data.

    Mirrors gsn/fast_perform_gsn.py ``_run_numpy`` -> ``_shrunken_cov_3d_numpy`` (noise:
    trials x units x conditions, per-condition centring, einsum, / (T-1) / n_train) and
    ``_shrunken_cov_2d_numpy`` (data: conditions x units trial means, centred on the
    training mean, X.T @ X / (n_train - 1)); split as in gsn/utilities.py
    ``deterministic_randperm``, leaving out round(C/5) conditions. Same operations in the
    same dtype, so the matrices are bit-identical to upstream's.
    """
    n_units, n_cond, n_trials = data.shape
    perm = deterministic_randperm(n_cond)
    held, fit = perm[:round(n_cond / 5)], perm[round(n_cond / 5):]
    by_trial = np.transpose(data, (2, 0, 1))
    tr = by_trial[:, :, fit] - by_trial[:, :, fit].mean(axis=0, keepdims=True)
    cov_n = np.einsum("ovc,owc->vw", tr, tr) / (n_trials - 1) / fit.size
    va = by_trial[:, :, held] - by_trial[:, :, held].mean(axis=0, keepdims=True)
    level_n = _first_min_of_cholesky_nll(cov_n, va.transpose(2, 0, 1).reshape(-1, n_units))
    means = np.mean(data, axis=2).T
    mean_fit = means[fit].mean(axis=0)
    centred = means[fit] - mean_fit
    cov_d = (centred.T @ centred) / (fit.size - 1)
    level_d = _first_min_of_cholesky_nll(cov_d, means[held] - mean_fit)
    return level_n, level_d


def _previous_levels(data: np.ndarray) -> tuple[float, float]:
    """The rule before issue 13: a level was rejected when the smallest eigenvalue of
    ``a*R + (1-a)*I`` (R the training correlation) was <= 1e-13 of its largest."""
    chosen = []
    for cov, rows in _training_matrices(data):
        d = 1 / np.sqrt(np.diag(cov))
        lam, vec = np.linalg.eigh(cov * d[:, None] * d[None, :])
        energy = ((vec.T @ (rows * d).T) ** 2).sum(axis=1)
        spec = LEVELS[:, None] * lam[None, :] + 1 - LEVELS[:, None]
        ok = spec.min(axis=1) > 1e-13 * np.maximum(spec.max(axis=1), 1)
        nll = np.where(ok, 0.5 * (energy / np.where(ok[:, None], spec, 1)).sum(axis=1)
                       / rows.shape[0] + 0.5 * np.log(np.abs(spec)).sum(axis=1), np.nan)
        chosen.append(float(LEVELS[np.nanargmin(nll)]))
    return chosen[0], chosen[1]


def _training_matrices(data: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    n_units, n_cond, n_trials = data.shape
    perm = deterministic_randperm(n_cond)
    held, fit = perm[:round(n_cond / 5)], perm[round(n_cond / 5):]
    by_trial = np.transpose(data, (2, 0, 1))
    tr = by_trial[:, :, fit] - by_trial[:, :, fit].mean(axis=0, keepdims=True)
    va = by_trial[:, :, held] - by_trial[:, :, held].mean(axis=0, keepdims=True)
    means = data.mean(axis=2).T
    centred = means[fit] - means[fit].mean(axis=0)
    return [(np.einsum("ovc,owc->vw", tr, tr) / (n_trials - 1) / fit.size,
             va.transpose(2, 0, 1).reshape(-1, n_units)),
            (centred.T @ centred / (fit.size - 1), means[held] - means[fit].mean(axis=0))]


def _k_with_levels(data: np.ndarray, levels: tuple[float, float], monkeypatch) -> int:
    """PSN's K when GSN is made to use ``levels`` (noise first, then data)."""
    queue = list(levels)
    with monkeypatch.context() as m:
        m.setattr(_gsn, "_select", lambda *args, **kwargs: queue.pop(0))
        return int(psn(data, skip_split_half=True)["best_threshold"])


# ----------------------------------------------------------------------------- tests

@pytest.mark.parametrize("eps", [1e-8, 3e-8, 1e-7, 1e-6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_copies_choose_the_official_level_and_k(eps, seed, monkeypatch):
    data = _near_copy_data(seed, eps)
    expected = _reference_levels(data)
    out = perform_gsn(data)
    assert (out["shrinklevelN"], out["shrinklevelD"]) == expected
    k = int(psn(data, skip_split_half=True)["best_threshold"])
    assert k == _k_with_levels(data, expected, monkeypatch)


@pytest.mark.parametrize("eps", [1e-6, 1e-5, 1e-4])
@pytest.mark.parametrize("seed", [0, 1])
def test_float32_near_copies_choose_the_official_level(eps, seed):
    """Upstream forms float32 covariances and factorises them in float64 (NumPy 2 promotes
    ``float32_array * np.float64``); its float32 rounding decides near 1e-5."""
    data = _near_copy_data(seed, eps).astype(np.float32)
    out = perform_gsn(data)
    assert (out["shrinklevelN"], out["shrinklevelD"]) == _reference_levels(data)


@pytest.mark.parametrize(("n_units", "n_cond"), [(60, 60), (60, 40), (80, 40)])
def test_fewer_conditions_than_units_matches_the_official_rule(n_units, n_cond):
    """Rank-deficient data covariance (nullity 13, 29 and 49): level 1.0 is decided by
    the Cholesky, or (nullity >= 32) skipped as one that cannot succeed in practice."""
    for seed in range(3):
        data = _near_copy_data(seed, 1e-7, n_units=n_units, n_cond=n_cond)
        out = perform_gsn(data)
        assert (out["shrinklevelN"], out["shrinklevelD"]) == _reference_levels(data)


def test_previous_rule_rejected_the_official_level_and_moved_k(monkeypatch):
    """The eigenvalue tolerance used before picked 0.98 where upstream picks 1.0, and K
    moved by a third or more; the current rule agrees with upstream on the same data."""
    for seed in range(3):
        data = _near_copy_data(seed, 1e-7)
        official, previous = _reference_levels(data), _previous_levels(data)
        assert official == (1.0, 1.0) and previous == (0.98, 0.98)
        k_official = _k_with_levels(data, official, monkeypatch)
        k_previous = _k_with_levels(data, previous, monkeypatch)
        assert abs(k_previous - k_official) >= k_official / 3
        out = perform_gsn(data)
        assert (out["shrinklevelN"], out["shrinklevelD"]) == official


def test_well_conditioned_data_never_forms_the_official_matrices(rng, monkeypatch):
    """The einsum upstream uses is formed only for levels near singular (float64 data)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("official matrix formed for well-conditioned data")
    monkeypatch.setattr(_gsn, "_official_noise_even", forbidden)
    monkeypatch.setattr(_gsn, "_official_data", forbidden)
    data = rng.standard_normal((30, 120, 3)) + rng.standard_normal((30, 120, 1))
    perform_gsn(data)
    # fewer conditions than units by >= 32: level 1.0 of the data covariance is skipped
    perform_gsn(rng.standard_normal((80, 40, 4)))


@pytest.mark.parametrize("eps", [1e-3, 1e-2])
def test_float32_beyond_the_official_budget_settles_levels_as_float64(eps, monkeypatch):
    """Past the official einsum's budget (thousands of units; forced here), float32 data
    sends to a Cholesky only the levels float64 data would: the BLAS float32 matrix
    cannot reproduce upstream's rounding at the edge anyway, and each Cholesky costs
    units^3/3 (about 10 % of an 8,000-unit fit). At eps=1e-2 a settling threshold widened
    for float32 rounding scored level 1.0 by a Cholesky; float64 settles it."""
    monkeypatch.setattr(_gsn, "_OFFICIAL_BUDGET", 0)
    from conform_psn import _shrinkage
    scored: list[float] = []
    original = _shrinkage._nll_cholesky

    def spy(cov, rows, level):
        scored.append(level)
        return original(cov, rows, level)

    monkeypatch.setattr(_shrinkage, "_nll_cholesky", spy)
    data = _near_copy_data(0, eps)
    perform_gsn(data.astype(np.float32))
    scored32, scored[:] = list(scored), []
    perform_gsn(data)
    assert scored32 == scored
