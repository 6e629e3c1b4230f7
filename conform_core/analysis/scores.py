"""Turning per-unit scores into the long-format rows of results.csv."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData, ConditionTrials, Units, mean_over_trials

if TYPE_CHECKING:
    from .subject import Prepared

__all__ = ["score_rows", "truth_rows", "error_row", "Failed", "timing_rows", "COLUMNS", "UnitTable",
           "ceiling_reasons", "CEILING_REASONS"]

COLUMNS = (
    "subject",
    "roi",
    "denoiser",
    "aligner",
    "encoder",
    "metric",
    "value",
    "n_units",
    "status",
)
"""Columns of results.csv, in order. ``value`` is the median over the ROI's units."""


def score_rows(
    *,
    values: Mapping[str, NDArray[Any]],
    roi: NDArray[np.str_] | None,
    subject: str,
    denoiser: str,
    aligner: str,
    encoder: str,
) -> list[dict[str, Any]]:
    """One row per metric and ROI ("all" plus each ROI label): median over finite units."""
    groups: list[tuple[str, NDArray[np.bool_] | None]] = [("all", None)]
    if roi is not None:
        groups += [(str(label), roi == label) for label in np.unique(roi) if str(label)]
    rows = []
    for metric, per_unit in values.items():
        per_unit = np.asarray(per_unit, dtype=np.float64)
        for name, mask in groups:
            v = per_unit if mask is None else per_unit[mask]
            finite = v[np.isfinite(v)]
            rows.append(
                {
                    "subject": subject,
                    "roi": name,
                    "denoiser": denoiser,
                    "aligner": aligner,
                    "encoder": encoder,
                    "metric": metric,
                    "value": float(np.median(finite)) if finite.size else float("nan"),
                    "n_units": int(finite.size),
                    "status": "ok",
                }
            )
    return rows


def error_row(
    exc: BaseException, *, subject: str, denoiser: str, aligner: str = "none", encoder: str
) -> dict[str, Any]:
    """Return the ``error`` row that records a failed cell.

    User errors are recorded by their message, bugs by their type too.
    """
    import traceback

    from ..exceptions import ConformError

    message = (
        str(exc)
        if isinstance(exc, ConformError)
        else "".join(traceback.format_exception_only(type(exc), exc)).strip()
    )
    return {
        "subject": subject,
        "roi": "all",
        "denoiser": denoiser,
        "aligner": aligner,
        "encoder": encoder,
        "metric": "error",
        "value": float("nan"),
        "n_units": 0,
        "status": f"error: {message}",
    }


def timing_rows(subject: str, denoiser: str, seconds: Mapping[str, float]) -> list[dict[str, Any]]:
    """Rows of timings.csv: ``{"subject", "stage", "denoiser", "seconds"}``, one per stage."""
    return [
        {"subject": subject, "stage": stage, "denoiser": denoiser, "seconds": value}
        for stage, value in seconds.items()
    ]


@dataclass(frozen=True)
class Failed:
    """What a task of ``conform fit`` returns when it failed: the error row that records it.

    A task that fails returns a ``Failed`` instead of raising, so one failing cell does
    not stop the grid and the error travels to the tasks that needed the failed result.
    Those fail with the same message, each recorded at its own cell (:meth:`passed_on`).
    Like every task result it has ``rows``, ``unit_scores`` and ``timings``.

    Attributes
    ----------
    row : dict
        The ``error`` row of results.csv (see :func:`error_row`): the cell's subject,
        denoiser, aligner and encoder, and ``status`` ``"error: MESSAGE"``.
    seconds : dict of str to float
        Stages that ran before the failure, with their durations.

    Examples
    --------
    >>> failed = Failed.from_exception(OSError("truncated file"), subject="sub-02",
    ...                                denoiser="all", encoder="all")
    >>> failed.passed_on(subject="sub-02", denoiser="pca", encoder="all").status
    'error: OSError: truncated file'
    """

    row: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        subject: str,
        denoiser: str,
        aligner: str = "none",
        encoder: str,
        seconds: Mapping[str, float] | None = None,
    ) -> Failed:
        """Record ``exc`` as the failure of the cell subject x denoiser x aligner x encoder."""
        row = error_row(exc, subject=subject, denoiser=denoiser, aligner=aligner, encoder=encoder)
        return cls(row, dict(seconds or {}))

    def passed_on(
        self, *, subject: str, denoiser: str, aligner: str = "none", encoder: str
    ) -> Failed:
        """Return the same failure, recorded for a cell that needed the failed task's result."""
        return Failed(
            {
                **self.row,
                "subject": subject,
                "denoiser": denoiser,
                "aligner": aligner,
                "encoder": encoder,
            }
        )

    @property
    def status(self) -> str:
        """``"error: MESSAGE"``."""
        return str(self.row["status"])

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The error row, as a list like every task result's rows."""
        return [dict(self.row)]

    @property
    def unit_scores(self) -> list[dict[str, Any]]:
        """No per-unit scores."""
        return []

    @property
    def timings(self) -> list[dict[str, Any]]:
        """Rows of timings.csv for the stages that ran before the failure."""
        return timing_rows(self.row["subject"], self.row["denoiser"], self.seconds)


