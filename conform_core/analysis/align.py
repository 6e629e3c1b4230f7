"""Scoring aligners: predict a held-out subject's responses from the other subjects.

Leave one subject out, as fmralign and the alignment benchmarks score alignment: the
aligner's template is fitted on the other subjects' denoised *training* responses only; the
held-out subject is added (``add_subject``) from its own denoised training responses only;
its held-out test responses are then predicted from the other subjects' raw test averages
(mapped into the shared space, averaged per stimulus, mapped back into its units) and
scored against its raw test averages. Its test responses reach neither ``fit`` nor
``add_subject``.

With ``[evaluation] context_sizes`` each aligner cell also draws a *data budget* curve: the
held-out subject is added from N of its training images only (seeded draws, the rule of
:mod:`~conform_core.analysis.context`), so the curve shows how many images of a new person
alignment needs, beside the within-subject encoders fitted on the same N.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData, StimulusSet
from ..exceptions import ConformError
from ..metrics import normalized_r2, pearson_r, r2_score
from .context import (
    CONTEXT_COLUMN,
    SubjectContext,
    is_few_shot,
    make_subject_context,
    mean_over_draws,
)
from .plan import Plan
from .scores import Failed, error_row, score_rows, timing_rows
from .subject import Prepared

__all__ = [
    "AlignerScore",
    "score_aligner",
    "BUDGET_METRICS",
    "MIN_ADD_STIMULI",
    "BudgetCurve",
    "budget_metric",
    "budget_curves",
    "budget_skipped_note",
]

MIN_ADD_STIMULI = 3
"""Fewest training images a held-out subject can be added from (the aligners' own minimum)."""

BUDGET_METRICS = ("nc_r2", "r2", "pearson_r")
"""Metric of the alignment budget table and figure: the first of these that was computed."""


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
        Rows of results.csv (with ``context_sizes``: also one set per budget size N,
        with ``n_context``; the fit on all training images carries the subject's number
        of training stimuli, as the encoders' rows do).
    unit_scores : list of dict
        One entry ``{"subject", "denoiser", "aligner", "encoder": "none", "values"}``
        (plus one per budget size, with ``n_context``); ``values`` maps each metric to an
        array over the held-out subject's units.
    seconds : dict of str to float
        ``aligner:LABEL`` (fit, add the held-out subject, predict),
        ``aligner:LABEL:scoring`` (metrics) and, with ``context_sizes``,
        ``aligner:LABEL:budget`` (every addition from N images, with its scoring).
    context : SubjectContext or None
        With ``context_sizes``: the budget draws. Its ``stimulus_ids`` are the training
        images the held-out subject could be added from (those it shares with every other
        subject for a paired aligner; all its training images with ``via_encoder``), its
        ``n_train`` their number, its ``skipped`` the sizes not drawn.
    """

    subject: str
    denoiser: str
    aligner: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    unit_scores: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    context: SubjectContext | None = None

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


def _stimulus_set(ids: NDArray[np.str_], x: NDArray[np.floating]) -> StimulusSet:
    return StimulusSet(ids=np.asarray(ids).astype(str), embeddings=np.asarray(x))


def _training_stimuli(prepared: Mapping[str, Prepared], names: Sequence[str]) -> StimulusSet:
    """Return the training images of ``names`` with their features (first row of each id)."""
    ids: list[str] = []
    rows: list[NDArray[np.floating]] = []
    seen: set[str] = set()
    for name in names:
        p = prepared[name]
        for i, sid in enumerate(p.train.stimulus_ids.tolist()):
            if sid not in seen:
                seen.add(sid)
                ids.append(sid)
                rows.append(p.x_train[i])
    return _stimulus_set(np.array(ids), np.stack(rows))


class _Scorer:
    """One aligner cell: the template fitted once, the held-out subject added (maybe often)."""

    def __init__(self, plan: Plan, entry: Any, prepared: Mapping[str, Prepared],
                 denoised: Mapping[str, ConditionData], held_out: str, others: list[str]):
        self.plan, self.entry, self.prepared = plan, entry, prepared
        self.held_out, self.others = held_out, others
        self.train = denoised[held_out]  # its denoised *training* responses: all that is added
        p = prepared[held_out]
        self.train_stimuli = _stimulus_set(p.train.stimulus_ids, p.x_train)
        self.target = p.test.mean()
        aligner = plan.build("aligner", entry)
        self.via_encoder = bool(getattr(aligner, "via_encoder", None))
        aligner.fit([denoised[s] for s in others], stimuli=_training_stimuli(prepared, others))
        self.template = aligner  # never holds the held-out subject: copied before each add
        shared = self.train.stimulus_ids
        for s in others:
            shared = shared[np.isin(shared, denoised[s].stimulus_ids)]
        # the images it can be added from: its own (unpaired) or those the template saw
        self.pool = self.train.stimulus_ids if self.via_encoder else shared

    def add(self, ids: NDArray[np.str_] | None = None) -> Any:
        """Return a copy of the template with the held-out subject added (``ids``; None: all)."""
        aligner = copy.deepcopy(self.template)
        data, stimuli = self.train, self.train_stimuli
        if ids is not None:
            data, stimuli = data.select(ids), stimuli.select(ids)
        aligner.add_subject(data, stimuli=stimuli)
        return aligner

    def _other_responses(self, aligner: Any, s: str) -> ConditionData | None:
        """Subject ``s``'s responses to the held-out subject's test images it can give.

        Its raw test averages on the images it saw; with ``via_encoder``, its encoder's
        predictions for the others (so no test image needs to be shared).
        """
        target_ids = self.target.stimulus_ids
        test = self.prepared[s].test.mean()
        seen = target_ids[np.isin(target_ids, test.stimulus_ids)]
        unseen = target_ids[~np.isin(target_ids, test.stimulus_ids)]
        if not self.via_encoder or unseen.size == 0:
            return test.select(seen) if seen.size else None
        p = self.prepared[self.held_out]
        x_unseen = p.x_test[np.isin(p.test.stimulus_ids, unseen)]
        ids_unseen = p.test.stimulus_ids[np.isin(p.test.stimulus_ids, unseen)]
        predicted = aligner.predict_responses(s, _stimulus_set(ids_unseen, x_unseen))
        order = _unit_order(predicted, test)
        values = np.asarray(predicted.data, dtype=np.float64)
        if order is not None:
            values = values[order]
        if seen.size:
            values = np.concatenate([np.asarray(test.select(seen).data, dtype=np.float64),
                                     values], axis=1)
        ids = np.concatenate([seen, np.asarray(predicted.stimulus_ids)])
        return ConditionData(values, ids, s, test.units).select(target_ids)

    def predict(self, aligner: Any) -> ConditionData:
        """Predict the held-out subject's test responses from the other subjects."""
        target = self.target
        stacked = []
        for s in self.others:
            given = self._other_responses(aligner, s)
            if given is None:
                continue
            shared = np.asarray(aligner.transform(given).data, dtype=np.float64)
            full = np.full((shared.shape[0], target.n_conditions), np.nan)
            full[:, np.isin(target.stimulus_ids, given.stimulus_ids)] = shared
            stacked.append(full)
        label = self.entry.label
        if not stacked:
            raise ConformError(
                f"No other subject saw any of {self.held_out!r}'s test stimuli, so aligner "
                f"{label!r} cannot predict them. Share test stimuli, or align through an "
                "encoder: params via_encoder = 'ridge'."
            )
        with np.errstate(invalid="ignore"):
            average = np.nanmean(np.stack(stacked), axis=0)
        seen = np.isfinite(average).all(axis=0)
        if seen.sum() < 3:
            raise ConformError(
                f"Only {int(seen.sum())} of {self.held_out!r}'s test stimuli were seen by other "
                "subjects; scoring needs at least 3. Share test stimuli, or align through an "
                "encoder: params via_encoder = 'ridge'."
            )
        ids = target.stimulus_ids[seen]
        return aligner.inverse_transform(ConditionData(average[:, seen], ids), self.held_out)

    def scores(self, predicted: ConditionData) -> dict[str, NDArray[np.float64]]:
        """Return per-unit r, R² and nc_r2 against the held-out subject's raw test averages."""
        y_true = self.target.select(predicted.stimulus_ids).as_targets()
        y_pred = predicted.as_targets()
        order = _unit_order(predicted, self.target)
        if order is not None:
            y_pred = y_pred[:, order]
        r2 = r2_score(y_true, y_pred)
        values = {
            "pearson_r": pearson_r(y_true, y_pred),
            "r2": r2,
            "nc_r2": normalized_r2(r2, self.prepared[self.held_out].noise_ceiling),
        }
        return {k: v for k, v in values.items() if k in self.plan.metrics}


def score_aligner(plan: Plan, aligner_index: int, denoiser_label: str,
                  prepared: dict[str, Prepared], denoised: dict[str, ConditionData],
                  held_out: str) -> AlignerScore | Failed:
    """Leave-one-subject-out score of one aligner on the output of one denoiser.

    The aligner is fitted on the other subjects' denoised training responses (with their
    training images' features as a :class:`~conform_core.data.StimulusSet`, which aligners
    with ``via_encoder`` read); the held-out subject is added (``add_subject``) from
    its own denoised training responses only. Its held-out test responses are then
    predicted by mapping the other subjects' raw test averages into the shared space,
    averaging them per stimulus, and mapping the average back into its units; an aligner
    with ``via_encoder`` takes the test images another subject did not see from that
    subject's encoder (``predict_responses``). Scores are computed against the held-out
    subject's raw test averages, on the test stimuli that at least one other subject gave
    a response for. Per-unit scores follow the held-out subject's units.

    With ``context_sizes``, the held-out subject is also added from N of its training
    images, ``context_draws`` seeded draws per N (:func:`~.context.make_subject_context`
    over the images it can be added from: those shared with every other subject for a
    paired aligner, all its training images with ``via_encoder``), each scored the same
    way; per unit, the mean over draws. Sizes not smaller than those images, or below
    :data:`MIN_ADD_STIMULI`, are skipped (:attr:`AlignerScore.context`). A failing size is
    an ``error`` row of its own; a cell that fails is returned as :class:`Failed`, so the
    other cells go on.
    """
    entry = plan.stages["aligner"][aligner_index]
    base = {"subject": held_out, "denoiser": denoiser_label, "aligner": entry.label,
            "encoder": "none"}
    result = AlignerScore(held_out, denoiser_label, entry.label)
    others = [s for s in plan.subjects if s != held_out and s in denoised]
    context = prepared[held_out].context if held_out in prepared else None
    full: dict[str, Any] = {} if context is None else {CONTEXT_COLUMN: context.n_train}
    t0 = time.perf_counter()
    try:
        if len(others) < 2:
            raise ConformError(
                f"Scoring aligner {entry.label!r} leaves one subject out and fits on "
                f"the rest, which needs at least 3 subjects; got {len(others) + 1}."
            )
        scorer = _Scorer(plan, entry, prepared, denoised, held_out, others)
        predicted = scorer.predict(scorer.add())
        result.seconds[f"aligner:{entry.label}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        values = scorer.scores(predicted)
        result.rows = [{**r, **full} for r in score_rows(values=values,
                                                         roi=prepared[held_out].roi, **base)]
        result.unit_scores = [{**base, **full, "values": values}]
        result.seconds[f"aligner:{entry.label}:scoring"] = time.perf_counter() - t0
    except Exception as exc:  # one failing aligner cell must not stop the others
        result.seconds.setdefault(f"aligner:{entry.label}", time.perf_counter() - t0)
        return Failed.from_exception(exc, **base, seconds=result.seconds)
    if plan.context_sizes:
        t0 = time.perf_counter()
        _budget(plan, scorer, result, base)
        result.seconds[f"aligner:{entry.label}:budget"] = time.perf_counter() - t0
    return result


def _budget(plan: Plan, scorer: _Scorer, result: AlignerScore, base: dict[str, Any]) -> None:
    """Add the rows of the held-out subject added from N of its training images, per N."""
    pool = scorer.pool
    sizes = [n for n in plan.context_sizes if n >= MIN_ADD_STIMULI]
    drawn = make_subject_context(result.subject, pool, sizes, plan.context_draws, plan.seed)
    too_few = tuple(n for n in plan.context_sizes if n < MIN_ADD_STIMULI)
    result.context = SubjectContext(drawn.subject, drawn.n_train, drawn.stimulus_ids,
                                    drawn.draws, tuple(sorted(too_few + drawn.skipped)))
    roi = scorer.prepared[result.subject].roi
    rows: list[dict[str, Any]] = []  # before the fit on all images: n_context ascending
    for n in drawn.sizes:
        try:
            values = mean_over_draws([
                scorer.scores(scorer.predict(scorer.add(drawn.stimulus_ids[d.indices])))
                for d in drawn.draws_of(n)
            ])
        except Exception as exc:  # one failing size must not stop the others
            row = error_row(exc, **base)
            row["status"] = f"error: n_context={n}: " + row["status"][len("error: "):]
            rows.append({**row, CONTEXT_COLUMN: n})
            continue
        rows += [{**r, CONTEXT_COLUMN: n} for r in score_rows(values=values, roi=roi, **base)]
        result.unit_scores.insert(len(result.unit_scores) - 1,
                                  {**base, CONTEXT_COLUMN: n, "values": values})
    result.rows = rows + result.rows


# ----------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class BudgetCurve:
    """One denoiser → aligner (or encoder) score as a held-out subject's images grow.

    Attributes
    ----------
    denoiser, method : str
        Labels of the cell (``method``: the aligner's, or the encoder's).
    kind : str
        ``"aligner"`` or ``"encoder"``.
    by_size : dict of int to list of float
        N -> the value (ROI "all", median over units of the per-unit mean over draws) of
        each (held-out) subject added from, or fitted on, N training images.
    full : list of float
        The value of each subject with all its training images.
    n_used : list of int
        How many images each subject in ``full`` had: an aligner's images it can be added
        from (for a paired aligner those shared with the other subjects), an encoder's
        training stimuli.
    """

    denoiser: str
    method: str
    kind: str
    by_size: dict[int, list[float]]
    full: list[float]
    n_used: list[int]


def budget_metric(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """Return the metric of the alignment budget (see :data:`BUDGET_METRICS`), or None.

    None when no aligner row has ``n_context`` (no ``context_sizes``, or no aligner).
    """
    present = {r["metric"] for r in rows
               if r.get(CONTEXT_COLUMN, "") not in ("", None) and r["aligner"] != "none"
               and r["status"] == "ok"}
    return next((m for m in BUDGET_METRICS if m in present), None)


def budget_curves(rows: Iterable[Mapping[str, Any]], contexts: Mapping[str, SubjectContext],
                  aligner_contexts: Mapping[str, Mapping[str, SubjectContext]],
                  metric: str) -> list[BudgetCurve]:
    """Gather ``metric``'s rows with ``n_context`` into one curve per denoiser → aligner/encoder.

    Parameters
    ----------
    rows : iterable of dict
        Rows of results.csv; only ROI "all" and status ``ok`` count.
    contexts : mapping of str to SubjectContext
        Each subject's encoder draws (``AnalysisResult.context``): which rows are few-shot.
    aligner_contexts : mapping of str to mapping of str to SubjectContext
        Aligner label -> held-out subject -> its budget draws
        (``AnalysisResult.aligner_context``): how many images each aligner could use.
    metric : str
        The metric to gather.

    Returns
    -------
    list of BudgetCurve
        Aligners first, then encoders, each sorted by denoiser and label.
    """
    by_size: dict[tuple[str, str, str], dict[int, list[float]]] = {}
    full: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
    for r in rows:
        n = r.get(CONTEXT_COLUMN, "")
        if (n in ("", None) or r["metric"] != metric or r["roi"] != "all"
                or r["status"] != "ok" or (r["aligner"] == "none") == (r["encoder"] == "none")):
            continue
        kind = "aligner" if r["aligner"] != "none" else "encoder"
        key = (kind, str(r["denoiser"]), str(r[kind]))
        by_size.setdefault(key, {})
        if is_few_shot(r, contexts):
            by_size[key].setdefault(int(n), []).append(float(r["value"]))
            continue
        used = int(n)
        drawn = aligner_contexts.get(key[2], {}).get(str(r["subject"])) if kind == "aligner" \
            else None
        if drawn is not None:
            used = drawn.n_train
        full.setdefault(key, []).append((float(r["value"]), used))
    return [
        BudgetCurve(den, name, kind, dict(sorted(by_size[kind, den, name].items())),
                    [v for v, _ in full.get((kind, den, name), [])],
                    [n for _, n in full.get((kind, den, name), [])])
        for kind, den, name in sorted(by_size, key=lambda k: (k[0] != "aligner", k[1], k[2]))
    ]


def budget_skipped_note(aligner_contexts: Mapping[str, Mapping[str, SubjectContext]]) -> str | None:
    """One sentence naming the budget sizes skipped, per aligner and held-out subject, or None."""
    parts = []
    for label in sorted(aligner_contexts):
        skipped: dict[int, list[str]] = {}
        for name in sorted(aligner_contexts[label]):
            for n in aligner_contexts[label][name].skipped:
                skipped.setdefault(n, []).append(name)
        for n, names in sorted(skipped.items()):
            shown = ", ".join(f"{s} ({aligner_contexts[label][s].n_train})" for s in names[:8])
            more = f" and {len(names) - 8} more" if len(names) > 8 else ""
            parts.append(f"{label} N={n} for {shown}{more}")
    if not parts:
        return None
    return (
        "Alignment budget: sizes N not smaller than the images a held-out subject could be "
        "added from (in brackets: for a paired aligner, its training images shared with every "
        f"other subject; with via_encoder, all its training images), or below {MIN_ADD_STIMULI}, "
        "were skipped: " + "; ".join(parts) + ". Its addition from all of them is the curve's "
        "last point."
    )
