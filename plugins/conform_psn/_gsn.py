"""GSN: generative modeling of signal and noise (``perform_gsn``).

Estimates, from responses of shape (units, conditions, trials), the noise covariance
``cN`` (average within-condition covariance) and the data covariance ``cD`` (of the
trial means), each shrunk toward its diagonal at the level that best predicts
held-out data; the signal covariance ``cS = cD - cN/T``; the per-unit ncsnr; and the
positive semi-definite pair ``cSb``/``cNb`` from a short alternating refinement. The
algorithm and all its conventions follow the official GSN (cvnlab/GSN, v1.2.0) so
that outputs match it to rounding; see ``shared/docs/psn_gsn.md`` section 1.

Where the time goes, and what differs from the official implementation:

- within-condition scatter is one BLAS product over orthonormal trial contrasts
  (n_trials - 1 columns per condition) instead of a non-BLAS einsum over all trials;
- the full-data covariances reuse the training products (one pass over the data);
- the 51 shrinkage levels share one eigendecomposition (see ``_shrinkage``); levels
  too close to singular for it to settle are decided by a Cholesky of the matrix the
  official numpy path forms, built (bit-identically) only then, and always for float32;
- nothing of size units x units x conditions is ever formed.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.constraints import (
    AnyValue,
    Boolean,
    InstanceOf,
    Options,
    SequenceOf,
    check_constraints,
    validate_params,
)
from conform_core.exceptions import ConformWarning, ParameterError

from ._linalg import (
    deterministic_randperm,
    eigh_descending,
    flat_corr,
    helmert_contrasts,
    nearest_psd,
    trial_mean,
)
from ._shrinkage import Reference, choose_shrinkage, default_levels, shrink
from ._validation import IGNORED, FiniteNumbers, TrialLayout, check_constant_units, check_data

__all__ = ["perform_gsn", "GSN_CONSTRAINTS", "GSN_FIXES"]

_LEAVE_OUT = 5
FLOAT32_EIGH_UNITS = 2000
"""From this many units, float32 data has the biconvex step's eigendecompositions done in
float32 (about 3x faster, half the workspace). GSN's covariances then match the float64
path's to about units x 2^-24 relative (2.5e-5 measured at 600 units; ~5e-4 at 8,000), far
below their sampling error (~1/sqrt(conditions)). Smaller data, where the official
reference outputs are (at most 500 units), keeps float64 and its parity."""
_OFFICIAL_BUDGET = 2.5e9
"""Multiply-adds up to which float32 shrinkage is decided on upstream's own einsum matrix
(about 5 s of non-BLAS einsum; 1,000 units x 1,000 conditions x 3 trials is 2.4e9)."""
_VALID_RETURNS = ("cN", "cS", "cNb", "cSb", "eigvecs_signal", "eigvals_signal",
                  "eigvecs_difference", "eigvals_difference")
_DEFAULT_RETURNS = ("cN", "cS", "cNb", "cSb")

GSN_CONSTRAINTS: dict[str, list[Any]] = {
    "wantverbose": [IGNORED],
    "wantshrinkage": [Boolean(), Options((0, 1))],
    "shrinklevels": [FiniteNumbers(), None],
    "backend": [Options(("auto", "numpy"))],
    "device": [Options(("cpu", "auto")), None],
    "returns": [Options(_VALID_RETURNS), SequenceOf(Options(_VALID_RETURNS)), None],
    "eigh_device": [Options(("host", "device"))],
    "uneven": [Options(("fast", "reference"))],
    "random_seed": [AnyValue("any value (accepted and ignored, as upstream)")],
}
"""Every option of :func:`perform_gsn`, and what its value may be."""

GSN_FIXES: dict[str, str] = {
    "shrinklevels": "Use None for the default levels.",
    "backend": "conform_psn has one CPU implementation, faster than the official numpy and "
               "torch-on-CPU paths, so 'torch' is not available.",
    "device": "conform_psn runs on the CPU; use $device='cpu'.",
    "returns": "Name the matrices to return, e.g. $returns=['cSb', 'cNb'].",
    "uneven": "Per-unit missingness ('missing') is not implemented in conform_psn: use 'fast' "
              "(trials with any NaN unit are left out of the covariances), or drop the "
              "partially measured units.",
}


# ----------------------------------------------------------------------------- options

def _resolve_options(opt: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``opt`` against :data:`GSN_CONSTRAINTS`; return what the estimator uses."""
    opt = {} if opt is None else dict(opt)
    check_constraints(GSN_CONSTRAINTS, opt, owner="perform_gsn", fixes=GSN_FIXES,
                      reject_unknown=True)
    returns = opt.get("returns")
    returns = _DEFAULT_RETURNS if returns is None else ((returns,) if isinstance(returns, str)
                                                        else tuple(returns))
    levels = opt.get("shrinklevels")
    if levels is None:
        levels = default_levels(bool(opt.get("wantshrinkage", True)))
    else:
        levels = np.asarray(levels, dtype=np.float64).ravel()
    return {"returns": set(returns), "levels": levels,
            "verbose": bool(opt.get("wantverbose", False))}


