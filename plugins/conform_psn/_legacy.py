"""PSN, cross-validated (legacy) API: ``psn_cv(data, V=0, opt=None)``.

The API the CONFORM proposal describes (PSN v0.1.0, commit 3508934): the number of
retained dimensions is chosen by cross-validation over trials (leave one trial out,
or keep one in), for the whole population or per unit, or by a magnitude fraction,
or by the analytic per-unit rule (``shared/docs/psn_gsn.md`` section 4).

Speed: upstream builds an n_units x n_units denoiser for every (trial, threshold)
pair, O(T D N^3). Here the default negative-MSE score of every threshold comes from
three matrix products per held-out trial (projections, their Gram matrix and their
cross-products with the test data), O(T N^2 C); a user ``cv_scoring_fn`` is
evaluated on incrementally built predictions. Unlike upstream, nothing here touches
numpy's global random state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.constraints import InstanceOf, check_constraints, check_param, validate_params
from conform_core.exceptions import ParameterError

from ._gsn import _gsn_core
from ._gsn import _resolve_options as _gsn_options
from ._options import LEGACY_CONSTRAINTS, LEGACY_FIXES, V_CONSTRAINTS, V_FIX
from ._validation import check_constant_units, check_data

__all__ = ["psn_cv", "negative_mse_columns"]


def negative_mse_columns(x: NDArray, y: NDArray) -> NDArray[np.float64]:
    """Score per column: ``-mean((x - y)**2, axis=0)`` for (conditions, units) inputs."""
    return -np.mean((x - y) ** 2, axis=0)


def _symmetric_eigen(matrix: NDArray) -> tuple[NDArray, NDArray]:
    """Legacy convention: symmetrise, sort by |value| descending, column mean >= 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    order = np.argsort(np.abs(values))[::-1]
    vectors = vectors[:, order]
    vectors *= np.where(vectors.mean(axis=0) < 0, -1.0, 1.0)
    return vectors, np.abs(values[order])


def _projected_stats(data: NDArray, basis: NDArray) -> tuple[NDArray, NDArray]:
    """Univariate signal and noise variance of each basis vector's projected trials."""
    n_units, n_cond, n_trials = data.shape
    proj = (basis.T @ data.reshape(n_units, -1)).reshape(basis.shape[1], n_cond, n_trials)
    noise = np.mean(np.var(proj, axis=2, ddof=1), axis=1)
    datavar = np.var(proj.mean(axis=2), axis=1, ddof=1)
    return np.maximum(datavar - noise / n_trials, 0), noise


def _rank(basis: NDArray, data: NDArray, mags: NDArray, ranking: str
          ) -> tuple[NDArray, NDArray]:
    if ranking in ("eigenvalue", "eigenvalue_asc"):
        order = np.argsort(mags)
        order = order[::-1] if ranking == "eigenvalue" else order
        return basis[:, order], mags[order]
    signal, noise = _projected_stats(data, basis)
    if ranking == "signal_variance":
        score = signal
    elif ranking == "snr":
        score = np.sqrt(signal) / np.sqrt(noise)
    elif ranking == "snd":
        score = signal - noise
    else:
        ts, tn = signal.sum(), noise.sum()
        score = ((100 * signal / ts) if ts > 0 else np.zeros_like(signal)) - \
            ((100 * noise / tn) if tn > 0 else np.zeros_like(noise))
    order = np.argsort(score)[::-1]
    return basis[:, order], score[order]


def _ica_basis(centred: NDArray) -> NDArray:
    from sklearn.decomposition import FastICA

    n_units, n_cond = centred.shape
    n_comp = min(n_units, n_cond)
    rng = np.random.RandomState(42)
    ica = FastICA(n_components=n_comp, random_state=42, max_iter=1000, tol=1e-4,
                  whiten="unit-variance", w_init=rng.randn(n_comp, n_comp))
    ica.fit(centred.T)
    mixing = ica.mixing_ / np.linalg.norm(ica.mixing_, axis=0, keepdims=True)
    basis, _ = np.linalg.qr(mixing)
    if basis.shape[1] < n_units:  # pad with random directions orthogonal to the rest
        extra = np.random.RandomState(42).randn(n_units, n_units - basis.shape[1])
        extra -= basis @ (basis.T @ extra)
        extra, _ = np.linalg.qr(extra)
        basis = np.hstack([basis, extra])
    return basis


