"""PSN (current API) parity with the official jacob-prince/PSN v0.2.0 outputs.

Tolerances (shared/docs/psn_gsn.md section 6): global K exact; denoisers and denoised
data 1e-8 relative to their scale (float64) or 1e-5 (float32 lean arrays); hybrid K_u,
when fed the official cSb/cNb, exact wherever the reference defines it (see the
comment above ``TIE_DELTA``), else >= 80 % identical with |dK| <= 5 (pitfall 22b:
cSb is rank-deficient and its null-space eigenvectors are arbitrary).

Quantities that depend on those arbitrary null-space vectors (per-dimension noise
beyond the numerical rank of cSb, the tail of the objective, per-unit noise summed
over all dimensions) are compared only on the well-defined leading dimensions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conform_psn import psn

from .conftest import RefCase, assert_close

CONFIGS = ["standard", "signal_prediction_global", "aggressive", "conservative",
           "difference_maxtradeoff_global", "pca_maxtradeoff_global",
           "noise_maxtradeoff_global", "random_maxtradeoff_global",
           "signal_variance_eigenvalues", "signal_maxtradeoff_hybrid",
           "signal_prediction_hybrid", "signal_prediction_hybrid_groups", "alpha_0p5",
           "allowable_forced", "allowable_set", "signal_ordering_signalvariance",
           "custom_basis", "wiener", "compare"]


def _call(ref: RefCase, cfg: str, **extra: Any) -> dict[str, Any]:
    info = ref.meta["psn_configs"][cfg]
    opts = dict(info["options"])
    if opts.get("unit_groups") == "np.arange(nunits) % 5":
        opts["unit_groups"] = np.arange(ref.data.shape[0]) % 5
    if isinstance(opts.get("basis"), str) and opts["basis"].startswith("<matrix"):
        opts["basis"] = ref[f"psn__{cfg}__input_basis"]
    opts.update(extra)
    return psn(ref.data, info["mode"], **opts) if info["mode"] else psn(ref.data, **opts)


def _signal_rank(ref: RefCase) -> int:
    values = ref["gsn__eigvals_signal"]
    return int(np.sum(values > 1e-8 * values.max()))


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], dict[str, Any]]:
    return {}


@pytest.mark.parametrize("cfg", CONFIGS)
def test_psn_matches_official(ref, cfg, results):
    if cfg not in ref.meta.get("psn_configs", {}):
        pytest.skip(f"{ref.name} has no {cfg} reference")
    out = _call(ref, cfg)
    p = f"psn__{cfg}__"
    hybrid = "hybrid" in cfg
    bt = ref[p + "best_threshold"]
    if cfg == "wiener":
        assert out["best_threshold"] == pytest.approx(float(bt), rel=1e-8)
    elif hybrid:
        same = np.mean(out["best_threshold"] == bt)
        assert same >= 0.8 and np.abs(out["best_threshold"] - bt).max() <= 5, (same, cfg)
    else:
        assert out["best_threshold"] == int(bt), "global K must be exact"
    if p + "signalsubspace" in ref:
        ss = ref[p + "signalsubspace"]
        assert_close(out["denoiser"], ss @ ss.T, ref.rtol(p + "signalsubspace"), "denoiser")
        if ss.shape[1]:
            assert_close(out["signalsubspace"] @ out["signalsubspace"].T, ss @ ss.T,
                         ref.rtol(p + "signalsubspace"), "signalsubspace projector")
    if p + "denoiser" in ref and not hybrid:
        assert_close(out["denoiser"], ref[p + "denoiser"], ref.rtol(p + "denoiser"), "denoiser")
    if p + "denoiseddata" in ref and not hybrid:
        assert_close(out["denoiseddata"], ref[p + "denoiseddata"], ref.rtol(p + "denoiseddata"),
                     "denoiseddata")
    assert_close(out["unit_means"], ref["psn__unit_means"], ref.rtol("psn__unit_means"),
                 "unit_means")
    signal_like = (out.get("threshold_selection", {}).get("basis", "signal") == "signal"
                   and not isinstance(out["opt_used"]["basis"], np.ndarray)
                   and out["opt_used"]["basis"] in ("signal", "compare")) or cfg == "wiener"
    r = _signal_rank(ref) if signal_like else len(out["signalvar"])
    assert_close(out["signalvar"][:r], ref[p + "signalvar"][:r], 1e-8, "signalvar")
    assert_close(out["noisevar"][:r], ref[p + "noisevar"][:r], 1e-8, "noisevar")
    if out["objective"] is not None and not hybrid:
        assert_close(out["objective"][:r + 1], ref[p + "objective"][:r + 1], 1e-8, "objective")
    if p + "basis_eigenvalues" in ref and out["basis_eigenvalues"] is not None:
        assert_close(out["basis_eigenvalues"], ref[p + "basis_eigenvalues"], 1e-8, "eigenvalues")
    cols = [0] if signal_like else [0, 1]
    assert_close(out["svnv_before"][:, cols], ref[p + "svnv_before"][:, cols], 1e-8, "svnv_before")
    if not hybrid:
        assert_close(out["svnv_after"], ref[p + "svnv_after"], 1e-8, "svnv_after")
    chosen = ref.meta["psn_configs"][cfg]["recovery_tradeoff_chosen"]
    mine = out["recovery_tradeoff"]["chosen"]
    if not hybrid:
        assert mine["sv_frac"] == pytest.approx(chosen["sv_frac"], abs=1e-8)
        if chosen.get("split_half_r") is not None:
            assert mine["split_half_r"] == pytest.approx(chosen["split_half_r"], abs=1e-8)


HYBRID_CONFIGS = ["signal_maxtradeoff_hybrid", "signal_prediction_hybrid",
                  "signal_prediction_hybrid_groups"]

# Hybrid (per-unit) thresholds: compare what the reference defines
# -----------------------------------------------------------------
# cSb is rank-deficient: its null space is one exactly degenerate eigenvalue (the GSN
# ridge, repeated 11-33 times in the shared cases), so the basis vectors spanning it are
# whatever the installed LAPACK kernel returns; only their span is defined. Up to the
# numerical rank r, each unit's curves R_u(k) = sum_{d<=k} W[u,d](s_d - n_d/t) and
# S_u(k) = sum_{d<=k} W[u,d] s_d are well defined, but not the endpoint R_u(D): the null
# dimensions carry noise sum_d B[u,d]^2 b_d'cNb b_d, which depends on the arbitrary null
# basis. The prediction pick (argmax R_u) never looks at it; the max-tradeoff pick does,
# since its chord ends at (S_u(D), R_u(D)). Measured on the shared cases, fed the official
# cSb/cNb: OpenBLAS's Haswell kernel instead of its AVX-512 one (same numpy 2.4.6; a CPU
# without AVX-512 gets it) moves that endpoint by 4-8 % and flips 19/120, 3/80 and 2/30
# max-tradeoff K_u (medium_corrnoise, uneven_nan, nosignal) by 1-2, exactly the failures
# seen on such machines; a 1e-13 relative perturbation of cSb/cNb moves it by up to 17 %
# and flips 17-30/120 K_u. The flipped units are not near-ties of one objective (their
# margins reach 3e-3): the objective itself moves, in the official code as in ours.
#
# So every unit is checked, each on what is defined:
# 1. our K_u is the rule's pick (psn_gsn.md 3.5, recomputed here from the spec) on our
#    own per-unit curves: a wrong selection (e.g. off by one) fails here;
# 2. the official K_u is the rule's pick on our curves up to r completed with the
#    official endpoint, read from the reference's svnv_before (per unit: signal and
#    noise/t summed over all dims): a wrong basis, weighting, ordering or t fails here;
# 3. K_u is equal wherever both endpoints allow the same pick (every unit on an AVX-512
#    machine; all but the 19/3/2 units above with the Haswell kernel);
# 4. the official denoiser equals the one built from our basis with the official K_u,
#    and ours equals it on the columns whose K_u agree.
#
# Ties. A pick ties when its objective is within TIE_TOL x (the unit's largest
# |objective|) of the maximum. With the endpoint held fixed, a 1e-13 relative
# perturbation of cSb/cNb moves that normalised objective by at most 2.7e-11 (measured:
# 70 perturbations; at most 8e-12 outside small_lowrank) and the kernel change by at most
# 1.1e-13; neither changes a pick. TIE_TOL = 1000 x delta, delta being the relative error
# the stored inputs carry (1e-13 for float64: the perturbation the issue names, far above
# LAPACK/BLAS rounding; 2**-24 for float32). For float64 that is 1e-10: 3.7x the worst
# 1e-13 sensitivity and ~1000x what different kernels produce, yet below the smallest
# margin between best and runner-up max-tradeoff K_u in the shared cases (1.7e-9), so no
# max-tradeoff unit is excused and an off-by-one fails. Prediction curves have genuine
# flat steps (a unit with almost no weight on a dimension): 1/50 and 1/80 units tie
# (margins 2.6e-12, 6.3e-11). More than MAX_TIED_FRACTION (5 %) of units tied would mean
# the tolerance hides disagreements, so that fails. Float32 inputs cannot pin K_u down
# (20-50 % of units have margins below 6e-5), so that budget applies to float64 only.
TIE_DELTA = {"float64": 1e-13, "float32": 2.0**-24}
MAX_TIED_FRACTION = 0.05


def _official_cache(ref: RefCase) -> dict[str, np.ndarray]:
    return {"cSb": ref["gsn__cSb"].astype(np.float64), "cNb": ref["gsn__cNb"].astype(np.float64)}


def _tie_rules(ref: RefCase, cfg: str) -> tuple[float, float]:
    """TIE_TOL and the largest fraction of tied units allowed, by the inputs' precision."""
    keys = ("gsn__cSb", "gsn__cNb", f"psn__{cfg}__svnv_before")
    if any(k in ref.float32_keys or ref[k].dtype == np.float32 for k in keys):
        return 1000 * TIE_DELTA["float32"], 1.0
    return 1000 * TIE_DELTA["float64"], MAX_TIED_FRACTION


