"""The results folder a neuroscientist maps back: unit_scores.parquet, timings.csv, report.md."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conform_core.analysis import AnalysisResult, fit_analysis
from conform_core.analysis.report import UNIT_SCORE_COLUMNS, nc_r2_exclusions, unit_scores_frame
from conform_core.analysis.scores import UnitTable
from conform_core.data import Units


@pytest.fixture(scope="module")
def fitted(
    roi_toy_spec: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, AnalysisResult]:
    return fit_analysis(roi_toy_spec, out=tmp_path_factory.mktemp("fit") / "res")


@pytest.fixture(scope="module")
def scores(fitted: tuple[Path, AnalysisResult]) -> pd.DataFrame:
    return pd.read_parquet(fitted[0] / "unit_scores.parquet")


def _timings(folder: Path) -> list[dict[str, str]]:
    with open(folder / "timings.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_unit_scores_name_the_dataset_units(fitted, scores, roi_toy_facts):
    """Every row's id, vertex index, space and ROI label are those of the dataset's unit."""
    assert not fitted[1].failures
    assert list(scores.columns) == list(UNIT_SCORE_COLUMNS)
    units = roi_toy_facts.units(12)
    by_id = {u: (int(i), r or None) for u, i, r in zip(units.ids, units.indices, units.roi)}
    got = {
        (u, int(i), r if isinstance(r, str) else None)
        for u, i, r in zip(scores.unit_id, scores.unit_index, scores.roi)
    }
    assert got == {(u, *v) for u, v in by_id.items()}
    assert (scores.space == "toy-surface").all()
    assert (scores.unit_id == units.ids[scores.unit_position.to_numpy()]).all()
    assert scores.roi.isna().sum() == (scores.unit_position % 3 == 2).sum() > 0


def test_unit_scores_follow_the_dataset_units_after_an_roi_restriction(
    roi_toy_spec, tmp_path, roi_toy_facts
):
    text = roi_toy_spec.read_text().replace("[dataset.params]", 'rois = ["V2"]\n\n[dataset.params]')
    spec = tmp_path / "v2.toml"
    spec.write_text(text)
    out, _ = fit_analysis(spec, out=tmp_path / "res")
    frame = pd.read_parquet(out / "unit_scores.parquet")
    units = roi_toy_facts.units(12)
    v2 = units.take(units.roi == "V2")
    assert set(frame.roi) == {"V2"}
    assert (frame.unit_id == v2.ids[frame.unit_position.to_numpy()]).all()
    assert (frame.unit_index == v2.indices[frame.unit_position.to_numpy()]).all()


def test_aligner_scores_are_per_unit_of_the_held_out_subject(scores):
    aligned = scores[scores.aligner == "procrustes"]
    assert (aligned.encoder == "none").all()
    assert set(aligned.metric) == {"pearson_r", "r2", "nc_r2"}
    cells = aligned.groupby(["subject", "denoiser", "metric"]).unit_id.nunique()
    assert len(cells) == 3 * 2 * 3 and (cells == 12).all()


def test_results_and_unit_scores_agree_on_aligner_medians(fitted, scores):
    rows = [r for r in fitted[1].rows if r["aligner"] == "procrustes" and r["roi"] == "all"]
    assert rows
    for r in rows:
        v = scores[
            (scores.subject == r["subject"])
            & (scores.denoiser == r["denoiser"])
            & (scores.aligner == "procrustes")
            & (scores.metric == r["metric"])
        ].value
        assert np.nanmedian(v) == pytest.approx(r["value"])


def test_aligner_figure_is_in_the_report(fitted):
    out = fitted[0]
    assert (out / "aligner_scores.png").stat().st_size > 0
    assert "](aligner_scores.png)" in (out / "report.md").read_text()


def test_noise_ceiling_is_in_unit_scores(fitted, scores):
    nc = scores[scores.metric == "noise_ceiling"]
    assert (nc[["denoiser", "aligner", "encoder"]] == "none").all().all()
    for name, table in fitted[1].units.items():
        np.testing.assert_array_equal(nc[nc.subject == name].value, table.noise_ceiling)


def test_zero_ceiling_units_are_named_with_their_reason(fitted, roi_toy_facts):
    for table in fitted[1].units.values():
        assert table.ceiling_reason[roi_toy_facts.zero_noise] == "zero_noise"
        assert table.ceiling_reason[roi_toy_facts.no_signal] == "no_signal"
        assert table.ceiling_reason[roi_toy_facts.few_repeats] == "few_repeats"
        np.testing.assert_array_equal(table.ceiling_reason != "", table.noise_ceiling == 0)


def test_nc_r2_exclusions_count_the_units_nc_r2_leaves_out(fitted, scores):
    """The sentence's counts are the NaN units of nc_r2, per subject and in total."""
    out, result = fitted
    nc_r2 = scores[
        (scores.metric == "nc_r2") & (scores.encoder == "ridge") & (scores.denoiser == "pca")
    ]
    per_subject = nc_r2.groupby("subject").value.apply(lambda v: int(v.isna().sum()))
    total = int(per_subject.sum())
    text = nc_r2_exclusions(result)
    assert text is not None and total >= 9
    assert text.startswith(f"nc_r2 leaves out {total} of 36 units")
    assert "3 with fewer than 2 trials of every test stimulus" in text
    assert "3 with identical repeats" in text
    assert ", ".join(f"{s} {n} of 12" for s, n in per_subject.items()) in text
    assert text.replace("nc_r2", "`nc_r2`", 1) in (out / "report.md").read_text()


