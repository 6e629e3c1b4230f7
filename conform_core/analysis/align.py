"""Scoring aligners: predict a held-out subject's responses from the other subjects."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData
from ..exceptions import ConformError
from ..metrics import normalized_r2, pearson_r, r2_score
from .plan import Plan
from .scores import Failed, score_rows, timing_rows
from .subject import Prepared

__all__ = ["AlignerScore", "score_aligner"]


@dataclass
class AlignerScore:
    """What scoring one aligner on one held-out subject and denoiser produced.

    Like every task result it has ``rows``, ``unit_scores`` and ``timings``; a cell that
    failed is a :class:`Failed` instead.

    Attributes
    ----------
    subject, denoiser, aligner : str
        The held-out subject, the denoiser label and the aligner label.
    rows : list of dict
        Rows of results.csv.
    unit_scores : list of dict
        At most one entry ``{"subject", "denoiser", "aligner", "encoder": "none", "values"}``;
        ``values`` maps each metric to an array over the held-out subject's units.
    seconds : dict of str to float
        ``aligner:LABEL`` (fit, add the held-out subject, predict) and
        ``aligner:LABEL:scoring`` (metrics).
    """

    subject: str
    denoiser: str
    aligner: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    unit_scores: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def timings(self) -> list[dict[str, Any]]:
        """Rows of timings.csv for this cell's stages."""
        return timing_rows(self.subject, self.denoiser, self.seconds)


def _unit_order(predicted: ConditionData, target: ConditionData) -> NDArray[np.intp] | None:
    """Positions that put ``predicted``'s units in ``target``'s order (None: already are)."""
    ids, wanted = predicted.units.ids, target.units.ids
    if ids.shape == wanted.shape and (ids == wanted).all():
        return None
    lookup = {u: i for i, u in enumerate(ids.tolist())}
    if len(lookup) != len(wanted) or any(u not in lookup for u in wanted.tolist()):
        return None  # the aligner names its units its own way: keep their order
    return np.array([lookup[u] for u in wanted.tolist()], dtype=np.intp)


def score_aligner(plan: Plan, aligner_index: int, denoiser_label: str,
                  prepared: dict[str, Prepared], denoised: dict[str, ConditionData],
                  held_out: str) -> AlignerScore | Failed:
    """Leave-one-subject-out score of one aligner on the output of one denoiser.

    The aligner is fitted on the other subjects' denoised training responses; the held-out
    subject is mapped onto the template with its own denoised training responses
    (``add_subject``). Its held-out test responses are then predicted by mapping the other
    subjects' raw test averages into the shared space, averaging them per stimulus, and
    mapping the average back into the held-out subject's units. Scores are computed
    against the held-out subject's raw test averages, on the test stimuli that at least
    one other subject saw. Per-unit scores follow the held-out subject's units. A cell
    that fails is returned as :class:`Failed`, so the other cells go on.
    """
    entry = plan.stages["aligner"][aligner_index]
    base = {
        "subject": held_out,
        "denoiser": denoiser_label,
        "aligner": entry.label,
        "encoder": "none",
    }
    result = AlignerScore(held_out, denoiser_label, entry.label)
    others = [s for s in plan.subjects if s != held_out and s in denoised]
    t0 = time.perf_counter()
    try:
        if len(others) < 2:
            raise ConformError(
                f"Scoring aligner {entry.label!r} leaves one subject out and fits on "
                f"the rest, which needs at least 3 subjects; got {len(others) + 1}."
            )
        aligner = plan.build("aligner", entry).fit([denoised[s] for s in others])
        aligner.add_subject(denoised[held_out])
        target = prepared[held_out].test.mean()
        stacked = []
        for s in others:
            test = prepared[s].test.mean()
            common = target.stimulus_ids[np.isin(target.stimulus_ids, test.stimulus_ids)]
            if common.size == 0:
                continue
            shared = np.asarray(aligner.transform(test.select(common)).data, dtype=np.float64)
            full = np.full((shared.shape[0], target.n_conditions), np.nan)
            full[:, np.isin(target.stimulus_ids, common)] = shared
            stacked.append(full)
        if not stacked:
            raise ConformError(
                f"No other subject saw any of {held_out!r}'s test stimuli, so "
                f"aligner {entry.label!r} cannot predict them. Share test stimuli."
            )
        with np.errstate(invalid="ignore"):
            average = np.nanmean(np.stack(stacked), axis=0)
        seen = np.isfinite(average).all(axis=0)
        if seen.sum() < 3:
            raise ConformError(
                f"Only {int(seen.sum())} of {held_out!r}'s test stimuli were seen by "
                "other subjects; scoring needs at least 3."
            )
        ids = target.stimulus_ids[seen]
        predicted = aligner.inverse_transform(ConditionData(average[:, seen], ids), held_out)
        result.seconds[f"aligner:{entry.label}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_true = target.select(ids).as_targets()
        y_pred = predicted.as_targets()
        order = _unit_order(predicted, target)
        if order is not None:
            y_pred = y_pred[:, order]
        r2 = r2_score(y_true, y_pred)
        values = {
            "pearson_r": pearson_r(y_true, y_pred),
            "r2": r2,
            "nc_r2": normalized_r2(r2, prepared[held_out].noise_ceiling),
        }
        values = {k: v for k, v in values.items() if k in plan.metrics}
        result.rows = score_rows(values=values, roi=prepared[held_out].roi, **base)
        result.unit_scores = [{**base, "values": values}]
        result.seconds[f"aligner:{entry.label}:scoring"] = time.perf_counter() - t0
    except Exception as exc:  # one failing aligner cell must not stop the others
        result.seconds.setdefault(f"aligner:{entry.label}", time.perf_counter() - t0)
        return Failed.from_exception(exc, **base, seconds=result.seconds)
    return result
