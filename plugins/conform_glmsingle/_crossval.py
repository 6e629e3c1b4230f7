"""Cross-validation on betas, the PC stopping rule and the automatic R² threshold.

``calcbadness`` (glmsingle.md 4.9) compares, for every held-out trial, the reference betas
with the candidate betas of every training trial of the same condition. The candidate
betas are fitted once on all runs, so the folds only decide *which pairs* of trials are
compared. We collect the pairs of all folds into one sparse trial-by-trial count matrix P
and expand the sum of squares::

    badness[v] = sum_j w_j z[v,j]^2 - 2 sum_j z[v,j] (z0 P)[v,j] + sum_t n_t z0[v,t]^2

(``w = column sums of P``, ``n = row sums``), which costs two passes over the betas per
candidate instead of a loop over folds, trials and candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

if TYPE_CHECKING:
    from ._mixture import TwoGaussians

__all__ = [
    "BadnessScorer",
    "TrialPairs",
    "check_xvalscheme",
    "findtailthreshold",
    "robustrange",
    "select_noise_regressors",
]


def check_xvalscheme(xvalscheme: object, n_runs: int) -> list[NDArray[np.int64]]:
    """Normalise ``xvalscheme`` to a list of arrays of 0-based run indices.

    Accepts ints, lists and arrays (the official package accepts only ints and arrays of
    two or more runs; see glmsingle.md pitfall 7).
    """
    if xvalscheme is None:
        return [np.array([r]) for r in range(n_runs)]
    try:
        folds = [np.atleast_1d(np.asarray(f)).astype(np.int64).ravel() for f in xvalscheme]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ParameterError(
            f"xvalscheme must be a list of groups of 0-based run indices; got {xvalscheme!r}. "
            "Example for 4 runs, leave-one-out: [[0], [1], [2], [3]]."
        ) from None
    for i, f in enumerate(folds):
        if f.size == 0 or f.min() < 0 or f.max() >= n_runs:
            raise ParameterError(
                f"xvalscheme[{i}] = {f.tolist()} must hold 0-based run indices in [0, {n_runs - 1}]. "
                "Run indices start at 0 in Python (MATLAB's start at 1)."
            )
        if np.unique(f).size == n_runs:
            raise ParameterError(
                f"xvalscheme[{i}] = {f.tolist()} holds out every run, leaving none to train on. "
                "Hold out a subset of the runs in each group."
            )
    return folds


@dataclass(frozen=True)
class TrialPairs:
    """The design's part of ``calcbadness``: which held-out trial meets which training trial.

    The same for every group of units, so a fit builds it once (``Context.trial_pairs``).

    Attributes
    ----------
    pairs : scipy.sparse.csr_matrix of shape (n_trials, n_trials)
        1 where held-out trial t (row) and training trial j (column) show the same condition.
    uses : ndarray of shape (n_trials,)
        Times each trial is used as a training trial (column sums).
    comparisons : ndarray of shape (n_trials,)
        Comparisons of each held-out trial (row sums).
    sessions : list
        Each session's trial columns, or ``[None]`` for a single session (no copy needed).
    """

    pairs: scipy.sparse.csr_matrix
    uses: NDArray[np.float64]
    comparisons: NDArray[np.float64]
    sessions: list[NDArray[np.int64] | None]

    @classmethod
    def build(cls, folds: Sequence[NDArray[np.int64]], trial_run: NDArray[np.int64],
              stimorder: NDArray[np.int64], session_of_run: NDArray[np.int64]) -> TrialPairs:
        """Pairs of a design.

        Parameters
        ----------
        folds : list of ndarray
            Held-out run groups.
        trial_run : ndarray of shape (n_trials,)
            Run of each trial.
        stimorder : ndarray of shape (n_trials,)
            Condition of each trial.
        session_of_run : ndarray of shape (n_runs,)
            Session label of each run (any integers).
        """
        n = trial_run.shape[0]
        rows, cols = [], []
        for fold in folds:
            test = np.isin(trial_run, fold)
            t_idx = np.flatnonzero(test)
            j_idx = np.flatnonzero(~test)
            same = stimorder[t_idx][:, None] == stimorder[j_idx][None, :]
            tt, jj = np.nonzero(same)
            rows.append(t_idx[tt])
            cols.append(j_idx[jj])
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        pairs = scipy.sparse.csr_matrix((np.ones(r.shape[0]), (r, c)), shape=(n, n))
        session_of_trial = np.asarray(session_of_run)[trial_run]
        labels = np.unique(session_of_trial)
        sessions: list[NDArray[np.int64] | None] = (
            [None] if labels.size == 1 else
            [np.flatnonzero(session_of_trial == s) for s in labels])
        return cls(pairs, np.asarray(pairs.sum(axis=0)).ravel(),
                   np.asarray(pairs.sum(axis=1)).ravel(), sessions)


class BadnessScorer:
    """Vectorised ``calcbadness`` for one set of units and many candidate betas.

    Parameters
    ----------
    design : TrialPairs
        The design's trial pairs (:meth:`TrialPairs.build`).
    reference : ndarray of shape (n_units, n_trials)
        Betas of the reference model (0 PCs, or fraction 1).
    """

    def __init__(self, design: TrialPairs, reference: NDArray[np.floating]) -> None:
        self._w, self._sessions = design.uses, design.sessions
        ref = np.asarray(reference, np.float64)
        self._mu, self._sd, self._zero = [], [], []
        for cols_s in self._sessions:
            sub = ref if cols_s is None else ref[:, cols_s]
            self._mu.append(sub.mean(axis=1, keepdims=True))
            sd = (
                sub.std(axis=1, ddof=1, keepdims=True)
                if sub.shape[1] > 1
                else np.zeros_like(sub[:, :1])
            )
            self._sd.append(sd)
            self._zero.append(np.flatnonzero(sd.ravel() == 0))
        z0 = self.zscore(ref)
        self._u = np.asarray((design.pairs.T @ z0.T).T)  # (n_units, n_trials): paired test z0
        self._const = np.einsum("ij,ij,j->i", z0, z0, design.comparisons)

    def zscore(self, betas: NDArray[np.floating]) -> NDArray[np.float64]:
        """Z-score betas per session with the reference's mean and SD (SD 0 gives 0)."""
        z = None
        for cols_s, mu, sd, zero in zip(self._sessions, self._mu, self._sd, self._zero):
            block = np.subtract(betas if cols_s is None else betas[:, cols_s], mu,
                                dtype=np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                block /= sd
            block[zero] = 0.0
            if cols_s is None:  # one session holding every trial: no copy
                return block
            if z is None:
                z = np.empty(betas.shape)
            z[:, cols_s] = block
        assert z is not None
        return z

    def score(self, betas: NDArray[np.floating]) -> NDArray[np.float64]:
        """Return the summed squared error (n_units,) of one candidate (lower is better)."""
        z = self.zscore(betas)
        return (
            np.einsum("ij,ij,j->i", z, z, self._w)
            - 2.0 * np.einsum("ij,ij->i", z, self._u)
            + self._const
        )


def select_noise_regressors(xvaltrend: NDArray[np.floating], pcstop: float) -> int:
    """Choose the number of PCs from the cross-validation curve (higher is better).

    The first K that is a running maximum of ``curve = xvaltrend - xvaltrend[0]`` with
    ``curve[K] * pcstop >= max(curve)`` (0 when no K improves on 0 PCs).
    """
    curve = np.asarray(xvaltrend, np.float64) - float(xvaltrend[0])
    best, chosen = -np.inf, 0
    top = curve.max()
    for k in range(curve.shape[0]):
        if curve[k] > best:
            chosen, best = k, curve[k]
            if best * pcstop >= top:
                break
    return int(chosen)


def robustrange(values: NDArray[np.floating]) -> tuple[float, float]:
    """Return a range of ``values`` that ignores outliers (GLMsingle's ``robustrange``)."""
    m = np.asarray(values).ravel()
    while True:
        absmn, absmx = m.min(), m.max()
        p01, p10, p50, p90, p999 = np.percentile(m, [0.1, 10, 50, 90, 99.9])
        pmn = p50 - 5 * (p50 - p10)
        pmx = p50 + 5 * (p90 - p50)
        rerun = False
        finalmx = finalmn = 0.0
        if p999 <= pmx:
            finalmx = absmx if absmx <= p50 + 1.1 * (p999 - p50) else p999
        else:
            rerun = True
            m = m[~(m > pmx)]
        if p01 >= pmn:
            finalmn = absmn if absmn >= p50 - 1.1 * (p50 - p01) else p01
        else:
            rerun = True
            m = m[~(m < pmn)]
        if not rerun:
            return float(finalmn), float(finalmx)


def findtailthreshold(values: NDArray[np.floating], random_state: int | None = 0) -> float:
    """Return the value above which the upper component of a 2-Gaussian mixture dominates.

    Follows GLMsingle (glmsingle.md 4.10): a 2-component 1-D mixture (3 restarts, tol 1e-10,
    no covariance regularisation) on the finite values, its posterior on 500 points across
    the robust range (widened to both means), scanned down from the top until the upper
    component's posterior drops to 0.5. ``random_state=0`` reproduces the official package
    run with the global numpy seed 0 (as in the reference data); the global RNG is untouched.
    """
    # float64, as in the official fit (its type-A R² is float64): the mixture fit is sensitive
    # to the input precision where the R² histogram is weakly bimodal (a float32 copy moved
    # the threshold from 5.92 to 6.00 % on a 300-unit synthetic session)
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2 or np.ptp(v) == 0:
        return float(v[0]) if v.size else 0.0
    if v.size > 1_000_000:
        rng = np.random.RandomState(0)
        v = v[rng.permutation(v.size)[:1_000_000]]
    from threadpoolctl import threadpool_limits

    from ._mixture import fit_two_gaussians

    # a 1-D mixture: threads only add overhead; tol=1e-10 often stops at max_iter (as in the
    # official package), which is harmless here because the threshold lives on a 500-point grid
    with threadpool_limits(limits=1):
        gm = fit_two_gaussians(v, n_init=3, tol=1e-10, random_state=random_state)
        if gm is None:  # a collapsed component: scikit-learn's own fit says what went wrong
            gm = _sklearn_mixture(v, random_state)
    lo, hi = robustrange(v)
    means = gm.means
    lo, hi = min(lo, means.min()), max(hi, means.max())
    grid = np.linspace(lo, hi, 500)
    post = gm.predict_proba(grid)
    which = 0 if post[-1, 0] > 0.5 else 1
    ix = 0
    for ix in range(grid.shape[0] - 1, -1, -1):
        if post[ix, which] <= 0.5:
            break
    return float(grid[ix])


def _sklearn_mixture(v: NDArray[np.float64], random_state: int | None) -> TwoGaussians:
    """scikit-learn's ``GaussianMixture`` fit, where the 1-D EM gives up (it raises the same)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    from ._mixture import TwoGaussians

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(
            n_components=2, tol=1e-10, reg_covar=0, n_init=3, random_state=random_state
        ).fit(v.reshape(-1, 1))
    return TwoGaussians(gm.weights_, gm.means_.ravel(), gm.precisions_cholesky_.ravel(),
                        float(gm.lower_bound_), bool(gm.converged_))