def _basis(V: Any, data: NDArray, centred: NDArray, gsn: tuple | None, opt: dict
           ) -> tuple[NDArray, NDArray]:
    n_units = data.shape[0]
    if isinstance(V, np.ndarray):
        if V.ndim != 2 or V.shape[0] != n_units or V.shape[1] < 1:
            raise ParameterError(
                f"psn_cv: a custom basis V must have shape (n_units={n_units}, D >= 1); got "
                f"{V.shape}. Put basis vectors in columns."
            )
        basis = V.astype(np.float64)
        norms = np.sqrt((basis**2).sum(axis=0))
        if not np.allclose(norms, 1, rtol=0, atol=1e-10):
            basis = basis / norms
        if not np.allclose(basis.T @ basis, np.eye(basis.shape[1]), rtol=0, atol=1e-10):
            u, _, vh = np.linalg.svd(basis, full_matrices=False)
            basis = u @ vh
        mags = np.var(centred.T @ basis, axis=0, ddof=1)
        if opt["ranking"] != "eigenvalue" or not np.allclose(mags, np.sort(mags)[::-1]):
            basis, mags = _rank(basis, data, mags, opt["ranking"])
        return basis, mags
    c_sb, c_nb = gsn if gsn is not None else (None, None)
    if V == 0:
        basis, mags = _symmetric_eigen(c_sb)
    elif V == 1:
        basis, mags = _symmetric_eigen(np.linalg.pinv(c_nb) @ c_sb)
    elif V == 2:
        basis, mags = _symmetric_eigen(c_nb)
    elif V == 3:
        basis, mags = _symmetric_eigen(np.cov(centred, ddof=1))
    elif V == 4:
        basis, _ = np.linalg.qr(np.random.RandomState(42).randn(n_units, n_units))
        mags = np.ones(n_units)
    else:
        basis = _ica_basis(centred)
        mags = np.var(centred.T @ basis, axis=0, ddof=1)
    return _rank(basis, data, mags, opt["ranking"])


def _resolve(V: Any, opt: dict[str, Any] | None, n_units: int | None
             ) -> tuple[Any, dict[str, Any]]:
    """Validate ``V`` and the options (:data:`LEGACY_CONSTRAINTS`), then fill the defaults.

    ``n_units=None`` (no data yet) skips ``unit_groups``' length and leaves it as given.
    """
    opt = {} if opt is None else dict(opt)
    check_param(V, V_CONSTRAINTS, name="V", owner="psn_cv", fix=V_FIX)
    check_constraints(LEGACY_CONSTRAINTS, opt, owner="psn_cv", fixes=LEGACY_FIXES,
                      reject_unknown=True)
    if V is None:
        V = 0
    opt.setdefault("cv_scoring_fn", negative_mse_columns)
    opt.setdefault("cv_mode", 0)
    opt.setdefault("cv_threshold_per", "unit")
    opt.setdefault("mag_frac", 0.95)
    opt.setdefault("mag_type", 0)
    opt.setdefault("denoisingtype", 0)
    opt.setdefault("truncate", 0)
    opt.setdefault("ranking", "signal_variance")
    if n_units is None:
        if "unit_groups" not in opt:
            return V, opt
        groups = np.asarray(opt["unit_groups"])
    else:
        default_groups = (np.zeros(n_units, dtype=int)
                          if opt["cv_threshold_per"] == "population" else np.arange(n_units))
        groups = np.asarray(opt.get("unit_groups", default_groups))
        if groups.shape != (n_units,):
            raise ParameterError(
                param="unit_groups", value=opt.get("unit_groups"), owner="psn_cv",
                allowed=f"{n_units} non-negative integers (one group label per unit)",
                fix="Give one label per unit, in the order of the data's units.")
    if opt["cv_threshold_per"] == "population" and np.any(groups != 0):
        raise ParameterError(
            "With $cv_threshold_per='population' every $unit_groups label must be 0.",
            param="unit_groups", value=opt.get("unit_groups"), owner="psn_cv",
            fix="Use $cv_threshold_per='unit' for groups.")
    if n_units is not None:
        opt["unit_groups"] = groups.astype(int)
    return V, opt


