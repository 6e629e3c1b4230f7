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
from conform_psn import _gsn, _linalg, _shrinkage, psn
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


def test_float32_data_at_scale_eigendecomposes_in_float32(data, monkeypatch):
    """From FLOAT32_EIGH_UNITS units (lowered here to 600), float32 data takes ssyevd.

    The covariances then match the float64 path's to the accuracy of a float32
    eigendecomposition, about units x 2^-24 relative (backward error of the Householder
    tridiagonalisation): measured 2.5e-5 (Frobenius) here, bound 10 x 600 x 2^-24 = 3.6e-4.
    That is far below the sampling error of covariances from 150 conditions (~8 %). The
    official reference cases (at most 500 units) stay on the float64 path. K is the same.
    """
    x32 = data.astype(np.float32)
    with threadpool_limits(1):
        wide = psn(x32, "standard", skip_split_half=True)
        monkeypatch.setattr(_gsn, "FLOAT32_EIGH_UNITS", N_UNITS)
        dtypes = []
        real = scipy.linalg.eigh
        monkeypatch.setattr(scipy.linalg, "eigh",
                            lambda a, *args, **kw: dtypes.append(a.dtype) or real(a, *args, **kw))
        low = psn(x32, "standard", skip_split_half=True)
    assert dtypes and all(d == np.float32 for d in dtypes)
    for key in ("cSb", "cNb"):
        ref = np.asarray(wide["gsn_result"][key], dtype=np.float64)
        got = np.asarray(low["gsn_result"][key], dtype=np.float64)
        assert np.linalg.norm(got - ref) <= 10 * N_UNITS * 2.0**-24 * np.linalg.norm(ref), key
    assert low["best_threshold"] == wide["best_threshold"]
    # the kept subspace turns by about ||dC|| / (eigengap at K): measured 2.6e-4 of the
    # denoised data's norm here; bound 8x that
    diff = np.linalg.norm(low["denoiseddata"] - wide["denoiseddata"])
    assert diff <= 2e-3 * np.linalg.norm(wide["denoiseddata"]), diff


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_lapack_cholesky_check_agrees_with_numpys(dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((60, 80))
    for m in (a @ a.T, a @ a.T - 200 * np.eye(60), -np.eye(60)):
        m = m.astype(dtype)
        before = m.copy()
        assert _linalg._potrf_succeeds(m) == _linalg.is_positive_definite(m)
        assert np.array_equal(m, before)  # factorised on a copy


@pytest.mark.parametrize("n_negative", [0, 3, 30])
def test_float32_clip_matches_float64(n_negative):
    """nearest_psd in float32 (full or negative-side eigendecomposition) against float64."""
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((80, 80)))
    values = rng.uniform(0.5, 2.0, 80)
    values[:n_negative] = -rng.uniform(0.1, 1.0, n_negative)
    m = (q * values) @ q.T
    m = (m + m.T) / 2
    ref = _linalg.nearest_psd(m.copy())
    for want_eig in (False, True):
        got = _linalg.nearest_psd(m.copy(), overwrite=True, want_eig=want_eig,
                                  eigh_dtype=np.float32)
        got = got[0] if want_eig else got
        # float32 eigenpairs of an 80 x 80 matrix: ~80 x 2^-24 relative; bound 10x
        assert np.linalg.norm(got - ref) <= 10 * 80 * 2.0**-24 * np.linalg.norm(ref)
        assert np.linalg.eigvalsh(got).min() >= -1e-5