def _trial_divisor(data: np.ndarray) -> float:
    """PSN's t: trials per condition; with missing trials sum(counts > 1) / n_conditions."""
    valid = np.isfinite(data).all(axis=0)
    if valid.all():
        return float(data.shape[2])
    counts = valid.sum(axis=1)
    return max(float(counts[counts > 1].sum() / counts.size), 1.0)


def _group_mean(rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row replaced by the mean of its unit group's rows."""
    _, inverse = np.unique(groups, return_inverse=True)
    sums = np.zeros((inverse.max() + 1, rows.shape[1]))
    np.add.at(sums, inverse, rows)
    return (sums / np.bincount(inverse)[:, None])[inverse]


def _unit_curves(out: dict[str, Any], t: float, endpoint: np.ndarray | None = None,
                 rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Recovery and signal curves per unit (n_units, D + 1), averaged within unit groups.

    With ``endpoint`` (svnv_before: per-unit signal and noise/t over all dims), only
    k <= ``rank`` keep our values, k = D takes the endpoint and the rest are NaN.
    """
    s = np.asarray(out["unit_signal_vars"], dtype=np.float64)
    n = np.asarray(out["unit_noise_vars"], dtype=np.float64)
    zero = np.zeros((s.shape[0], 1))
    rec = np.hstack([zero, np.cumsum(s - n / t, axis=1)])
    sig = np.hstack([zero, np.cumsum(s, axis=1)])
    if endpoint is not None:
        rec[:, rank + 1:] = np.nan
        sig[:, rank + 1:] = np.nan
        sig[:, -1] = endpoint[:, 0]
        rec[:, -1] = endpoint[:, 0] - endpoint[:, 1]
    groups = out["opt_used"]["unit_groups"]
    return _group_mean(rec, groups), _group_mean(sig, groups)


def _max_tradeoff_distance(rec: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """Distance of each defined limb point to the peak-to-end chord (psn_gsn.md 3.5).

    NaN off the limb; the degenerate fall-backs give the peak alone (objective 0).
    """
    n_dims = rec.size - 1
    obj = np.full(rec.size, np.nan)
    k_peak = int(np.nanargmax(rec))
    drop = rec[k_peak] - rec[-1]
    if sig[-1] <= 0 or n_dims - k_peak < 2 or drop <= 1e-12:
        obj[k_peak] = 0.0
        return obj
    limb = np.arange(k_peak, n_dims + 1)
    limb = limb[np.isfinite(rec[limb])]
    x = sig[limb] / sig[-1]
    y = (rec[limb] - rec[-1]) / drop
    dx, dy = x[-1] - x[0], y[-1] - y[0]
    length = np.hypot(dx, dy)
    if length <= 1e-12:
        obj[k_peak] = 0.0
        return obj
    obj[limb] = np.abs(dy * x - dx * y + x[-1] * y[0] - y[-1] * x[0]) / length
    return obj


def _objective(curves: tuple[np.ndarray, np.ndarray], criterion: str) -> np.ndarray:
    """Per-unit objective over K = 0..D whose first maximiser the criterion picks."""
    rec, sig = curves
    if criterion == "prediction":
        return rec
    assert criterion == "max-tradeoff", f"no per-unit objective for {criterion!r}"
    return np.array([_max_tradeoff_distance(r, s) for r, s in zip(rec, sig)])


def _near_max(obj: np.ndarray, tol: float) -> np.ndarray:
    """Where each row is within tol x its largest |value| of its maximum (NaN: never)."""
    scale = np.maximum(np.nanmax(np.abs(obj), axis=1, keepdims=True), 1e-300)
    with np.errstate(invalid="ignore"):
        return obj >= np.nanmax(obj, axis=1, keepdims=True) - tol * scale


def _check_picks(obj: np.ndarray, k: np.ndarray, tol: float, what: str) -> np.ndarray:
    """Assert each k[u] maximises obj[u] to within tol; return the units with ties."""
    near = _near_max(obj, tol)
    wrong = np.flatnonzero(~near[np.arange(k.size), k])
    assert wrong.size == 0, (
        f"{what}: unit(s) {wrong.tolist()} have K={k[wrong].tolist()} but the objective is "
        f"maximal at K={np.nanargmax(obj[wrong], axis=1).tolist()} (tolerance {tol:g})")
    return near.sum(axis=1) > 1


def _hybrid_denoiser(basis: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Column u = B[:, :K_u] B[u, :K_u]^T (psn_gsn.md 3.6)."""
    return basis @ (basis * (np.arange(basis.shape[1]) < k[:, None])).T


@pytest.mark.parametrize("cfg", HYBRID_CONFIGS)
def test_hybrid_exact_given_official_covariances(ref, cfg):
    """Fed the official cSb/cNb, each K_u and denoiser column matches where it is defined.

    What "defined" means, and why, is explained in the comment above ``TIE_DELTA``.
    """
    if cfg not in ref.meta.get("psn_configs", {}):
        pytest.skip(f"{ref.name} has no {cfg} reference")
    out = _call(ref, cfg, gsn_result=_official_cache(ref))
    p = f"psn__{cfg}__"
    k_ours = np.asarray(out["best_threshold"], dtype=int)
    k_ref = ref[p + "best_threshold"].astype(int)
    t, criterion = _trial_divisor(ref.data), out["opt_used"]["criterion"]
    tol, max_tied = _tie_rules(ref, cfg)
    own = _objective(_unit_curves(out, t), criterion)
    official = _objective(_unit_curves(out, t, ref[p + "svnv_before"], _signal_rank(ref)),
                          criterion)
    tied = _check_picks(own, k_ours, tol, "our K_u vs the rule on our own curves")
    tied |= _check_picks(official, k_ref, tol,
                         "official K_u vs the rule on our curves with the official endpoint")
    assert tied.sum() <= max_tied * k_ours.size, (
        f"{tied.sum()} of {k_ours.size} units tie within {tol:g}: the tolerance hides too much")
    near_own, near_official = _near_max(own, tol), _near_max(official, tol)
    agree = (near_own & near_official).any(axis=1)  # both endpoints allow a common pick
    exact = agree & ~tied
    np.testing.assert_array_equal(k_ours[exact], k_ref[exact])
    for u in np.flatnonzero(agree & tied):  # a tie: each pick is as good as the other
        assert near_official[u, k_ours[u]] and near_own[u, k_ref[u]], (u, k_ours[u], k_ref[u])

    ref_denoiser = ref[p + "denoiser"]
    rtol = ref.rtol(p + "denoiser")
    basis = out["fullbasis"]
    assert_close(_hybrid_denoiser(basis, k_ref), ref_denoiser, rtol, "denoiser at official K_u")
    assert_close(out["denoiser"], _hybrid_denoiser(basis, k_ours), 1e-12, "denoiser assembly")
    same = k_ours == k_ref
    assert_close(out["denoiser"][:, same], ref_denoiser[:, same], rtol, "denoiser, same K_u")
    if p + "denoiseddata" in ref:
        rtol = ref.rtol(p + "denoiseddata")
        assert_close(out["denoiseddata"][same], ref[p + "denoiseddata"][same], rtol,
                     "denoiseddata, same K_u")
        means = out["unit_means"][:, None]
        centred = np.nanmean(ref.data, axis=2) - means
        assert_close(_hybrid_denoiser(basis, k_ref).T @ centred + means,
                     ref[p + "denoiseddata"], rtol, "denoiseddata at official K_u")


def _perturbed(matrix: np.ndarray, rel: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(matrix.shape)
    return matrix * (1 + rel * (noise + noise.T) / 2)


@pytest.mark.parametrize("cfg", HYBRID_CONFIGS)
def test_hybrid_thresholds_move_only_through_the_null_space_endpoint(ref, cfg):
    """A 1e-13 change of cSb/cNb flips K_u only by moving the ill-defined endpoint R_u(D).

    This is why the parity test above compares the official K_u on our curves completed
    with the official endpoint instead of bit for bit: with the endpoint held fixed the
    objective moves by less than TIE_TOL and keeps its picks, while every unit whose K_u
    flips has an endpoint that moved by at least 1e-6 relative (10^7 x the perturbation).
    """
    if cfg not in ref.meta.get("psn_configs", {}):
        pytest.skip(f"{ref.name} has no {cfg} reference")
    cache = _official_cache(ref)
    base = _call(ref, cfg, gsn_result=cache, skip_split_half=True)
    t, rank = _trial_divisor(ref.data), _signal_rank(ref)
    tol, max_tied = _tie_rules(ref, cfg)
    criterion = base["opt_used"]["criterion"]
    k_base = np.asarray(base["best_threshold"], dtype=int)
    fixed = _objective(_unit_curves(base, t, base["svnv_before"], rank), criterion)
    rng = np.random.default_rng(0)
    for _ in range(3):
        perturbed = {key: _perturbed(m, 1e-13, rng) for key, m in cache.items()}
        out = _call(ref, cfg, gsn_result=perturbed, skip_split_half=True)
        k = np.asarray(out["best_threshold"], dtype=int)
        moved = _objective(_unit_curves(out, t, base["svnv_before"], rank), criterion)
        scale = np.maximum(np.nanmax(np.abs(fixed), axis=1, keepdims=True), 1e-300)
        change = float(np.nanmax(np.abs(moved - fixed) / scale))
        assert change <= tol, f"1e-13 moved the fixed-endpoint objective by {change:.1e}"
        assert np.array_equal(np.isnan(moved), np.isnan(fixed))
        tied = _check_picks(moved, k_base, tol, "unperturbed K_u, perturbed curves, same endpoint")
        tied |= _check_picks(_objective(_unit_curves(out, t), criterion), k, tol,
                             "perturbed K_u vs the rule on the perturbed curves")
        assert tied.sum() <= max_tied * k.size
        end_base, end = base["svnv_before"][:, 1], out["svnv_before"][:, 1]
        endpoint_moved = np.abs(end - end_base) > 1e-6 * np.abs(end_base)
        unexplained = (k != k_base) & ~endpoint_moved & ~tied
        assert not unexplained.any(), (
            f"units {np.flatnonzero(unexplained).tolist()} changed K_u without a tie or a "
            "moved endpoint")


def test_compare_picks_the_official_basis(ref):
    if "compare" not in ref.meta.get("psn_configs", {}):
        pytest.skip(f"{ref.name} has no compare reference")
    out = _call(ref, "compare")
    info = ref.meta["psn_configs"]["compare"]
    assert out["threshold_selection"]["basis"] == info["threshold_selection"]["basis"]
    for basis, cand in info["diagnostics_candidates"].items():
        mine = out["diagnostics"]["candidates"][basis]
        assert mine["best_threshold"] == cand["best_threshold"]
        assert mine["split_half_r"] == pytest.approx(cand["split_half_r"], abs=1e-8)


def test_alpha_info_matches_official(ref):
    if "alpha_0p5" not in ref.meta.get("psn_configs", {}):
        pytest.skip(f"{ref.name} has no alpha reference")
    out = _call(ref, "alpha_0p5")
    assert out["alpha_info"] == ref.meta["psn_configs"]["alpha_0p5"]["alpha_info"]
