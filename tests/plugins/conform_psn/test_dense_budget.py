"""The exact full-rank path keeps few units x units matrices and eigendecompositions.

At 600 units x 150 conditions x 3 trials the training covariances have rank 240 (noise)
and 119 (data), so the shrinkage fits use thin SVDs; GSN's biconvex pass eigendecomposes
once per clipped iterate and PSN reuses the last of those as its signal basis. Before
issue 16 the standard preset did 4-5 eigendecompositions and held about 14 units^2
float64 matrices at its peak.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.linalg
from conform_psn import _linalg, _shrinkage, psn
from threadpoolctl import threadpool_limits

N_UNITS, N_COND, N_TRIALS = 600, 150, 3


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((N_UNITS, 8)) @ rng.standard_normal((8, N_COND))
    return signal[:, :, None] + rng.standard_normal((N_UNITS, N_COND, N_TRIALS))


def _count_eigh(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]

    def counted(real):
        def eigh(*args, **kwargs):
            if np.shape(args[0])[0] == N_UNITS:
                calls[0] += 1
            return real(*args, **kwargs)
        return eigh

    monkeypatch.setattr(np.linalg, "eigh", counted(np.linalg.eigh))
    monkeypatch.setattr(scipy.linalg, "eigh", counted(scipy.linalg.eigh))
    return calls


@pytest.mark.parametrize("preset", ["standard", "conservative", "wiener"])
def test_one_eigendecomposition_per_clipped_iterate(data, monkeypatch, preset):
    calls = _count_eigh(monkeypatch)
    with threadpool_limits(1):
        out = psn(data, preset, skip_split_half=True)
    # one per biconvex pass (each clips cSb); none in the shrinkage fits (thin SVDs) and
    # none for the signal basis (reused). Before: 2 (shrinkage) + passes + 1 (basis).
    assert calls[0] == out["gsn_result"]["numiters"] + 1


def test_the_basis_is_the_rebuilds_eigenbasis(data):
    with threadpool_limits(1):
        out = psn(data, "standard", skip_split_half=True)
        again = psn(data, "standard", skip_split_half=True,
                    gsn_result={k: out["gsn_result"][k] for k in ("cSb", "cNb")})
    assert out["best_threshold"] == again["best_threshold"]
    # the same projector from eigh(cSb) (rounding: eigenvectors of a 600 x 600 matrix
    # with a spectral gap at K agree to ~1e-12; 1e-8 is the parity tolerance)
    np.testing.assert_allclose(out["denoiser"], again["denoiser"], atol=1e-8)


def test_thin_svd_gives_the_eigen_nll(data):
    rng = np.random.default_rng(1)
    cols = rng.standard_normal((N_UNITS, 200)) * rng.uniform(0.5, 2, (N_UNITS, 1))
    points = rng.standard_normal((N_UNITS, 40))
    levels = np.linspace(0, 1, 51)
    thin = _shrinkage._nll_eigen(None, points, 40, levels, cols)
    full = _shrinkage._nll_eigen(cols @ cols.T, points, 40, levels)
    ok = np.isfinite(full[0])
    assert np.array_equal(ok, np.isfinite(thin[0]))
    # both are exact in exact arithmetic; rounding of two factorisations, ~1e-12 relative
    np.testing.assert_allclose(thin[0][ok], full[0][ok], rtol=1e-9)


@pytest.mark.parametrize(("preset", "dense"), [("standard", 6), ("wiener", 6), ("compare", 8)])
def test_peak_dense_matrices(data, preset, dense):
    """tracemalloc peak minus the data terms, in units^2 float64 matrices.

    Measured 4.5-4.7 (standard, conservative, wiener) and 6.4 (compare) after two data
    copies and eight units x conditions arrays; 14 before issue 16. The bound leaves
    ~1.3 matrices of slack (allocation order can move a temporary into the peak).
    """
    with threadpool_limits(1):
        psn(data[:40], preset)  # first-use imports and caches
        tracemalloc.start()
        try:
            psn(data, preset)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    data_terms = 8 * (2 * N_UNITS * N_COND * N_TRIALS + 8 * N_UNITS * N_COND)
    assert (peak - data_terms) / (8 * N_UNITS**2) <= dense


def test_nearest_psd_reuses_its_eigenbasis():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((50, 30))
    m = a @ a.T - 5 * np.eye(50)
    rebuilt, (values, vectors) = _linalg.nearest_psd(m.copy(), overwrite=True, want_eig=True)
    np.testing.assert_allclose((vectors * values) @ vectors.T, rebuilt, atol=1e-9)
    assert np.all(values >= 0)
