"""One subject's part of an analysis: load, GLM, split, features; then denoiser x encoder cells."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..components import Encoder
from ..data import ConditionData, ConditionTrials, Subject, TrialData
from ..exceptions import ShapeError
from ..metrics import heldout_trial_terms, noise_ceiling_from_trials
from .context import (
    CONTEXT_COLUMN,
    ContextDraw,
    SubjectContext,
    make_subject_context,
    mean_over_draws,
)
from .plan import Plan
from .scores import (
    Failed,
    UnitTable,
    ceiling_reasons,
    error_row,
    score_rows,
    timing_rows,
    truth_rows,
)
from .uncertainty import (
    is_rank_zero,
    resample_weights,
    summarise_resamples,
    weighted_nmse,
    weighted_scores,
)

__all__ = ["Prepared", "CellResult", "prepare_subject", "run_denoiser_cell", "split_stimuli"]


@dataclass
class Prepared:
    """A subject ready for the grid: training and held-out trials, features, ground truth.

    ``noise_ceiling`` and ``ceiling_reason`` (why it is 0, see :func:`ceiling_reasons`) are
    per unit of ``test.units``; ``seconds`` maps a stage (load, glm, features,
    noise_ceiling) to its duration; ``rows`` are the noise ceiling's rows of results.csv.
    ``context`` holds the few-shot draws of the training stimuli when the plan has
    ``context_sizes`` (None otherwise). Like every task result it has ``rows``,
    ``unit_scores`` and ``timings``.
    """

    subject: str
    train: ConditionTrials
    test: ConditionTrials
    x_train: NDArray[np.float32]
    x_test: NDArray[np.float32]
    roi: NDArray[np.str_] | None
    noise_ceiling: NDArray[np.float64]
    truth_train: ConditionData | None = None
    truth_test: ConditionData | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    ceiling_reason: NDArray[np.str_] | None = None
    context: SubjectContext | None = None
    feature_space: str = ""

    @property
    def unit_scores(self) -> list[dict[str, Any]]:
        """The per-unit noise ceiling (denoiser, aligner and encoder ``"none"``)."""
        return [{"subject": self.subject, "denoiser": "none", "aligner": "none", "encoder": "none",
                 "values": {"noise_ceiling": self.noise_ceiling}}]

    @property
    def timings(self) -> list[dict[str, Any]]:
        """Rows of timings.csv for the per-subject stages (``denoiser`` empty)."""
        return timing_rows(self.subject, "", self.seconds)

    def unit_table(self) -> UnitTable:
        """Return the units this subject's scores refer to, with their noise ceiling and reasons."""
        assert self.ceiling_reason is not None
        return UnitTable(self.subject, self.test.units, self.noise_ceiling, self.ceiling_reason)


@dataclass
class CellResult:
    """Scores of one denoiser (with every encoder) on one subject.

    ``seconds`` maps a stage to its duration: ``denoiser:LABEL`` (fit and transform),
    ``denoiser:LABEL:scoring`` (error to the true signal), ``encoder:LABEL`` (fit and
    predict), ``encoder:LABEL:scoring`` (metrics) and, with ``context_sizes``,
    ``encoder:LABEL:few-shot`` (every fit on N training stimuli, with its scoring). An
    encoder that failed has an ``error`` row among ``rows``; a denoiser that failed makes
    the cell a :class:`Failed`. ``bootstrap`` maps (subject, denoiser, aligner, encoder,
    metric) to the ROI "all" value on each bootstrap resample of the test stimuli (see
    :mod:`~conform_core.analysis.uncertainty`); ``rank_zero`` says whether the fitted
    denoiser predicts each unit's mean whatever the stimulus.
    """

    subject: str
    denoiser: str
    rows: list[dict[str, Any]]
    unit_scores: list[dict[str, Any]]
    denoised_train: ConditionData | None
    seconds: dict[str, float]
    bootstrap: dict[tuple[str, ...], NDArray[np.float64]] = field(default_factory=dict)
    rank_zero: bool = False

    @property
    def timings(self) -> list[dict[str, Any]]:
        """Rows of timings.csv for this cell's stages."""
        return timing_rows(self.subject, self.denoiser, self.seconds)