def _cv_scores(data: NDArray, window: NDArray, means: NDArray, thresholds: NDArray,
               mode: int, score_fn: Callable) -> NDArray:
    """Scores (n_thresholds, n_trials, n_units) of every threshold on every held-out trial."""
    n_units, n_cond, n_trials = data.shape
    d = window.shape[1]
    k_eff = np.minimum(thresholds, d)
    out = np.zeros((thresholds.size, n_trials, n_units))
    fast = score_fn is negative_mse_columns
    for tr in range(n_trials):
        rest = np.setdiff1d(np.arange(n_trials), tr)
        if mode == 0:
            train, test = data[:, :, rest].mean(axis=2), data[:, :, tr]
        else:
            train, test = data[:, :, tr], data[:, :, rest].mean(axis=2)
        proj = window.T @ (train - means[:, None])  # (d, C)
        if fast:
            cross = (test @ proj.T) * window  # B_ud (y_u . p_d)
            gram = proj @ proj.T
            h = window @ np.triu(gram, 1)  # sum_{d'<d} B_ud' G_d'd
            quad = window * (window * np.diag(gram) + 2 * h)
            sq = np.einsum("ij,ij->i", test, test)
            err = sq[None, :] + np.concatenate(
                [np.zeros((1, n_units)), np.cumsum(quad - 2 * cross, axis=1).T], axis=0)
            out[:, tr, :] = -err[k_eff] / n_cond
        else:
            pred = np.zeros_like(test, dtype=np.float64)
            by_k: dict[int, NDArray] = {0: score_fn(test.T, pred.T)}
            for k in range(1, int(k_eff.max()) + 1):
                pred += np.outer(window[:, k - 1], proj[k - 1])
                if k in k_eff:
                    by_k[k] = score_fn(test.T, pred.T)
            for i, k in enumerate(k_eff):
                out[i, tr, :] = np.ravel(by_k[int(k)])
    return out


def _columnwise(window: NDArray, k_per_unit: NDArray) -> NDArray:
    n_units = window.shape[0]
    denoiser = np.zeros((n_units, n_units))
    for k in np.unique(k_per_unit[k_per_unit > 0]):
        units = np.flatnonzero(k_per_unit == k)
        denoiser[:, units] = window[:, :k] @ window[units, :k].T
    return denoiser


def _analytic(basis: NDArray, c_sb: NDArray, c_nb: NDArray, n_trials: int, opt: dict
              ) -> tuple[NDArray, NDArray]:
    n_units, n_dims = basis.shape
    trunc, ranking = opt["truncate"], opt["ranking"]
    s = np.einsum("ij,ij->j", c_sb @ basis, basis)
    n = np.einsum("ij,ij->j", c_nb @ basis, basis)
    global_order = None
    if ranking == "snr":
        snr = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        global_order = np.argsort(snr)[::-1]
    elif ranking == "eigenvalue":
        global_order = np.arange(n_dims)
    best = np.zeros(n_units, dtype=int)
    denoiser = np.zeros((n_units, n_units))
    for u in range(n_units):
        w = basis[u] ** 2
        sv, nv = w * s, w * n
        if global_order is not None:
            order = global_order
        else:
            order = np.argsort(sv - nv if ranking == "snd" else sv)[::-1]
        ok = (sv[order] - nv[order] / n_trials)[trunc:] > 0
        k = 0 if not ok.any() else (ok.size if ok.all() else int(np.argmin(ok)))
        best[u] = k + trunc
        end = min(best[u], n_dims)
        if best[u] > 0 and end > trunc:
            cols = basis[:, order[trunc:end]]
            denoiser[:, u] = cols @ cols[u]
    return denoiser, best


@validate_params({"opt": [InstanceOf(dict, "a dict of psn_cv options"), None]},
                 fixes={"opt": "Pass e.g. $opt={'cv_threshold_per': 'population'}."},
                 owner="psn_cv")
