"""The summary a user reads: one table per question, intervals, winners, rank-0 flags."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conform_core.analysis import fit_analysis
from conform_core.analysis.summary import (
    aligner_summary,
    denoising_summary,
    encoding_summary,
)
from conform_core.analysis.uncertainty import RANK_ZERO

SPEC = """
denoiser = ["trial-average", {plugin = "pca", params = {n_components = 0}, label = "pca-0"},
            {plugin = "pca", params = {n_components = 5}, label = "pca-5"}]
aligner = ["procrustes"]
encoder = ["ridge"]
features = "precomputed"

[analysis]
name = "summary"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 3
n_units = 40
n_stimuli = 100
n_shared = 50
snr = 0.8
"""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("summary")
    spec = root / "summary.toml"
    spec.write_text(textwrap.dedent(SPEC))
    return fit_analysis(spec, out=root / "res")


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_heldout_trial_nmse_is_a_row_per_subject_denoiser_and_roi_and_per_unit(fitted):
    out, result = fitted
    rows = [r for r in _rows(out) if r["metric"] == "heldout_trial_nmse"]
    assert {(r["subject"], r["denoiser"]) for r in rows} == {
        (s, d) for s in ("sub-01", "sub-02", "sub-03") for d in ("trial-average", "pca-0", "pca-5")
    }
    assert all(r["aligner"] == "none" and r["encoder"] == "none" for r in rows)
    scores = pd.read_parquet(out / "unit_scores.parquet")
    per_unit = scores[scores.metric == "heldout_trial_nmse"]
    assert len(per_unit) == 3 * 3 * 40
    # the rank-0 denoiser predicts the mean: NMSE about 1 (0.75-1.3 over ~20 test stimuli)
    pca0 = [float(r["value"]) for r in rows if r["denoiser"] == "pca-0"]
    assert all(0.7 < v < 1.4 for v in pca0)


def test_denoisers_are_ranked_by_heldout_trial_nmse_and_rank_0_is_flagged(fitted):
    _, result = fitted
    table = denoising_summary(result)
    assert table is not None and "Ranked by heldout_trial_nmse" in table.question
    assert table.header[2] == "heldout_trial_nmse" and "denoise_truth_nmse" in table.header
    values = [float(row[2]) for row in table.body]
    assert values == sorted(values)
    notes = {row[1]: row[-1] for row in table.body}
    assert notes["pca-0"] == RANK_ZERO and notes["pca-5"] == "" and notes["trial-average"] == ""
    assert result.rank_zero == {"pca-0": ["sub-01", "sub-02", "sub-03"]}
    assert any("1 is as good as predicting each unit's mean" in n for n in table.notes)
    for row in table.body:  # every value has an interval that holds it
        low, high = (float(x) for x in row[3].strip("[]").split(","))
        assert low <= float(row[2]) <= high


def test_a_winner_is_named_only_when_the_paired_interval_excludes_zero(fitted):
    _, result = fitted
    for table in (denoising_summary(result), encoding_summary(result)):
        assert table is not None
        verdict = [n for n in table.notes if "inner" in n]
        assert len(verdict) == 1
        low, high = (float(x) for x in verdict[0].split("interval [")[1].split("]")[0].split(","))
        assert verdict[0].startswith("Winner") == (low > 0 or high < 0)


def test_encoding_and_aligner_tables_say_what_they_answer(fitted):
    out, result = fitted
    encoding = encoding_summary(result)
    assert encoding is not None and "Ranked by nc_r2" in encoding.question
    assert {row[2] for row in encoding.body} == {"ridge"}
    aligners = aligner_summary(result)
    assert aligners is not None and {row[1] for row in aligners.body} == {"procrustes"}
    assert "Between-subject prediction" in aligners.notes[0]
    report = (out / "report.md").read_text()
    for heading in ("## Denoised responses", "## Encoding models", "## Aligners", "## All scores"):
        assert heading in report
    assert "median of these ratios over the units with a positive ceiling" in report
    assert f"pca-0: {RANK_ZERO}" in report
    assert "bootstrap over test stimuli (1000 resamples" in report


def test_bootstrap_resamples_are_paired_across_denoisers(fitted):
    _, result = fitted
    keys = [k for k in result.bootstrap if k[0] == "sub-01" and k[4] == "heldout_trial_nmse"]
    assert len(keys) == 3
    assert all(np.asarray(result.bootstrap[k]).shape == (1000,) for k in keys)