def split_stimuli(
    subject: Subject, shown: NDArray[np.str_], *, seed: int, test_fraction: float
) -> tuple[NDArray[np.str_], NDArray[np.str_]]:
    """Return the (train, test) stimulus ids of ``subject`` that ``conform fit`` scores on.

    The dataset's own split when the subject has one; otherwise a seeded draw of
    ``test_fraction`` of the stimuli ``shown`` (at least 2), identical for every run with
    the same ``seed`` (``[analysis] seed``). Anything trained for later use in ``conform fit``
    (a meta-trained encoder) leaves these test stimuli out.
    """
    if subject.has_split:
        train = shown[np.isin(shown, subject.train_ids)]
        test = shown[np.isin(shown, subject.test_ids)]
        return train, test
    rng = np.random.default_rng([seed, 1234])
    order = rng.permutation(np.sort(shown))
    n_test = max(2, int(round(test_fraction * len(order))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _split(
    plan: Plan, subject: Subject, trials: TrialData
) -> tuple[NDArray[np.str_], NDArray[np.str_]]:
    train, test = split_stimuli(
        subject, trials.unique_stimulus_ids(), seed=plan.seed, test_fraction=plan.test_fraction
    )
    if train.size < 3 or test.size < 2:
        raise ShapeError(
            f"Subject {subject.name!r} has {train.size} training and {test.size} test "
            "stimuli; an evaluation needs at least 3 and 2. Check the dataset's split."
        )
    return train, test


def _restrict_rois(plan: Plan, trials: TrialData) -> TrialData:
    if not plan.rois:
        return trials
    mask = trials.units.in_rois(list(plan.rois))
    if not mask.any():
        raise ShapeError(
            f"No unit of subject {trials.subject!r} lies in ROIs {list(plan.rois)}. "
            "Check [dataset] rois against the dataset's ROI labels."
        )
    return trials.take_units(mask)


def prepare_subject(plan: Plan, name: str) -> Prepared:
    """Load subject ``name`` and get it ready for the denoiser x encoder grid."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    subject = plan.dataset().load_subject(name)
    seconds["load"] = time.perf_counter() - t0
    glm = plan.stages.get("glm", ())
    if glm:
        if subject.timeseries is None:
            raise ShapeError(
                f"Subject {name!r} has no time series, so the GLM stage "
                f"({glm[0].plugin!r}) has nothing to fit. Remove the [glm] stage."
            )
        t0 = time.perf_counter()
        trials = plan.build("glm", glm[0]).fit_transform(subject.timeseries)
        seconds["glm"] = time.perf_counter() - t0
    elif subject.trials is None:
        raise ShapeError(
            f"Subject {name!r} has time series but no single trials. Add a GLM stage: "
            'glm = "glmsingle".'
        )
    else:
        trials = subject.trials
    trials = _restrict_rois(plan, trials)
    train_ids, test_ids = _split(plan, subject, trials)
    train = trials.by_condition(train_ids)
    test = trials.by_condition(test_ids)
    t0 = time.perf_counter()
    features = plan.build("features", plan.stages["features"][0])
    stimuli = subject.stimuli.select(np.concatenate([train_ids, test_ids]))
    x = features.fit(stimuli).transform(stimuli)
    seconds["features"] = time.perf_counter() - t0
    truth_train = truth_test = None
    if subject.truth is not None:
        signal = subject.truth.signal
        keep = np.isin(signal.units.ids, trials.units.ids)
        signal = signal.take_units(keep) if not keep.all() else signal
        truth_train, truth_test = signal.select(train_ids), signal.select(test_ids)
    roi = trials.units.roi
    t0 = time.perf_counter()
    nc = noise_ceiling_from_trials(test)
    prepared = Prepared(
        subject=name,
        train=train,
        test=test,
        x_train=x[: train_ids.size],
        x_test=x[train_ids.size :],
        roi=roi,
        noise_ceiling=nc,
        truth_train=truth_train,
        truth_test=truth_test,
        seconds=seconds,
        ceiling_reason=ceiling_reasons(test, nc),
        feature_space=str(getattr(features, "feature_space_", "")),
        context=(
            make_subject_context(name, train_ids, plan.context_sizes, plan.context_draws,
                                 plan.seed)
            if plan.context_sizes
            else None
        ),
    )
    prepared.rows = score_rows(
        values={"noise_ceiling": nc},
        roi=roi,
        subject=name,
        denoiser="none",
        aligner="none",
        encoder="none",
    )
    seconds["noise_ceiling"] = time.perf_counter() - t0
    return prepared


def run_denoiser_cell(
    plan: Plan, prepared: Prepared, denoiser_index: int, keep_denoised: bool = False
) -> CellResult | Failed:
    """Fit one denoiser on the training trials and every encoder on its output; score them.

    A failing encoder becomes an ``error`` row and the other encoders go on; a failing
    denoiser fails the whole cell, which is then returned as :class:`Failed`.
    """
    entry = plan.stages["denoiser"][denoiser_index]
    name, label = prepared.subject, entry.label
    rows: list[dict[str, Any]] = []
    unit_scores: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    boot: dict[tuple[str, ...], NDArray[np.float64]] = {}
    target = prepared.test.mean()
    weights = resample_weights(plan.seed, name, prepared.test.n_conditions)
    try:
        t0 = time.perf_counter()
        denoiser = plan.build("denoiser", entry).fit(prepared.train)
        denoised_train = denoiser.transform(prepared.train)
        denoised_test = denoiser.transform(prepared.test)
        seconds[f"denoiser:{label}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rank_zero = is_rank_zero(denoiser, denoised_test.data, target.data)
        if prepared.truth_test is not None:
            rows += truth_rows(denoised_train, denoised_test, prepared, label)
            boot[name, label, "none", "none", "denoise_truth_nmse"] = summarise_resamples(
                weighted_nmse(denoised_test.data, prepared.truth_test.data, weights)
            )
        if (prepared.test.trial_counts() >= 2).any():
            rows += _heldout_rows(denoiser, prepared, label, weights, unit_scores, boot)
        seconds[f"denoiser:{label}:scoring"] = time.perf_counter() - t0
    except Exception as exc:  # one failing cell must not stop the grid
        return Failed.from_exception(
            exc, subject=name, denoiser=label, encoder="all", seconds=seconds
        )
    y_train = np.asarray(denoised_train.as_targets())
    y_test = np.asarray(target.as_targets())
    context = prepared.context
    # with context_sizes: fits on N training stimuli first, then on all of them, the
    # curve's last point (so results.csv lists a cell's rows by n_context, ascending)
    full: dict[str, Any] = {} if context is None else {CONTEXT_COLUMN: context.n_train}
    for encoder_entry in plan.stages["encoder"]:
        try:  # once per encoder: can it read these features (space and dimension)?
            _check_reads(plan, encoder_entry, prepared)
        except Exception as exc:
            rows.append(
                {**error_row(exc, subject=name, denoiser=label, encoder=encoder_entry.label),
                 **full}
            )
            continue
        if context is not None:
            t0 = time.perf_counter()
            for n in context.sizes:
                cell = {"subject": name, "denoiser": label, "aligner": "none",
                        "encoder": encoder_entry.label}
                try:
                    values = _few_shot_scores(
                        plan, prepared, encoder_entry, y_train, y_test, context.draws_of(n)
                    )
                except Exception as exc:
                    row = error_row(exc, **cell)
                    row["status"] = f"error: n_context={n}: " + row["status"][len("error: "):]
                    rows.append({**row, CONTEXT_COLUMN: n})
                    continue
                rows += [
                    {**row, CONTEXT_COLUMN: n}
                    for row in score_rows(values=values, roi=prepared.roi, **cell)
                ]
                unit_scores.append({**cell, CONTEXT_COLUMN: n, "values": values})
            seconds[f"encoder:{encoder_entry.label}:few-shot"] = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            encoder = plan.build("encoder", encoder_entry).fit(prepared.x_train, y_train)
            predicted = encoder.predict(prepared.x_test)
            seconds[f"encoder:{encoder_entry.label}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            values = _prediction_scores(plan, y_test, predicted, prepared)
            resampled = weighted_scores(y_test, predicted, weights, prepared.noise_ceiling,
                                        tuple(m for m in values if m != "truth_r"))
            for metric, per_unit in resampled.items():
                boot[name, label, "none", encoder_entry.label, metric] = summarise_resamples(
                    per_unit
                )
            rows += [
                {**row, **full}
                for row in score_rows(
                    values=values,
                    roi=prepared.roi,
                    subject=name,
                    denoiser=label,
                    aligner="none",
                    encoder=encoder_entry.label,
                )
            ]
            seconds[f"encoder:{encoder_entry.label}:scoring"] = time.perf_counter() - t0
            unit_scores.append(
                {
                    "subject": name,
                    "denoiser": label,
                    "aligner": "none",
                    "encoder": encoder_entry.label,
                    **full,
                    "values": values,
                }
            )
        except Exception as exc:
            rows.append(
                {**error_row(exc, subject=name, denoiser=label, encoder=encoder_entry.label),
                 **full}
            )
    return CellResult(
        name, label, rows, unit_scores, denoised_train if keep_denoised else None, seconds,
        bootstrap=boot, rank_zero=rank_zero,
    )


def _heldout_rows(
    denoiser: Any,
    prepared: Prepared,
    label: str,
    weights: NDArray[np.float64],
    unit_scores: list[dict[str, Any]],
    boot: dict[tuple[str, ...], NDArray[np.float64]],
) -> list[dict[str, Any]]:
    """Rows of ``heldout_trial_nmse`` (the truth-free denoising error); adds its unit scores.

    See :func:`conform_core.metrics.heldout_trial_nmse`. Also records the per-unit values
    in ``unit_scores`` (encoder ``"none"``) and the resampled ROI "all" values in ``boot``.
    """
    terms = heldout_trial_terms(denoiser, prepared.test)
    values = {"heldout_trial_nmse": terms.nmse()}
    cell = {"subject": prepared.subject, "denoiser": label, "aligner": "none", "encoder": "none"}
    unit_scores.append({**cell, "values": values})
    boot[prepared.subject, label, "none", "none", "heldout_trial_nmse"] = summarise_resamples(
        terms.nmse(weights)
    )
    return score_rows(values=values, roi=prepared.roi, **cell)


def _check_reads(plan: Plan, entry: Any, prepared: Prepared) -> None:
    """Let encoder ``entry`` check the features it is about to read (space and dimension)."""
    encoder = plan.build("encoder", entry)
    assert isinstance(encoder, Encoder)
    encoder.check_features(prepared.feature_space, prepared.x_train.shape[1])


def _few_shot_scores(
    plan: Plan,
    prepared: Prepared,
    entry: Any,
    y_train: NDArray[np.floating],
    y_test: NDArray[np.floating],
    draws: list[ContextDraw],
) -> dict[str, NDArray[np.float64]]:
    """Fit a fresh encoder on each draw's training stimuli; per unit, the mean score over draws.

    Every draw is scored on the same held-out test stimuli as the fit on all training
    stimuli; the denoiser's output (``y_train``) is the same too, only its rows differ.
    """
    scores = []
    for draw in draws:
        rows = draw.indices
        encoder = plan.build("encoder", entry).fit(prepared.x_train[rows], y_train[rows])
        predicted = encoder.predict(prepared.x_test)
        scores.append(_prediction_scores(plan, y_test, predicted, prepared))
    return mean_over_draws(scores)


def _prediction_scores(
    plan: Plan, y_true: NDArray[np.floating], predicted: NDArray[np.floating], prepared: Prepared
) -> dict[str, NDArray[np.float64]]:
    from ..metrics import normalized_r2, pearson_r, r2_score

    values: dict[str, NDArray[np.float64]] = {}
    r2 = r2_score(y_true, predicted)
    if "pearson_r" in plan.metrics:
        values["pearson_r"] = pearson_r(y_true, predicted)
    if "r2" in plan.metrics:
        values["r2"] = r2
    if "nc_r2" in plan.metrics:
        values["nc_r2"] = normalized_r2(r2, prepared.noise_ceiling)
    if prepared.truth_test is not None:
        values["truth_r"] = pearson_r(prepared.truth_test.as_targets(), predicted)
    return values