def psn_cv(data: Any, V: Any = 0, opt: dict[str, Any] | None = None,
           wantfig: bool = False) -> dict[str, Any]:
    """Denoise with the cross-validated (legacy) PSN API.

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        Complete responses (no NaN), at least 2 trials and 2 conditions.
    V : int or ndarray, default=0
        Basis: 0 signal (eig of cSb), 1 whitened-signal (eig of sym(pinv(cNb) cSb)),
        2 noise, 3 PCA of trial means, 4 random, 5 ICA, or an (n_units, D) matrix.
    opt : dict or None
        ``cv_mode`` (0 leave-one-trial-out (default), 1 keep-one-in, -1 magnitude
        fraction, 2 analytic), ``cv_threshold_per`` ('unit' (default) or
        'population'), ``cv_thresholds`` (default 0..D), ``cv_scoring_fn`` (default
        negative MSE per unit), ``unit_groups``, ``truncate`` (skip that many leading
        dimensions), ``mag_frac`` (0.95), ``ranking`` ('signal_variance' (default),
        'eigenvalue', 'eigenvalue_asc', 'snr', 'snd', 'signal_specificity'),
        ``denoisingtype`` (0 trial average, 1 every trial).
    wantfig : bool, default=False
        Accepted for compatibility; no figure is drawn.

    Returns
    -------
    dict
        Upstream keys: ``denoiser``, ``cv_scores``, ``best_threshold``,
        ``denoiseddata``, ``fullbasis``, ``signalsubspace``, ``dimreduce``,
        ``dimsretained``, ``mags``, ``opt``, ``V``, ``gsn_result``, ``unit_means``,
        ``basis_source`` (None), ``ica_mixing`` (None), ``input_data``.

    Raises
    ------
    ShapeError
        Bad data; NaN is rejected (upstream rejects it too; use :func:`psn`).
    ParameterError
        Unknown option or invalid value.
    """
    data, layout = check_data(data, who="psn_cv", min_conditions=2, allow_nan=False)
    n_units, n_cond, n_trials = data.shape
    V, opt = _resolve(V, opt, n_units)
    check_constant_units(data, layout, who="psn_cv")
    trial_avg = data.mean(axis=2, dtype=np.float64)
    means = trial_avg.mean(axis=1)
    centred = trial_avg - means[:, None]
    gsn_result = gsn = None
    needs_gsn = (not isinstance(V, np.ndarray) and V in (0, 1, 2)) or opt["cv_mode"] == 2
    if needs_gsn:
        gsn_result, gsn = _gsn_core(data, layout, _gsn_options({}))
    basis, mags = _basis(V, data, centred, gsn, opt)
    n_dims = basis.shape[1]
    thresholds = np.asarray(opt.get("cv_thresholds", np.arange(n_dims + 1))).astype(int)
    opt["cv_thresholds"] = thresholds
    trunc = opt["truncate"]
    window = basis[:, trunc:]
    signalsubspace = None
    cv_scores = np.array([])
    dimsretained = np.array([])
    if opt["cv_mode"] == 2:
        denoiser, best = _analytic(basis, gsn[0], gsn[1], n_trials, opt)
    elif opt["cv_mode"] >= 0:
        cv_scores = _cv_scores(data, window, means, thresholds, opt["cv_mode"],
                               opt["cv_scoring_fn"])
        if opt["cv_threshold_per"] == "population":
            best = int(thresholds[int(np.argmax(cv_scores.mean(axis=(1, 2))))])
            signalsubspace = window[:, :min(best, window.shape[1])]
            denoiser = signalsubspace @ signalsubspace.T
        else:
            avg = cv_scores.mean(axis=1)
            best = np.zeros(n_units, dtype=int)
            for g in np.unique(opt["unit_groups"]):
                members = opt["unit_groups"] == g
                best[members] = thresholds[int(np.argmax(avg[:, members].mean(axis=1)))]
            denoiser = _columnwise(window, np.minimum(best, window.shape[1]))
    else:
        frac = np.cumsum(mags) / np.sum(mags)
        dims = min(int(np.sum(frac < opt["mag_frac"])) + 1, mags.size)
        idx = np.arange(mags.size)
        chosen = idx[:dims][idx[:dims] >= trunc]
        if chosen.size < dims:
            rest = idx[dims:][idx[dims:] >= trunc]
            chosen = np.concatenate([chosen, rest[:dims - chosen.size]])
        best = chosen
        dimsretained = chosen.size
        signalsubspace = basis[:, chosen]
        denoiser = signalsubspace @ signalsubspace.T
    dimreduce = None
    if signalsubspace is not None and signalsubspace.shape[1] > 0:
        dimreduce = signalsubspace.T @ centred
    if opt["denoisingtype"] == 0:
        denoised = denoiser.T @ centred + means[:, None]
    else:
        flat = data.reshape(n_units, -1) - np.repeat(means, n_cond * n_trials).reshape(
            n_units, -1)
        denoised = (denoiser.T @ flat).reshape(data.shape) + means[:, None, None]
        if dimreduce is not None:
            dimreduce = (signalsubspace.T @ flat).reshape(-1, n_cond, n_trials)
    return {
        "denoiser": denoiser, "cv_scores": cv_scores, "best_threshold": best,
        "denoiseddata": denoised.astype(data.dtype, copy=False), "fullbasis": basis,
        "signalsubspace": signalsubspace, "dimreduce": dimreduce,
        "dimsretained": dimsretained, "mags": mags, "opt": opt,
        "V": "custom" if isinstance(V, np.ndarray) else int(V), "gsn_result": gsn_result,
        "unit_means": means, "basis_source": None, "ica_mixing": None, "input_data": data,
    }