def _result(reasons: dict[str, list[str]], metric: str = "nc_r2") -> AnalysisResult:
    units = {}
    for name, codes in reasons.items():
        codes_arr = np.array(codes)
        units[name] = UnitTable(
            name, Units.default(len(codes)), np.where(codes_arr == "", 50.0, 0.0), codes_arr
        )
    rows: list[dict[str, Any]] = [
        {"subject": "s", "roi": "all", "metric": metric, "value": 0.1, "status": "ok"}
    ]
    return AnalysisResult(rows=rows, units=units)


def test_nc_r2_exclusions_sentence_for_one_reason():
    text = nc_r2_exclusions(
        _result({"a": ["", "no_signal", "no_signal", ""], "b": ["", "", "", ""]})
    )
    assert text == (
        "nc_r2 leaves out 2 of 8 units (25 %) whose held-out noise ceiling is 0: no "
        "repeatable signal (the test averages vary no more than trial noise predicts). "
        "Per subject: a 2 of 4."
    )


def test_nc_r2_exclusions_is_none_when_nothing_is_left_out_or_nc_r2_not_computed():
    assert nc_r2_exclusions(_result({"a": ["", ""]})) is None
    assert nc_r2_exclusions(_result({"a": ["no_signal", ""]}, metric="r2")) is None


def test_unit_scores_without_indices_or_rois_write_nulls():
    units = Units(ids=np.array(["a", "b"]))
    result = AnalysisResult(
        rows=[],
        units={"s": UnitTable("s", units, np.ones(2), np.array(["", ""]))},
        unit_scores=[
            {
                "subject": "s",
                "denoiser": "d",
                "aligner": "none",
                "encoder": "e",
                "values": {"r2": np.array([0.5, 0.2])},
            }
        ],
    )
    frame = unit_scores_frame(result)
    assert frame.unit_id.tolist() == ["a", "b"]
    assert frame.unit_index.isna().all() and frame.roi.isna().all()
    assert frame.space.tolist() == ["unknown", "unknown"]


def test_timings_account_for_every_stage(fitted):
    rows = _timings(fitted[0])
    assert list(rows[0]) == ["subject", "stage", "denoiser", "seconds"]
    stages = {(r["subject"], r["stage"], r["denoiser"]) for r in rows}
    assert len(stages) == len(rows), "a stage is recorded twice"
    for s in ("sub-01", "sub-02", "sub-03"):
        assert {(s, stage, "") for stage in ("load", "features", "noise_ceiling")} <= stages
        for d in ("trial-average", "pca"):
            assert {
                (s, f"denoiser:{d}", d),
                (s, "encoder:ridge", d),
                (s, "encoder:ridge:scoring", d),
                (s, "aligner:procrustes", d),
                (s, "aligner:procrustes:scoring", d),
            } <= stages
    assert all(float(r["seconds"]) >= 0 for r in rows)


def test_timings_record_the_scoring_against_ground_truth(tmp_path):
    spec = tmp_path / "t.toml"
    spec.write_text(
        'denoiser = "pca"\nencoder = "ridge"\n[dataset]\nplugin = "synthetic"\n'
        "[dataset.params]\nn_subjects = 1\nn_units = 10\nn_stimuli = 40\n"
    )
    out, _ = fit_analysis(spec, out=tmp_path / "res")
    stages = {r["stage"] for r in _timings(out)}
    assert {
        "denoiser:pca",
        "denoiser:pca:scoring",
        "encoder:ridge",
        "encoder:ridge:scoring",
    } <= stages


def test_roi_toy_dataset_is_what_the_tests_assume(roi_toy_facts):
    subject = roi_toy_facts.dataset(n_subjects=1, n_units=6, n_stimuli=30).load_subject("sub-01")
    assert subject.trials is not None and subject.trials.units.ids[0] == "vtx05000"
