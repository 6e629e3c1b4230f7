"""Rows of results.csv: per-ROI medians, error rows, and why a noise ceiling is 0."""

from __future__ import annotations

import numpy as np

from conform_core.analysis.scores import CEILING_REASONS, Failed, ceiling_reasons, score_rows
from conform_core.data import ConditionTrials
from conform_core.exceptions import DataFileError
from conform_core.metrics import noise_ceiling_from_trials, normalized_r2


def _trials() -> ConditionTrials:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(1, 8, 1)) * 3
    good = signal + rng.normal(size=(1, 8, 3))
    constant = np.full((1, 8, 3), 2.0)
    no_signal = np.tile(np.array([-1.0, 0.0, 1.0]), (1, 8, 1))  # every stimulus averages to 0
    single = good.copy()
    single[:, :, 1:] = np.nan  # one trial per stimulus: no repeats
    return ConditionTrials(np.concatenate([good, constant, no_signal, single]),
                           np.array([f"s{i}" for i in range(8)]))


def test_ceiling_reasons_name_each_case_of_ncsnr():
    trials = _trials()
    ceiling = noise_ceiling_from_trials(trials)
    reasons = ceiling_reasons(trials, ceiling)
    assert reasons.tolist() == ["", "zero_noise", "no_signal", "few_repeats"]
    assert set(reasons[1:]) <= set(CEILING_REASONS)


def test_ceiling_reasons_mark_exactly_the_units_nc_r2_leaves_out():
    trials = _trials()
    ceiling = noise_ceiling_from_trials(trials)
    left_out = np.isnan(normalized_r2(np.full(4, 0.3), ceiling))
    np.testing.assert_array_equal(ceiling_reasons(trials, ceiling) != "", left_out)


def test_scores_are_summarised_per_roi():
    roi = np.array(["V1", "V1", "V2", ""])
    rows = score_rows(values={"r2": np.array([0.1, 0.3, 0.5, np.nan])}, roi=roi, subject="s",
                      denoiser="d", aligner="none", encoder="e")
    by_roi = {r["roi"]: (r["value"], r["n_units"]) for r in rows}
    assert by_roi == {"all": (0.3, 3), "V1": (0.2, 2), "V2": (0.5, 1)}


def test_a_failure_passed_on_keeps_its_message_at_the_new_cell():
    failed = Failed.from_exception(DataFileError("sub-02 is truncated."), subject="sub-02",
                                   denoiser="all", encoder="all", seconds={"load": 0.5})
    passed = failed.passed_on(subject="sub-02", denoiser="pca", aligner="procrustes",
                              encoder="none")
    assert passed.status == failed.status == "error: sub-02 is truncated."
    assert [(r["denoiser"], r["aligner"], r["encoder"], r["metric"]) for r in passed.rows] == [
        ("pca", "procrustes", "none", "error")]
    assert passed.unit_scores == [] and passed.timings == []  # the time was spent upstream
    assert failed.timings == [{"subject": "sub-02", "stage": "load", "denoiser": "all",
                               "seconds": 0.5}]


def test_a_bug_is_recorded_with_its_type_and_a_user_error_by_its_message():
    bug = Failed.from_exception(ZeroDivisionError("division by zero"), subject="s",
                                denoiser="d", encoder="e")
    assert bug.status == "error: ZeroDivisionError: division by zero"
