"""Scoring aligners: predict a held-out subject's responses from the other subjects."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import ConditionData
from ..exceptions import ConformError
from ..metrics import normalized_r2, pearson_r, r2_score
from .plan import Plan
from .scores import error_row, score_rows
from .subject import Prepared

__all__ = ["score_aligner"]


def score_aligner(plan: Plan, aligner_index: int, denoiser_label: str,
                  prepared: dict[str, Prepared], denoised: dict[str, ConditionData],
                  held_out: str) -> list[dict[str, Any]]:
    """Leave-one-subject-out score of one aligner on the output of one denoiser.

    The aligner is fitted on the other subjects' denoised training responses; the held-out
    subject is mapped onto the template with its own denoised training responses
    (``add_subject``). Its held-out test responses are then predicted by mapping the other
    subjects' raw test averages into the shared space, averaging them per stimulus, and
    mapping the average back into the held-out subject's units. Scores are computed
    against the held-out subject's raw test averages, on the test stimuli that at least
    one other subject saw.
    """
    entry = plan.stages["aligner"][aligner_index]
    base = {"subject": held_out, "denoiser": denoiser_label, "aligner": entry.label, "encoder": "none"}
    others = [s for s in plan.subjects if s != held_out and s in denoised]
    try:
        if len(others) < 2:
            raise ConformError(f"Scoring aligner {entry.label!r} leaves one subject out and fits on "
                               f"the rest, which needs at least 3 subjects; got {len(others) + 1}.")
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
            raise ConformError(f"No other subject saw any of {held_out!r}'s test stimuli, so "
                               f"aligner {entry.label!r} cannot predict them. Share test stimuli.")
        with np.errstate(invalid="ignore"):
            average = np.nanmean(np.stack(stacked), axis=0)
        seen = np.isfinite(average).all(axis=0)
        if seen.sum() < 3:
            raise ConformError(f"Only {int(seen.sum())} of {held_out!r}'s test stimuli were seen by "
                               "other subjects; scoring needs at least 3.")
        ids = target.stimulus_ids[seen]
        predicted = aligner.inverse_transform(ConditionData(average[:, seen], ids), held_out)
        y_true = target.select(ids).as_targets()
        y_pred = predicted.as_targets()
        r2 = r2_score(y_true, y_pred)
        values = {"pearson_r": pearson_r(y_true, y_pred), "r2": r2,
                  "nc_r2": normalized_r2(r2, prepared[held_out].noise_ceiling)}
        values = {k: v for k, v in values.items() if k in plan.metrics}
        return score_rows(values=values, roi=prepared[held_out].roi, **base)
    except Exception as exc:  # one failing aligner cell must not stop the others
        return [error_row(exc, **base)]
