"""Turning per-unit scores into the long-format rows of results.csv."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData

if TYPE_CHECKING:
    from .subject import Prepared

__all__ = ["score_rows", "truth_rows", "error_row", "COLUMNS"]

COLUMNS = ("subject", "roi", "denoiser", "aligner", "encoder", "metric", "value", "n_units", "status")
"""Columns of results.csv, in order. ``value`` is the median over the ROI's units."""


def score_rows(*, values: Mapping[str, NDArray[Any]], roi: NDArray[np.str_] | None,
               subject: str, denoiser: str, aligner: str, encoder: str) -> list[dict[str, Any]]:
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
            rows.append({"subject": subject, "roi": name, "denoiser": denoiser, "aligner": aligner,
                         "encoder": encoder, "metric": metric,
                         "value": float(np.median(finite)) if finite.size else float("nan"),
                         "n_units": int(finite.size), "status": "ok"})
    return rows


def error_row(exc: BaseException, *, subject: str, denoiser: str, aligner: str = "none",
              encoder: str) -> dict[str, Any]:
    """The ``error`` row that records a failed cell (user errors by message, bugs by type too)."""
    import traceback

    from ..exceptions import ConformError

    message = str(exc) if isinstance(exc, ConformError) else "".join(
        traceback.format_exception_only(type(exc), exc)).strip()
    return {"subject": subject, "roi": "all", "denoiser": denoiser, "aligner": aligner,
            "encoder": encoder, "metric": "error", "value": float("nan"), "n_units": 0,
            "status": f"error: {message}"}


def _nmse(estimate: NDArray[np.floating], truth: NDArray[np.floating]) -> NDArray[np.float64]:
    """Per unit: mean squared error over conditions / variance of the truth over conditions."""
    est = np.asarray(estimate, dtype=np.float64)
    tru = np.asarray(truth, dtype=np.float64)
    var = tru.var(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ((est - tru) ** 2).mean(axis=1) / var
    return np.where(var > 0, out, np.nan)


def truth_rows(denoised_train: ConditionData, denoised_test: ConditionData, prepared: Prepared,
               label: str) -> list[dict[str, Any]]:
    """Error of a denoiser's output to the simulator's true signal, on held-out stimuli.

    Metrics: ``denoise_truth_nmse`` (mean squared error over stimuli divided by the true
    signal's variance, per unit) and ``denoise_truth_r`` (correlation across stimuli).
    """
    from ..metrics import pearson_r

    truth = prepared.truth_test
    assert truth is not None
    est = np.asarray(denoised_test.data)
    values = {"denoise_truth_nmse": _nmse(est, truth.data),
              "denoise_truth_r": pearson_r(truth.as_targets(), est.T)}
    return score_rows(values=values, roi=prepared.roi, subject=prepared.subject, denoiser=label,
                      aligner="none", encoder="none")
