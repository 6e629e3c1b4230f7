"""``n_components``: the shared-space dimension, given or chosen by cross-validation.

Private to :mod:`conform_core.components.aligner`: :func:`choose_n_components` resolves the
``n_components`` parameter of any aligner on its paired (validated, restricted) subjects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData
from ..exceptions import ParameterError
from ._aligner_paired import MIN_SHARED

if TYPE_CHECKING:
    from .aligner import Aligner

MAX_CANDIDATES = 7
"""Most values of n_components that "auto" scores."""

MAX_LEFT_OUT = 3
"""Most training subjects "auto" leaves out in turn."""

TIE = 1e-3
"""Mean held-out R² within this of the best counts as a tie (won by the smaller dimension):
smaller differences are below what two halves of the shared stimuli can tell apart."""


def choose_n_components(aligner: Aligner, paired: list[ConditionData]) -> int:
    """Return the shared dimension to fit: the given value, the largest, or the CV choice.

    Raises
    ------
    ParameterError
        An int ``n_components`` above ``aligner._max_components(paired)`` (clipped instead
        for a parcel's aligner).
    """
    value = aligner._param("n_components")
    limit = aligner._max_components(paired)
    if value is None:
        return limit
    if value == "auto":
        return cross_validate(aligner, paired, limit)
    k = int(value)
    if k > limit and getattr(aligner, "_clip_components", False):
        return limit
    if k > limit:
        raise ParameterError(
            param="n_components", value=value, owner=aligner,
            allowed=f"at most {limit} here (the shared stimuli minus one, and each "
                    "subject's number of units)",
            fix="Use 'auto' to choose it by cross-validation, or None for the largest.")
    return k


def cross_validate(aligner: Aligner, paired: list[ConditionData], limit: int) -> int:
    """Choose ``n_components`` by cross-validation within the training subjects.

    The shared stimuli are split at random into two halves. For at most 3 left-out
    subjects (chosen by ``random_state``) and each half A: a clone is fitted on the
    other subjects' responses to half A, the left-out subject is added from its half A,
    and its half B is predicted by mapping the others' half B into the shared space,
    averaging and mapping back; the score is the mean R² over its units. Candidates are
    1, 2, 4, ... up to the largest value a half allows (that value included; at most 7,
    geometric). The best mean wins; ties (within 0.001) go to the smaller. With two
    subjects, both are fitted on half A and each predicts the other's half B. With fewer
    than 6 shared stimuli there are no two halves of 3: the largest value is kept,
    unscored. Sets ``aligner.cv_scores_``.
    """
    ids = np.asarray(paired[0].stimulus_ids)
    if ids.size < 2 * MIN_SHARED:
        return limit
    rng = np.random.default_rng(aligner._param("random_state"))
    order = rng.permutation(ids.size)
    halves = (ids[np.sort(order[: ids.size // 2])], ids[np.sort(order[ids.size // 2:])])
    left_out = np.sort(rng.choice(len(paired), size=min(MAX_LEFT_OUT, len(paired)),
                                  replace=False))
    cap = min([limit] + [aligner._max_components([s.select(h) for s in paired])
                         for h in halves])
    scores = {}
    for k in candidates(max(1, cap)):
        folds = [cv_score(aligner, paired, int(j), halves[a], halves[1 - a], k)
                 for j in left_out for a in (0, 1)]
        scores[k] = float(np.mean(folds))
    aligner.cv_scores_ = scores
    top = max(np.nan_to_num(v, nan=-np.inf) for v in scores.values())
    return int(min([k for k, v in scores.items() if np.isfinite(v) and v >= top - TIE]
                   or [min(scores)]))


def cv_score(aligner: Aligner, paired: list[ConditionData], j: int, train: NDArray[np.str_],
             test: NDArray[np.str_], k: int) -> float:
    """Return the held-out R² of subject ``j`` on ``test``, a clone fitted on ``train`` at ``k``."""
    est = aligner._whole_clone()
    target = paired[j]
    others = [s for i, s in enumerate(paired) if i != j]
    if len(others) >= 2:
        est._fit_paired([s.select(train) for s in others], k)
        est._add_subject(target.select(train))
        if target.subject not in est.subjects_:
            est.subjects_.append(target.subject)
        est._units[target.subject] = target.units
    else:
        est._fit_paired([s.select(train) for s in paired], k)
    shared = [np.asarray(est.transform(s.select(test)).data, dtype=np.float64)
              for s in others]
    first = est.transform(others[0].select(test))
    average = first.with_data(np.mean(shared, axis=0))
    predicted = est.inverse_transform(average, target.subject)
    return mean_r2(np.asarray(target.select(test).data, dtype=np.float64),
                   np.asarray(predicted.data, dtype=np.float64))


def candidates(limit: int) -> list[int]:
    """1, 2, 4, ... below ``limit``, then ``limit``; geometric, at most 7 values, when longer."""
    grid = [2 ** i for i in range(int(np.log2(limit)) + 1) if 2 ** i < limit] + [limit]
    if len(grid) > MAX_CANDIDATES:
        grid = sorted({int(round(v)) for v in np.geomspace(1, limit, MAX_CANDIDATES)})
    return grid


def mean_r2(truth: NDArray[np.float64], predicted: NDArray[np.float64]) -> float:
    """Mean over units (rows) of R² across conditions; units with no variance are skipped."""
    ss_tot = ((truth - truth.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    ss_res = ((truth - predicted) ** 2).sum(axis=1)
    valid = ss_tot > 0
    if not valid.any():
        return float("nan")
    return float(np.mean(1.0 - ss_res[valid] / ss_tot[valid]))