# ----------------------------------------------------------------------------- pieces

def _split(n: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    perm = deterministic_randperm(n)
    n_val = int(np.round(n / _LEAVE_OUT))
    return perm[n_val:], perm[:n_val]


def _gram(columns: NDArray[np.floating]) -> NDArray[np.float64]:
    """``columns @ columns.T`` in the input precision, returned as float64."""
    if columns.shape[1] == 0:
        return np.zeros((columns.shape[0], columns.shape[0]))
    return np.asarray(columns @ columns.T, dtype=np.float64)


def _select(columns: NDArray[np.floating], points: NDArray[np.float64], n_points: int,
            levels: NDArray[np.float64], reference: Reference, dtype: np.dtype,
            max_rank: int, n_terms: int, official_cost: float) -> float:
    """Choose the shrinkage level; positive definiteness decided as upstream decides it.

    ``columns`` (units x r, float64) span the training covariance
    (``cov = columns @ columns.T``), which is formed only when r >= n_units. For float32
    data the official matrix (float32 entries, factorised in float64) is formed up front
    and used for every level while that is affordable (``official_cost``, multiply-adds
    of its einsum, below :data:`_OFFICIAL_BUDGET`), since its float32 rounding alone moves
    its eigenvalues by about 1e-7; beyond that the float64 path below decides on the float64
    spectrum of the same columns, as for float64 data, with a BLAS-formed float32 matrix in
    place of the official einsum (which would cost minutes at thousands of units) for the
    levels too close to singular for float64 to settle. For
    float64 data the official matrix is formed only if some level is too close to
    singular for the eigenvalues of ours to settle (see ``_shrinkage``).
    """
    if dtype == np.float32 and official_cost <= _OFFICIAL_BUDGET:
        ref_cov, ref_rows = reference()
        level, _ = choose_shrinkage(ref_cov.astype(np.float64), ref_rows.T.astype(np.float64),
                                    ref_rows.shape[0], levels,
                                    reference=lambda: (ref_cov, ref_rows), max_rank=max_rank)
        return level
    if dtype == np.float32:
        def reference() -> tuple[NDArray, NDArray]:  # float32 entries, as upstream's
            c32 = columns.astype(np.float32)
            return c32 @ c32.T, _rows32(points, n_points)
        # No widened settling threshold for the float32 rounding here: a BLAS float32
        # product does not round as upstream's einsum does, so a Cholesky of it cannot
        # reproduce upstream's verdict at the edge anyway, and the float64 spectrum of the
        # same data is the better judge (4 Cholesky factorisations, ~10 % of an 8,000-unit
        # fit, saved). Levels too close to singular for float64 still get the Cholesky.
    level, _ = choose_shrinkage(None, points, n_points, levels, reference=reference,
                                max_rank=max_rank, n_terms=n_terms, columns=columns)
    return level


def _rows32(points: NDArray[np.float64], n_points: int) -> NDArray[np.float32]:
    n_cols = points.shape[1]
    rows = points.T if n_cols == n_points else points.T * np.sqrt(n_cols / n_points)
    return rows.astype(np.float32)


def _official_noise_even(data: NDArray[np.floating], train: NDArray[np.intp],
                         val: NDArray[np.intp]) -> tuple[NDArray, NDArray]:
    """Training noise covariance and held-out rows, formed with upstream's numpy operations.

    The same operations in the same order on arrays of the same layout and dtype
    (an einsum over trial-centred training conditions, divided by T - 1 and then by the
    number of conditions), so the result is bit-identical to the matrix the official
    ``_shrunken_cov_3d_numpy`` factorises.
    """
    by_trial = np.transpose(np.ascontiguousarray(data), (2, 0, 1))  # (trials, units, conds)
    n_trials, n_units = by_trial.shape[:2]
    fit = by_trial[:, :, train]
    fit = fit - fit.mean(axis=0, keepdims=True)
    cov = np.einsum("ovc,owc->vw", fit, fit) / (n_trials - 1) / train.size
    held = by_trial[:, :, val]
    held = held - held.mean(axis=0, keepdims=True)
    return cov, held.transpose(2, 0, 1).reshape(-1, n_units)


def _fit_noise_even(data: NDArray[np.floating], levels: NDArray[np.float64]
                    ) -> tuple[NDArray[np.float64], float]:
    n_units, n_cond, n_trials = data.shape
    train, val = _split(n_cond)
    contrasts = helmert_contrasts(n_trials).astype(data.dtype)
    z = (data.reshape(-1, n_trials) @ contrasts).reshape(n_units, n_cond, n_trials - 1)
    n_cols = train.size * (n_trials - 1)
    columns = z[:, train].reshape(n_units, -1).astype(np.float64)
    columns *= 1.0 / np.sqrt((n_trials - 1) * train.size)  # cov_train = columns columns^T
    level = _select(columns, z[:, val].reshape(n_units, -1).astype(np.float64),
                    val.size * n_trials, levels,
                    lambda: _official_noise_even(data, train, val), data.dtype,
                    max_rank=n_cols, n_terms=n_cols,
                    official_cost=float(n_units) ** 2 * n_cols * n_trials / (n_trials - 1))
    del columns
    cov_full = _gram(z.reshape(n_units, -1))
    cov_full /= (n_trials - 1) * n_cond
    return shrink(cov_full, level, out=cov_full), level


def _fit_noise_uneven(data: NDArray[np.floating], layout: TrialLayout,
                      levels: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    n_units, n_cond, _ = data.shape
    train, val = _split(n_cond)
    is_val = np.zeros(n_cond, dtype=bool)
    is_val[val] = True
    blocks: dict[bool, list[NDArray[np.floating]]] = {True: [], False: []}
    weights: dict[bool, list[float]] = {True: [], False: []}
    n_points = 0
    for count in np.unique(layout.counts[layout.counts >= 2]):
        conds = np.flatnonzero(layout.counts == count)
        trials = np.nonzero(layout.valid[conds])[1].reshape(conds.size, count)
        gathered = data[:, conds[:, None], trials]  # (units, n_c, count), ascending trials
        z = gathered @ helmert_contrasts(int(count)).astype(data.dtype)
        for held_out in (False, True):
            part = z[:, is_val[conds] == held_out].reshape(n_units, -1)
            blocks[held_out].append(part)
            weights[held_out].append(1.0 / (count - 1))
            if held_out:
                n_points += int(count) * int((is_val[conds]).sum())
    n_train_cond = int(((layout.counts >= 2) & ~is_val).sum())
    n_val_cond = int(((layout.counts >= 2) & is_val).sum())
    if n_train_cond < 1 or n_val_cond < 1:
        raise ParameterError(
            "perform_gsn: too few conditions with 2 or more complete trials to choose the "
            f"noise shrinkage ({n_train_cond} in the training split, {n_val_cond} held out). "
            "Add repeated trials, or pass opt={'wantshrinkage': False}."
        )
    points = np.concatenate(blocks[True], axis=1).astype(np.float64)
    n_cols = sum(b.shape[1] for b in blocks[False])
    # cov_train = columns columns^T: each block weighted by sqrt(1 / (T_c - 1))
    columns = np.concatenate([b.astype(np.float64) * np.sqrt(w / n_train_cond)
                              for w, b in zip(weights[False], blocks[False])], axis=1)
    level = _select(columns, points, n_points, levels,
                    lambda: _official_noise_uneven(data, layout, train, val), data.dtype,
                    max_rank=n_cols, n_terms=n_cols,
                    official_cost=float(n_units) ** 2 * data.shape[1] * data.shape[2])
    del columns
    cov_full = _gram(np.concatenate(
        [b * np.asarray(np.sqrt(w), dtype=b.dtype) for side in (False, True)
         for w, b in zip(weights[side], blocks[side])], axis=1))
    cov_full /= n_train_cond + n_val_cond
    return shrink(cov_full, level, out=cov_full), level


def _official_noise_uneven(data: NDArray[np.floating], layout: TrialLayout,
                           train: NDArray[np.intp], val: NDArray[np.intp]
                           ) -> tuple[NDArray, NDArray]:
    """Training noise covariance and held-out rows for NaN trials, formed as upstream does.

    Mirrors the operations of the official ``uneven='fast'`` path
    (``_percond_avg_cov_numpy`` and its held-out rows): missing trials zeroed, condition
    means over valid trials, residuals weighted by ``1/sqrt(T_c - 1)``, one product
    averaged over conditions with 2 or more valid trials (float64 even for float32
    data, through the float64 counts); held-out rows per held-out condition, centred on
    that condition's valid trials, in the data's dtype.
    """
    n_units = data.shape[0]
    valid = layout.valid[train]
    counts = layout.counts[train].astype(np.float64)
    sub = data[:, train, :]
    zeroed = np.where(valid[None], sub, 0.0)
    cond_means = zeroed.sum(axis=2) / np.maximum(counts, 1.0)
    resid = np.where(valid[None], zeroed - cond_means[:, :, None], 0.0)
    weights = np.where(counts >= 2, 1.0 / np.maximum(counts - 1.0, 1.0), 0.0)
    flat = (resid * np.sqrt(weights)[None, :, None]).reshape(n_units, -1)
    cov = (flat @ flat.T) / int((counts >= 2).sum())
    rows = []
    for cond in val:
        keep = layout.valid[cond]
        if int(keep.sum()) > 1:
            trials = data[:, cond, keep].T
            rows.append(trials - trials.mean(axis=0))
    return cov, np.vstack(rows)


def _truncated_means(data: NDArray[np.floating], layout: TrialLayout) -> tuple[NDArray, int]:
    """Trial means over ``min(counts)`` seeded-random complete trials per condition."""
    n_min = int(layout.counts.min())
    means = np.empty(data.shape[:2], dtype=data.dtype)
    for count in np.unique(layout.counts):
        conds = np.flatnonzero(layout.counts == count)
        trials = np.nonzero(layout.valid[conds])[1].reshape(conds.size, count)
        chosen = trials[:, deterministic_randperm(int(count))[:n_min]]
        means[:, conds] = data[:, conds[:, None], chosen].mean(axis=2)
    return means, n_min


def _official_data(means: NDArray[np.floating], train: NDArray[np.intp],
                   val: NDArray[np.intp]) -> tuple[NDArray, NDArray]:
    """Training data covariance and held-out rows, formed with upstream's numpy operations.

    ``means`` is the (units, conditions) trial average, bit-identical to upstream's
    ``np.mean(data, axis=2)``; the official ``_shrunken_cov_2d_numpy`` works on its
    transpose: rows of training conditions, centred on their mean, ``X.T @ X / (n - 1)``.
    """
    by_cond = np.ascontiguousarray(means).T
    fit = by_cond[train]
    centre = fit.mean(axis=0)
    fit = fit - centre
    return (fit.T @ fit) / (fit.shape[0] - 1), by_cond[val] - centre


def _fit_data(means: NDArray[np.floating], levels: NDArray[np.float64]
              ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    n_units, n_cond = means.shape
    train, val = _split(n_cond)
    x_train = means[:, train]
    mean_train = x_train.mean(axis=1, keepdims=True)
    columns = (x_train - mean_train).astype(np.float64)
    columns *= 1.0 / np.sqrt(train.size - 1)  # cov_train = columns columns^T
    points = means[:, val] - mean_train
    level = _select(columns, points.astype(np.float64), val.size, levels,
                    lambda: _official_data(means, train, val), means.dtype,
                    max_rank=train.size - 1, n_terms=train.size,
                    official_cost=float(n_units) ** 2 * train.size)
    del columns, points
    mean_all = means.astype(np.float64).mean(axis=1)
    centred = means - mean_all[:, None].astype(means.dtype)
    cov = _gram(centred)
    del centred
    cov /= n_cond - 1
    return shrink(cov, level, out=cov), mean_all, level


def _biconvex(c_noise: NDArray, c_data: NDArray, n_cond: int, n_trials: float,
              n_trials_bc: float, max_iters: int = 100, eigh_dtype: Any = np.float64
              ) -> tuple[NDArray, NDArray, int, tuple[NDArray, NDArray] | None]:
    """Alternate PSD signal/noise updates until both change by less than r = 0.999.

    The first comparison is against the raw ``cS = cD - cN / n_trials``, read in row
    blocks (never formed). Returns cSb, cNb, the iteration count and the (ascending)
    eigendecomposition cSb was rebuilt from (None when cSb was positive definite), which
    PSN reuses as its signal basis. At most cN, cD, the previous and current iterates and
    one eigenvector matrix are alive at once. ``eigh_dtype``: see :func:`nearest_psd`; with
    float32 the previous iterates are kept in float32 too.
    """
    t = n_trials_bc
    w_noise = n_cond * (t - 1) * t**2 / (n_cond * t**2 * (t - 1) + n_cond - 1)
    w_data = (n_cond - 1) / (n_cond * t**2 * (t - 1) + n_cond - 1)
    n_units = c_noise.shape[0]
    c_nb = c_noise
    prev_s: Any = lambda i, j: c_data[i:j] - c_noise[i:j] / n_trials  # noqa: E731
    prev_n = c_noise
    n_iters = 0
    eig = None
    low = np.dtype(eigh_dtype) != np.float64
    c_sb: Any = None
    for _ in range(max_iters):
        eig = None  # free the previous pass's eigenvectors first
        buf = c_nb / n_trials
        np.subtract(c_data, buf, out=buf)  # cD - cNb/T, as upstream rounds it
        if low:  # the last iterates live on as their float32 copies: free them
            c_sb = c_nb = None
        c_sb, eig = nearest_psd(buf, overwrite=True, want_eig=True, eigh_dtype=eigh_dtype)
        del buf
        buf = c_data - c_sb
        buf *= w_data * t
        for i in range(0, n_units, 256):  # + w_noise cN, without a units x units temporary
            buf[i:i + 256] += w_noise * c_noise[i:i + 256]
        c_nb = nearest_psd(buf, overwrite=True, eigh_dtype=eigh_dtype)
        del buf
        if n_units == 1:
            raw_s = prev_s(0, 1) if callable(prev_s) else prev_s
            done = abs(raw_s - c_sb).item() < 1e-5 and abs(prev_n - c_nb).item() < 1e-5
        else:
            done = flat_corr(prev_s, c_sb) > 0.999 and flat_corr(prev_n, c_nb) > 0.999
        if done:
            break
        n_iters += 1
        if low:  # only compared at r > 0.999: their float32 rounding cannot matter
            prev_s, prev_n = c_sb.astype(eigh_dtype), c_nb.astype(eigh_dtype)
        else:
            prev_s, prev_n = c_sb, c_nb
    if eig is not None and low:
        prev_s = prev_n = None  # before the float64 copy of the eigenvectors
        values, vectors = eig
        eig = None
        eig = (values, vectors.astype(np.float64))
        del vectors
    return c_sb, c_nb, n_iters, eig


def float32_eigh(data: NDArray) -> bool:
    """Return whether GSN eigendecomposes in float32 for ``data`` (see FLOAT32_EIGH_UNITS)."""
    return bool(data.dtype == np.float32 and data.shape[0] >= FLOAT32_EIGH_UNITS)


# ----------------------------------------------------------------------------- public

@validate_params({"opt": [InstanceOf(dict, "a dict of GSN options"), None]},
                 fixes={"opt": "Pass e.g. $opt={'wantshrinkage': False}."}, owner="perform_gsn")
def perform_gsn(data: Any, opt: dict[str, Any] | None = None) -> dict[str, Any]:
    """Estimate signal and noise covariances and ncsnr with GSN.

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        Responses, float32 or float64 (other numeric types are cast to float64). A
        trial that is NaN marks a missing trial; a trial counts as complete only when
        no unit is NaN (upstream's ``uneven='fast'`` rule). At least 2 trials.
    opt : dict or None
        Official GSN options: ``wantverbose``, ``wantshrinkage`` (default True),
        ``shrinklevels``, ``returns`` (default ``('cN','cS','cNb','cSb')``; also
        ``'eigvecs_signal'``, ``'eigvals_signal'``, ``'eigvecs_difference'``,
        ``'eigvals_difference'``), ``uneven`` ('fast' or 'reference', which here are the
        same estimator), ``backend`` ('auto'/'numpy'), ``device`` ('cpu'),
        ``eigh_device`` (:data:`GSN_CONSTRAINTS` declares them). The caller's dict is never
        modified.

    Returns
    -------
    dict
        The official keys: ``mnN`` (1, n_units) zeros, ``mnS`` (1, n_units), ``ncsnr``
        (n_units,), ``shrinklevelN``, ``shrinklevelD`` (float), ``numiters`` (int),
        plus the matrices named in ``returns`` (n_units, n_units). Arrays have the
        input's dtype.

    Raises
    ------
    ShapeError
        Bad data (see :func:`conform_psn._validation.check_data`): not 3-D numeric,
        fewer than 2 trials, Inf, an all-NaN unit, a condition without a complete trial,
        or a unit without trial-to-trial variability.
    ParameterError
        An unknown option or option value (with the valid choices).

    Notes
    -----
    Implements ``shared/docs/psn_gsn.md`` section 1. Outputs match the official
    numpy backend to about 1e-14 relative on the shared reference cases.

    References
    ----------
    Kay, K. et al. (2024). Disentangling signal and noise in neural responses through
    generative modeling. bioRxiv. https://doi.org/10.1101/2024.04.22.590510

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> out = perform_gsn(rng.standard_normal((5, 40, 3)))
    >>> out["cSb"].shape, out["ncsnr"].shape
    ((5, 5), (5,))
    """
    options = _resolve_options(opt)
    data, layout = check_data(data, who="perform_gsn")
    check_constant_units(data, layout, who="perform_gsn")
    return _gsn_core(data, layout, options)[0]


def _gsn_core(data: NDArray[np.floating], layout: TrialLayout, options: dict[str, Any]
              ) -> tuple[dict[str, Any], tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Run GSN on validated data; return the official dict and float64 (cSb, cNb)."""
    out, (c_sb, c_nb, _) = _gsn_core_eig(data, layout, options)
    return out, (c_sb, c_nb)


def _gsn_core_eig(data: NDArray[np.floating], layout: TrialLayout, options: dict[str, Any]
                  ) -> tuple[dict[str, Any], tuple[NDArray, NDArray, Any]]:
    """Run GSN on validated data (:func:`_gsn_core`, plus the eigendecomposition).

    Returns the official dict and float64 ``(cSb, cNb, eig)``, ``eig`` being the ascending
    eigendecomposition cSb was rebuilt from (None if cSb was positive definite, or if it
    was used for the returned signal eigenbasis), for PSN's signal basis.
    """
    n_units, n_cond, n_trials = data.shape
    if n_cond < 3:
        raise ParameterError(
            f"perform_gsn needs at least 3 conditions to hold some out for choosing the "
            f"shrinkage; got {n_cond}. Add conditions."
        )
    levels = options["levels"]
    if layout.has_nans:
        c_noise, level_n = _fit_noise_uneven(data, layout, levels)
        means, n_cs = _truncated_means(data, layout)
        n_bc = float(layout.counts[layout.counts > 1].sum() / n_cond)
        if n_bc < 1:
            warnings.warn("perform_gsn: the average trial count is below 1; using 1.",
                          ConformWarning, stacklevel=3)
            n_bc = 1.0
        n_diff = float(layout.counts.mean())
    else:
        c_noise, level_n = _fit_noise_even(data, levels)
        means = trial_mean(data)
        n_cs = n_bc = n_diff = n_trials
    c_data, mean_data, level_d = _fit_data(means, levels)
    del means
    sd_noise = np.sqrt(np.maximum(np.diag(c_noise), 0))
    sd_signal = np.sqrt(np.maximum(np.diag(c_data) - np.diag(c_noise) / n_cs, 0))
    ncsnr = np.divide(sd_signal, sd_noise, out=np.zeros_like(sd_signal), where=sd_noise != 0)
    eigh_dtype = np.float32 if float32_eigh(data) else np.float64
    c_sb, c_nb, n_iters, eig = _biconvex(c_noise, c_data, n_cond, n_cs, n_bc,
                                         eigh_dtype=eigh_dtype)
    returns = options["returns"]
    if "cS" in returns:
        c_signal = c_data - c_noise / n_cs
    del c_data
    dtype = data.dtype
    out: dict[str, Any] = {
        "mnN": np.zeros((1, n_units), dtype=dtype),
        "shrinklevelN": level_n,
        "mnS": mean_data[None, :].astype(dtype),
        "shrinklevelD": level_d,
        "ncsnr": ncsnr.astype(dtype),
        "numiters": n_iters,
    }
    if "cN" in returns:
        out["cN"] = c_noise.astype(dtype, copy=False)
    del c_noise
    if "cS" in returns:
        out["cS"] = c_signal.astype(dtype, copy=False)
        del c_signal
    for key, value in (("cNb", c_nb), ("cSb", c_sb)):
        if key in returns:
            out[key] = value.astype(dtype, copy=False)
    for name, matrix in (("signal", lambda: c_sb),
                         ("difference", lambda: _difference(c_sb, c_nb, n_diff))):
        if f"eigvals_{name}" in returns or f"eigvecs_{name}" in returns:
            # the signal basis reuses the eigendecomposition cSb was rebuilt from
            values, vectors = eigh_descending(matrix(), eig if name == "signal" else None)
            eig = None if name == "signal" else eig
            if f"eigvals_{name}" in returns:
                out[f"eigvals_{name}"] = values.astype(dtype)
            if f"eigvecs_{name}" in returns:
                out[f"eigvecs_{name}"] = vectors.astype(dtype)
    return out, (c_sb, c_nb, eig)


def _difference(c_sb: NDArray, c_nb: NDArray, n_diff: float) -> NDArray:
    """Return ``cSb - cNb / n_diff`` (symmetric: both are)."""
    diff = c_nb / n_diff
    np.subtract(c_sb, diff, out=diff)
    return diff
