"""Condition-level outputs: single-trial betas averaged per condition, with a t-like map.

GLMsingle estimates one beta per trial. Many analyses want one map per condition: the mean of
its trials' betas, how many trials went into it, and how reliable the mean is. The t-like map
is ``mean / (sd / sqrt(n))`` with the sample SD (ddof 1) over the condition's trials: a
one-sample t statistic against 0 that treats trials as independent (they are not quite:
neighbouring trials share noise), so read it as a signal-to-noise map, not a p-value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ShapeError

__all__ = ["ConditionBetas", "condition_betas", "conditions_table"]


@dataclass(frozen=True)
class ConditionBetas:
    """Betas averaged per condition.

    Attributes
    ----------
    conditions : ndarray of shape (n_conditions,), dtype str
        Condition names (sorted unique labels of the trials, or as given).
    trial_condition : ndarray of shape (n_trials,), dtype int64
        Index into ``conditions`` of each trial, in the betas' trial order.
    n_trials : ndarray of shape (n_conditions,), dtype int64
        Trials per condition.
    mean : ndarray of shape (*spatial, n_conditions), float32
        Mean beta per unit and condition.
    sd : ndarray of shape (*spatial, n_conditions), float32
        Sample standard deviation (ddof 1) over the condition's trials; NaN with one trial.
    t : ndarray of shape (*spatial, n_conditions), float32
        ``mean / (sd / sqrt(n))``; NaN where n < 2 or sd == 0.
    """

    conditions: NDArray[np.str_]
    trial_condition: NDArray[np.int64]
    n_trials: NDArray[np.int64]
    mean: NDArray[np.float32]
    sd: NDArray[np.float32]
    t: NDArray[np.float32]


def condition_betas(betas: Any, trial_labels: Sequence[Any] | NDArray[Any],
                    conditions: Sequence[Any] | None = None) -> ConditionBetas:
    """Average single-trial betas per condition; return means, counts and a t-like map.

    Parameters
    ----------
    betas : array-like of shape (*spatial, n_trials)
        Single-trial betas, trials on the last axis (GLMsingle's ``betasmd``: ``V x 1 x 1 x
        N`` or ``X x Y x Z x N``).
    trial_labels : sequence of length n_trials
        Condition label of each trial, in the same order.
    conditions : sequence or None, default=None
        The conditions, in the order of the outputs' last axis (default: sorted unique
        labels). Conditions without trials get n = 0 and NaN maps.

    Returns
    -------
    ConditionBetas

    Raises
    ------
    ShapeError
        If the labels do not match the betas' trial axis, or a label is not in ``conditions``.
    """
    b = np.asarray(betas)
    labels = np.asarray(trial_labels).astype(str).ravel()
    if b.ndim < 1 or b.shape[-1] != labels.size:
        raise ShapeError(f"betas have {b.shape[-1] if b.ndim else 0} trials (last axis of shape "
                         f"{b.shape}) but {labels.size} trial labels were given. Pass one label "
                         "per trial, in the betas' trial order (trials.tsv).")
    names = np.unique(labels) if conditions is None else np.asarray(conditions).astype(str)
    lookup = {c: i for i, c in enumerate(names.tolist())}
    missing = sorted(set(labels.tolist()) - set(lookup))
    if missing:
        raise ShapeError(f"Trial label(s) {missing[:5]} are not among the {names.size} conditions "
                         "given. Pass every condition, or conditions=None for all labels.")
    index = np.array([lookup[x] for x in labels.tolist()], np.int64)
    n = np.bincount(index, minlength=names.size).astype(np.int64)
    spatial = b.shape[:-1]
    flat = np.asarray(b.reshape(-1, labels.size), np.float64)
    mean = np.full((flat.shape[0], names.size), np.nan)
    sd = np.full_like(mean, np.nan)
    for c in np.flatnonzero(n):
        x = flat[:, index == c]
        mean[:, c] = x.mean(axis=1)
        if n[c] > 1:
            sd[:, c] = x.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(np.maximum(n, 1)))
    t[:, n < 2] = np.nan
    t[~np.isfinite(t)] = np.nan  # sd == 0: no spread to compare the mean with
    shape = (*spatial, names.size)
    return ConditionBetas(conditions=names, trial_condition=index, n_trials=n,
                          mean=mean.reshape(shape).astype(np.float32),
                          sd=sd.reshape(shape).astype(np.float32),
                          t=t.reshape(shape).astype(np.float32))


def conditions_table(result: ConditionBetas, trial_run: Sequence[int] | None = None,
                     run_session: Sequence[int] | None = None) -> str:
    """Render ``conditions.tsv``: index, condition, n_trials (and n_runs, n_sessions).

    Parameters
    ----------
    result : ConditionBetas
    trial_run : sequence of int or None
        Run of each trial (adds ``n_runs``).
    run_session : sequence of int or None
        Session of each run (adds ``n_sessions``; needs ``trial_run``).
    """
    head = ["condition_index", "condition", "n_trials"]
    runs = None if trial_run is None else np.asarray(trial_run, np.int64)
    if runs is not None:
        head.append("n_runs")
        if run_session is not None:
            head.append("n_sessions")
    lines = ["\t".join(head)]
    for i, name in enumerate(result.conditions.tolist()):
        row = [str(i), name, str(int(result.n_trials[i]))]
        if runs is not None:
            used = np.unique(runs[result.trial_condition == i])
            row.append(str(used.size))
            if run_session is not None:
                row.append(str(np.unique(np.asarray(run_session)[used]).size))
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"
