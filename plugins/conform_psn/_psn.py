"""PSN, current API: ``psn(data, preset_or_opt=None, opt=None, **options)``.

Partitioning of signal and noise: GSN estimates the signal and noise covariances;
the data are projected onto a basis, the leading dimensions whose estimated signal
outweighs the noise they carry are kept (one K for all units, or one per unit), and
the trial average is reconstructed from them. The results dict has the official
keys (``shared/docs/psn_gsn.md`` section 3.8), so analysis code written for the
official ``psn`` package ports by changing the import.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from conform_core.constraints import InstanceOf, validate_params
from conform_core.data import mean_over_trials
from conform_core.exceptions import ParameterError

from ._bases import construct_basis, difference_matrix, project
from ._diagnostics import recovery_tradeoff, split_half_r, svnv_from_basis
from ._gsn import _gsn_core_eig, float32_eigh
from ._gsn import _resolve_options as _gsn_options
from ._linalg import eigh_descending, trial_mean
from ._operators import lowrank_operator
from ._options import CV_PRESETS, PRESET, parse_call, resolve_options
from ._thresholds import candidates, max_tradeoff, recovery_curve, select_k, signal_curve
from ._validation import TrialLayout, check_constant_units, check_data

__all__ = ["psn", "load_gsn_result"]

_GSN_FILE_KEYS = ("cSb", "cNb", "cN", "cS", "mnN", "mnS", "ncsnr", "shrinklevelN",
                  "shrinklevelD", "numiters", "eigvecs_signal", "eigvals_signal",
                  "eigvecs_difference", "eigvals_difference")


def load_gsn_result(cache: Any, n_units: int) -> dict[str, Any]:
    """Return a validated GSN result from a dict or a ``.npz`` path (PSN's cache).

    The path was checked (an existing ``.npz`` file) with the other options.
    """
    if isinstance(cache, (str, os.PathLike)):
        with np.load(os.fspath(cache), allow_pickle=False) as npz:
            cache = {k: np.asarray(npz[k]) for k in _GSN_FILE_KEYS if k in npz.files}
    if not isinstance(cache, dict) or "cSb" not in cache or "cNb" not in cache:
        raise ParameterError(
            "psn: gsn_result must be a dict (or .npz path) with 'cSb' and 'cNb' from a "
            "previous psn(...)['gsn_result'] or perform_gsn(...) on the same units."
        )
    for key in ("cSb", "cNb"):
        m = np.asarray(cache[key], dtype=np.float64)
        if m.shape != (n_units, n_units) or not np.all(np.isfinite(m)):
            raise ParameterError(
                f"psn: gsn_result[{key!r}] must be a finite ({n_units}, {n_units}) matrix for "
                f"these {n_units} units; got shape {m.shape}. Recompute it on this data."
            )
        scale = max(float(np.abs(m).max()), 1e-300)
        if np.abs(m - m.T).max() > 1e-6 * scale:
            raise ParameterError(f"psn: gsn_result[{key!r}] is not symmetric.")
        diag = np.diag(m)
        if diag.min() < -1e-8 * max(1.0, float(np.abs(diag).max())):
            raise ParameterError(f"psn: gsn_result[{key!r}] has a negative diagonal.")
    for kind in ("signal", "difference"):
        has = [f"eigvecs_{kind}" in cache, f"eigvals_{kind}" in cache]
        if any(has) and not all(has):
            raise ParameterError(
                f"psn: gsn_result has only one of eigvecs_{kind}/eigvals_{kind}; give both."
            )
    return cache


def _trial_average(data: NDArray, layout: TrialLayout) -> NDArray[np.float64]:
    """Trial means in float64 (summed in float64, also for float32 data)."""
    if not layout.has_nans:
        return trial_mean(data, np.float64)
    return mean_over_trials(np.asarray(data, dtype=np.float64))


@validate_params(
    {"preset_or_opt": [PRESET, InstanceOf(dict, "a dict of options"), None],
     "opt": [InstanceOf(dict, "a dict of options"), None]},
    fixes={"opt": "Pass e.g. $opt={'threshold_method': 'hybrid'}."},
    owner="psn")
def psn(data: Any, preset_or_opt: Any = None, opt: dict[str, Any] | None = None,
        **options: Any) -> dict[str, Any]:
    """Denoise responses with PSN (partitioning of signal and noise).

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        Responses (official orientation). NaN marks a missing trial; every condition
        needs one trial complete for all units. At least 2 trials and 2 conditions.
    preset_or_opt : str or dict or None
        A preset -- ``"standard"`` (default: signal basis, max-tradeoff, global),
        ``"conservative"``, ``"aggressive"``, ``"compare"``, ``"wiener"`` -- or an
        options dict. ``"cv"`` selects the cross-validated legacy API
        (:func:`conform_psn.psn_cv`), whose options are then passed as keywords.
    opt : dict or None
        Options overriding the preset (the official third positional argument).
    **options
        Options overriding ``opt``: ``basis`` ('signal', 'difference', 'noise', 'pca',
        'random', 'compare', or an (n_units, D) matrix), ``criterion``
        ('max-tradeoff', 'prediction', 'variance', 'variance_eigenvalues', 'wiener'),
        ``threshold_method`` ('global', 'hybrid'), ``basis_ordering``,
        ``variance_threshold``, ``alpha``, ``allowable_thresholds``, ``unit_groups``,
        ``basis_eigenvalues``, ``gsn_result`` (dict or .npz path; skips GSN),
        ``gsn_args``, ``skip_split_half``, ``covariance`` ('full', default: exact
        units x units covariances; 'lowrank': low rank plus diagonal, for tens of
        thousands of units, see :mod:`conform_psn._lowrank`) and ``rank`` (its subspace
        size, default 100); ``wantfig``/``wantverbose``/``figurepath``/
        ``cmap``/``split_half_metric``/``device`` are accepted for compatibility.

    Returns
    -------
    dict
        The official keys: ``denoiser`` (n_units, n_units; apply as
        ``denoiser.T @ (x - unit_means) + unit_means``), ``denoiseddata``
        (n_units, n_conditions), ``residuals``, ``unit_means``, ``best_threshold``
        (int; per-unit array for hybrid; float effective dims for Wiener),
        ``fullbasis``, ``basis_eigenvalues``, ``signalvar``, ``noisevar``,
        ``objective``, ``svnv_before``, ``svnv_after``, ``signalsubspace``,
        ``dimreduce``, ``gsn_result``, ``input_data``, ``opt_used``, ``runtime``,
        ``recovery_tradeoff``, the ``*_viz`` copies, and per mode ``unit_*``,
        ``alpha_info``, ``threshold_selection``, ``diagnostics``, ``wiener_matrix``.

    Raises
    ------
    ShapeError
        Bad data (see :func:`perform_gsn`), or fewer than 2 conditions.
    ParameterError
        Unknown preset or option (with suggestions), invalid values, conflicting options.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((3, 1)) * rng.standard_normal((1, 60))
    >>> out = psn(x[:, :, None] + 0.5 * rng.standard_normal((3, 60, 4)))
    >>> out["denoiseddata"].shape
    (3, 60)
    """
    start = time.perf_counter()
    preset, user = parse_call(preset_or_opt, opt, options)
    if preset in CV_PRESETS:
        from ._legacy import psn_cv
        user = dict(user)
        return psn_cv(data, user.pop("V", 0), user)
    data, layout = check_data(data, who="psn", min_conditions=2)
    opt_used = resolve_options(preset, user, data.shape[0])
    check_constant_units(data, layout, who="psn")
    if opt_used["covariance"] == "lowrank":
        from ._lowrank import psn_lowrank
        results = psn_lowrank(data, layout, preset, opt_used, rank=opt_used["rank"])
    else:
        results = _run(data, layout, opt_used)
    results["runtime"] = time.perf_counter() - start
    return results


def _gsn_for(data: NDArray, layout: TrialLayout, opt: dict[str, Any]
             ) -> tuple[dict[str, Any], NDArray, NDArray, Any]:
    """GSN result, float64 cSb and cNb, and the eigendecomposition cSb was rebuilt from.

    GSN returns only ``cSb`` and ``cNb`` here (upstream's PSN also keeps ``cN`` and ``cS``
    in ``gsn_result``, two units x units matrices PSN never reads); name them in
    ``gsn_args={'returns': [...]}`` to get them.
    """
    if opt["gsn_result"] is not None:
        cache = load_gsn_result(opt["gsn_result"], data.shape[0])
        return (cache, np.asarray(cache["cSb"], dtype=np.float64),
                np.asarray(cache["cNb"], dtype=np.float64), None)
    gsn_opt = dict(opt["gsn_args"] or {})
    gsn_opt.setdefault("wantverbose", False)
    gsn_opt.setdefault("wantshrinkage", True)
    gsn_opt.setdefault("returns", ["cSb", "cNb"])
    result, (c_sb, c_nb, eig) = _gsn_core_eig(data, layout, _gsn_options(gsn_opt))
    return result, c_sb, c_nb, eig


def _run(data: NDArray, layout: TrialLayout, opt: dict[str, Any],
         gsn: tuple[dict[str, Any], NDArray, NDArray, Any] | None = None) -> dict[str, Any]:
    t = layout.n_trials_avg
    trial_avg = _trial_average(data, layout)
    means = trial_avg.mean(axis=1)
    gsn_result, c_sb, c_nb, eig = gsn if gsn is not None else _gsn_for(data, layout, opt)
    if opt["criterion"] == "wiener":
        return _wiener(data, layout, opt, trial_avg, means, gsn_result, c_sb, c_nb, t, eig)
    if isinstance(opt["basis"], str) and opt["basis"] == "compare":
        return _compare(data, layout, opt, gsn_result, c_sb, c_nb, t, eig)
    basis_spec, evals_spec = opt["basis"], opt["basis_eigenvalues"]
    cached = False
    if isinstance(basis_spec, str) and basis_spec in ("signal", "difference") \
            and evals_spec is None and f"eigvecs_{basis_spec}" in gsn_result:
        basis_spec = np.asarray(gsn_result[f"eigvecs_{basis_spec}"])  # cached eigenbasis
        evals_spec = np.asarray(gsn_result[f"eigvals_{opt['basis']}"])
        cached = True
    if opt["threshold_method"] != "global":
        # per-unit K reads the null-space directions (psn_gsn.md pitfall 22b): take them,
        # as upstream does, from an eigendecomposition of cSb itself
        eig = None
    reused = eig is not None and isinstance(basis_spec, str) and basis_spec == "signal"
    basis, evals = construct_basis(basis_spec, c_sb, c_nb, t=t, trial_avg=trial_avg,
                                   unit_means=means, eigenvalues=evals_spec, eig=eig,
                                   eigenbasis=cached)
    del eig
    if reused:  # cache it: psn(..., gsn_result=...) then gives the identical basis
        gsn_result["eigvecs_signal"], gsn_result["eigvals_signal"] = basis, evals
    n_dims = basis.shape[1]
    allow = opt["allowable_thresholds"]
    if allow is not None and np.any(np.asarray(allow) > n_dims):
        raise ParameterError(
            f"psn: allowable_thresholds {np.asarray(allow).tolist()} exceed the {n_dims} "
            "basis dimensions. Keep them within 0..D."
        )
    # at scale (float32 eigendecompositions) the signal variances of cSb's own eigenbasis
    # are its eigenvalues; the float64 path projects, as upstream, for exact parity
    low = float32_eigh(data)
    known = evals if reused and low else None
    s, n = project(c_sb, c_nb, basis, signal=known, dtype=np.float32 if low else np.float64)
    viz = {"basis_viz": basis, "signal_proj_viz": s.copy(),
           "noise_proj_viz": n.copy(),
           "basis_eigenvalues_viz": None if evals is None else evals.copy()}
    if opt["basis_ordering"] == "eigenvalues" and evals is not None:
        order = np.argsort(evals)[::-1]
    elif opt["basis_ordering"] == "prediction":
        order = np.argsort(s - n / t)[::-1]
    else:
        order = np.argsort(s)[::-1]
    if not np.array_equal(order, np.arange(order.size)):
        basis = basis[:, order]  # basis_viz keeps the pre-ordering basis
    s, n = s[order], n[order]
    evals = None if evals is None else evals[order]
    out: dict[str, Any] = {}
    if opt["threshold_method"] == "global":
        fast = (isinstance(opt["basis"], str) and opt["basis"] == "difference"
                and basis_spec is opt["basis"] and opt["criterion"] == "prediction"
                and evals is not None)
        k, objective = _global_k(s, n, t, evals, opt, fast)
        kept = basis[:, :k]
        denoiser = kept @ kept.T if k > 0 else np.zeros((basis.shape[0],) * 2)
        signalvar, noisevar = s, n
        out["signalsubspace"] = kept if k > 0 else None
        out["dimreduce"] = kept.T @ (trial_avg - means[:, None]) if k > 0 else None
    else:
        weights = basis * basis
        k, denoiser = _hybrid(basis, weights, s, n, t, opt)
        col = weights.sum(axis=0)
        signalvar, noisevar = s * col, n * col
        objective = recovery_curve(signalvar, noisevar, t)
        out["signalsubspace"] = out["dimreduce"] = None
        unit_s, unit_n = weights * s, weights * n
        out["unit_signal_vars"] = list(unit_s)
        out["unit_noise_vars"] = list(unit_n)
        out["unit_objectives"] = list(np.concatenate(
            [np.zeros((unit_s.shape[0], 1)), np.cumsum(unit_s - unit_n / t, axis=1)], axis=1))
    if opt["alpha"] is not None:
        rec = recovery_curve(signalvar, noisevar, t)
        sig = signal_curve(signalvar)
        k_var = 0 if sig[-1] <= 0 else int(np.flatnonzero(sig >= sig[-1])[0])
        out["alpha_info"] = {"k_pred": int(np.argmax(rec)), "k_var": k_var,
                             "alpha": opt["alpha"]}
    before, after = svnv_from_basis(basis, s, n, t, k)
    # a global threshold's denoiser is kept kept^T: apply it through its factor (O(U K C)
    # instead of O(U^2 C); the same numbers to rounding)
    filt = (lowrank_operator(out["signalsubspace"], out["signalsubspace"])
            if out.get("signalsubspace") is not None else denoiser.T)
    out.update(_package(data, layout, trial_avg, means, denoiser, k, gsn_result, opt, filt))
    out.update({"fullbasis": basis, "basis_eigenvalues": evals, "signalvar": signalvar,
                "noisevar": noisevar, "objective": objective, "svnv_before": before,
                "svnv_after": after, **viz})
    name = opt["basis"] if isinstance(opt["basis"], str) else None
    out["recovery_tradeoff"] = recovery_tradeoff(
        c_sb=c_sb, s=s, n=n, t=t, k=k, svnv_after=after, basis_name=name,
        data=None if opt["skip_split_half"] else data, filt=filt, unit_means=means)
    return out


def _package(data: NDArray, layout: TrialLayout, trial_avg: NDArray, means: NDArray,
             denoiser: NDArray, k: Any, gsn_result: dict[str, Any], opt: dict[str, Any],
             filt: Any = None) -> dict[str, Any]:
    """Return the official keys of the result; ``filt`` applies ``denoiser.T`` (default: itself)."""
    filt = denoiser.T if filt is None else filt
    denoised = filt @ (trial_avg - means[:, None]) + means[:, None]
    return {
        "denoiser": denoiser, "best_threshold": k, "unit_means": means,
        "denoiseddata": denoised.astype(data.dtype, copy=False),
        "residuals": data - denoised.astype(data.dtype)[:, :, None],
        "gsn_result": gsn_result, "input_data": data, "opt_used": opt,
    }


def _global_k(s: NDArray, n: NDArray, t: float, evals: NDArray | None,
              opt: dict[str, Any], fast: bool) -> tuple[int, NDArray]:
    """K for one global threshold (with the difference + prediction shortcut)."""
    allow = opt["allowable_thresholds"]
    kwargs = {"criterion": opt["criterion"], "eigenvalues": evals,
              "variance_threshold": opt["variance_threshold"], "alpha": opt["alpha"],
              "allowable": allow,
              "use_signal_for_eigen": isinstance(opt["basis"], str) and opt["basis"] == "pca"}
    if allow is not None and np.asarray(allow).size == 1:
        k = int(np.asarray(allow).ravel()[0])
        objective = (signal_curve(evals) if fast else select_k(s, n, t, **kwargs)[1])
        return k, objective
    if fast and opt["alpha"] is None:
        objective = signal_curve(evals)
        if allow is not None:
            cand = candidates(allow, len(objective) - 1)
            if cand.size:
                return int(cand[int(np.argmax(objective[cand]))]), objective
        return int(np.argmax(objective)), objective
    k, objective = select_k(s, n, t, **kwargs)
    return int(k), objective


def _group_rows(values: NDArray, groups: NDArray) -> tuple[NDArray, NDArray]:
    """Mean of ``values`` rows per group; return (group means, index of each unit's group)."""
    labels, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    sums = np.add.reduceat(values[order], starts, axis=0)
    return sums / np.bincount(inverse)[:, None], inverse


def _hybrid(basis: NDArray, weights: NDArray, s: NDArray, n: NDArray, t: float,
            opt: dict[str, Any]) -> tuple[NDArray, NDArray]:
    """Per-unit K on the shared global order; denoiser column u = B_Ku B[u, :Ku]^T."""
    mean_w, inverse = _group_rows(weights, opt["unit_groups"])
    allow = opt["allowable_thresholds"]
    k_group = np.zeros(mean_w.shape[0], dtype=int)
    for g, w in enumerate(mean_w):
        ws, wn = w * s, w * n
        if opt["alpha"] is not None or opt["criterion"] in ("prediction", "variance"):
            k_group[g] = select_k(ws, wn, t, criterion=opt["criterion"], alpha=opt["alpha"],
                                  variance_threshold=opt["variance_threshold"],
                                  allowable=allow)[0]
        else:
            k_group[g] = max_tradeoff(ws, wn, t, allow)
    k = k_group[inverse]
    denoiser = np.zeros((basis.shape[0],) * 2)
    for kk in np.unique(k[k > 0]):
        units = np.flatnonzero(k == kk)
        denoiser[:, units] = basis[:, :kk] @ basis[units, :kk].T
    return k, denoiser


def _wiener(data: NDArray, layout: TrialLayout, opt: dict[str, Any], trial_avg: NDArray,
            means: NDArray, gsn_result: dict[str, Any], c_sb: NDArray, c_nb: NDArray,
            t: float, eig: Any = None) -> dict[str, Any]:
    """Full-rank filter ``cSb (cSb + cNb/t)^-1``; stored as ``denoiser = A^-1 cSb``."""
    n_units = c_sb.shape[0]
    a = c_sb + c_nb / t
    a[np.diag_indices(n_units)] += 1e-10 * np.trace(a) / n_units
    try:
        denoiser = cho_solve(cho_factor(a, lower=True, check_finite=False), c_sb,
                             check_finite=False)
    except LinAlgError:
        denoiser = np.linalg.solve(a, c_sb)
    filt = denoiser.T
    before = np.column_stack([np.diag(c_sb), np.diag(c_nb) / t])
    after = np.column_stack([np.einsum("ij,ij->i", filt @ c_sb, filt),
                             np.einsum("ij,ij->i", filt @ c_nb, filt) / t])
    k = float(np.trace(filt))
    evals, vecs = eigh_descending(c_sb, eig)
    s, n = project(c_sb, c_nb, vecs, clamp=False)
    out = _package(data, layout, trial_avg, means, denoiser, k, gsn_result, opt)
    out.update({
        "svnv_before": before, "svnv_after": after, "fullbasis": vecs,
        "basis_eigenvalues": evals, "signalvar": s, "noisevar": n, "objective": None,
        "basis_viz": vecs, "signal_proj_viz": s, "noise_proj_viz": n,
        "basis_eigenvalues_viz": evals, "signalsubspace": None, "dimreduce": None,
        "wiener_matrix": filt,
        "threshold_selection": {"mode": "wiener", "basis": None, "criterion": "wiener",
                                "best_threshold": k},
    })
    out["recovery_tradeoff"] = recovery_tradeoff(
        c_sb=c_sb, s=None, n=None, t=t, k=k, svnv_after=after, basis_name=None,
        data=None if opt["skip_split_half"] else data, filt=filt, unit_means=means)
    return out


def _compare(data: NDArray, layout: TrialLayout, opt: dict[str, Any],
             gsn_result: dict[str, Any], c_sb: NDArray, c_nb: NDArray, t: float,
             eig: Any = None) -> dict[str, Any]:
    """Signal vs difference basis at their own K; keep the higher split-half r."""
    trial_avg = _trial_average(data, layout)
    means = trial_avg.mean(axis=1)
    cands: dict[str, dict[str, Any]] = {}
    for name in ("signal", "difference"):
        if name == "signal":
            evals, vecs = eigh_descending(c_sb, eig)
            eig = None
        else:
            evals, vecs = eigh_descending(difference_matrix(c_sb, c_nb, t))
        s, n = project(c_sb, c_nb, vecs, clamp=False)  # unclamped, as upstream
        if opt["criterion"] == "max-tradeoff":
            k = max_tradeoff(s, n, t, opt["allowable_thresholds"])
        else:
            k = select_k(s, n, t, criterion=opt["criterion"], eigenvalues=evals,
                         variance_threshold=opt["variance_threshold"], alpha=opt["alpha"],
                         allowable=opt["allowable_thresholds"])[0]
        k = int(np.clip(k, 0, s.size))
        total = float(s.sum())
        sig, rec = signal_curve(s) / total, recovery_curve(s, n, t) / total
        kept = vecs[:, :k]
        shr = split_half_r(data, kept @ kept.T, means)
        cands[name] = {"best_threshold": k, "recovery": float(rec[k]),
                       "sv_frac": float(sig[k]), "split_half_r": shr,
                       "eigvecs": vecs, "eigvals": evals}
    winner = ("difference" if cands["difference"]["split_half_r"]
              > cands["signal"]["split_half_r"] else "signal")
    sub = dict(opt, basis=cands[winner]["eigvecs"], basis_eigenvalues=cands[winner]["eigvals"])
    out = _run(data, layout, sub, gsn=(gsn_result, c_sb, c_nb, None))
    out["opt_used"] = opt
    out["recovery_tradeoff"]["chosen"]["basis"] = winner
    out["threshold_selection"] = {
        "mode": "compare", "basis": winner, "criterion": opt["criterion"],
        "best_threshold": out["best_threshold"], "recovery": cands[winner]["recovery"],
        "sv_frac": cands[winner]["sv_frac"], "split_half_r": cands[winner]["split_half_r"]}
    out["diagnostics"] = {
        "mode": "compare", "picked_by": "split_half_r",
        "candidates": {b: {k: c[k] for k in ("best_threshold", "recovery", "sv_frac",
                                             "split_half_r")} for b, c in cands.items()},
        "eigvecs_by_basis": {b: c["eigvecs"] for b, c in cands.items()}}
    return out