def _nmse(estimate: NDArray[np.floating], truth: NDArray[np.floating]) -> NDArray[np.float64]:
    """Per unit: mean squared error over conditions / variance of the truth over conditions."""
    est = np.asarray(estimate, dtype=np.float64)
    tru = np.asarray(truth, dtype=np.float64)
    var = tru.var(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ((est - tru) ** 2).mean(axis=1) / var
    return np.where(var > 0, out, np.nan)


def truth_rows(
    denoised_train: ConditionData, denoised_test: ConditionData, prepared: Prepared, label: str
) -> list[dict[str, Any]]:
    """Error of a denoiser's output to the simulator's true signal, on held-out stimuli.

    Metrics: ``denoise_truth_nmse`` (mean squared error over stimuli divided by the true
    signal's variance, per unit) and ``denoise_truth_r`` (correlation across stimuli).
    """
    from ..metrics import pearson_r

    truth = prepared.truth_test
    assert truth is not None
    est = np.asarray(denoised_test.data)
    values = {
        "denoise_truth_nmse": _nmse(est, truth.data),
        "denoise_truth_r": pearson_r(truth.as_targets(), est.T),
    }
    return score_rows(
        values=values,
        roi=prepared.roi,
        subject=prepared.subject,
        denoiser=label,
        aligner="none",
        encoder="none",
    )


CEILING_REASONS = {
    "no_signal": "no repeatable signal (the test averages vary no more than trial noise predicts)",
    "few_repeats": "fewer than 2 trials of every test stimulus (no repeats to measure noise)",
    "zero_noise": "identical repeats (zero trial-to-trial variance)",
}
"""Why a unit's noise ceiling is 0, by code (see :func:`ceiling_reasons`)."""


@dataclass(frozen=True, eq=False)
class UnitTable:
    """The units one subject was scored on, in the order of every per-unit score array.

    Attributes
    ----------
    subject : str
        Subject name.
    units : Units
        Ids, space, vertex or voxel indices and ROI labels, after any ``[dataset] rois``
        restriction.
    noise_ceiling : ndarray of shape (n_units,)
        Noise ceiling of the held-out test averages (percent).
    ceiling_reason : ndarray of shape (n_units,), dtype str
        ``""`` where the noise ceiling is positive; otherwise a key of :data:`CEILING_REASONS`
        saying why it is 0 (and so why ``nc_r2`` is NaN).
    """

    subject: str
    units: Units
    noise_ceiling: NDArray[np.float64]
    ceiling_reason: NDArray[np.str_]


def ceiling_reasons(trials: ConditionTrials, ceiling: NDArray[np.floating]) -> NDArray[np.str_]:
    """Why each unit's noise ceiling is 0 (``""`` where it is positive).

    Mirrors the cases of :func:`conform_core.metrics.ncsnr`, in this order:
    ``few_repeats`` (no test stimulus has 2 measured trials of the unit), ``zero_noise``
    (repeats are identical), ``no_signal`` (the signal variance estimate is clipped to 0).
    """
    data = np.asarray(trials.data, dtype=np.float64)
    finite = np.isfinite(data)
    n = finite.sum(axis=2)
    dof = np.clip(n - 1, 0, None).sum(axis=1)
    means = mean_over_trials(data)
    sq = (np.where(finite, data - means[:, :, None], 0.0) ** 2).sum(axis=(1, 2))
    ceiling = np.asarray(ceiling, dtype=np.float64)
    out = np.full(ceiling.shape, "", dtype=object)
    bad = ~(np.isfinite(ceiling) & (ceiling > 0))
    out[bad] = "no_signal"
    out[bad & (sq == 0)] = "zero_noise"
    out[bad & (dof == 0)] = "few_repeats"
    return out.astype(str)
