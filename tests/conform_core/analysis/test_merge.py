"""Per-subject runs (``conform fit --subject``), their parts, and ``--merge`` into a single run's folder."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conform_core import SpecError
from conform_core.analysis import AlreadyComplete, fit_analysis
from conform_core.analysis.merge import lock_differences, merge_results
from conform_core.analysis.parts import read_parts

# roi-toy (conftest): units with ids, vertex indices, ROI labels and zero-ceiling units; no
# aligner (a per-subject run refuses one); few-shot draws so that the context travels too
SPEC = """
denoiser = ["trial-average", "pca"]
encoder = ["ridge"]
features = "precomputed"

[analysis]
name = "roi-toy-parts"
seed = 0

[dataset]
plugin = "roi-toy"

[dataset.params]
n_subjects = 3
n_units = 12
n_stimuli = 60
n_shared = 30
snr = 2.0

[evaluation]
metrics = ["pearson_r", "r2", "nc_r2"]
context_sizes = [10]
context_draws = 2
"""

SAME_BYTES = ("results.csv", "report.md", "spec.lock.toml", "unit_scores.parquet",
              "context_draws.csv", "scores_distribution.png", "denoiser_encoder_heatmap.png",
              "few_shot_curve.png")
"""Files of a merged folder that equal a single run's byte for byte (provenance.json and
timings.csv hold times and the command line)."""


@pytest.fixture(scope="module")
def runs(roi_toy: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A single run of every subject (``all``) and per-subject runs: ``p1`` (sub-01) and
    ``p23`` (sub-03 and sub-02, given out of order)."""
    root = tmp_path_factory.mktemp("merge")
    spec = root / "spec.toml"
    spec.write_text(textwrap.dedent(SPEC))
    fit_analysis(spec, out=root / "all")
    fit_analysis(spec, out=root / "p1", subjects=["sub-01"])
    fit_analysis(spec, out=root / "p23", subjects=["sub-03", "sub-02", "sub-03"])
    return root


def test_a_per_subject_run_holds_only_its_subjects_and_its_parts(runs):
    with open(runs / "p23" / "results.csv", newline="") as handle:
        assert {r["subject"] for r in csv.DictReader(handle)} == {"sub-02", "sub-03"}
    part = read_parts(runs / "p23")
    assert part.subjects == ("sub-02", "sub-03")  # the analysis' order, once each
    assert part.subjects_all == ("sub-01", "sub-02", "sub-03")
    assert 'subjects = [\n    "sub-02",\n    "sub-03",\n]' in (runs / "p23" / "spec.lock.toml").read_text()
    assert not list((runs / "p23" / "parts").glob("*.pkl"))


def test_parts_read_back_the_result_exactly(runs, roi_toy):
    spec = runs / "spec.toml"
    _, result = fit_analysis(spec, out=runs / "again", subjects=["sub-01"])
    back = read_parts(runs / "again").result
    assert back.rows == result.rows
    assert [type(v) for r in back.rows for v in r.values()] == [
        type(v) for r in result.rows for v in r.values()]
    assert len(back.unit_scores) == len(result.unit_scores)
    for got, want in zip(back.unit_scores, result.unit_scores):
        assert {k: v for k, v in got.items() if k != "values"} == {
            k: v for k, v in want.items() if k != "values"}
        for metric, values in want["values"].items():
            np.testing.assert_array_equal(got["values"][metric], values)  # bit for bit
            assert got["values"][metric].dtype == np.asarray(values).dtype
    table, want_table = back.units["sub-01"], result.units["sub-01"]
    np.testing.assert_array_equal(table.units.ids, want_table.units.ids)
    np.testing.assert_array_equal(table.units.indices, want_table.units.indices)
    np.testing.assert_array_equal(table.units.roi, want_table.units.roi)
    np.testing.assert_array_equal(table.noise_ceiling, want_table.noise_ceiling)
    np.testing.assert_array_equal(table.ceiling_reason, want_table.ceiling_reason)
    context, want_context = back.context["sub-01"], result.context["sub-01"]
    assert (context.n_train, context.skipped) == (want_context.n_train, want_context.skipped)
    np.testing.assert_array_equal(context.stimulus_ids, want_context.stimulus_ids)
    assert [(d.n_context, d.draw, d.seed, d.indices.tolist()) for d in context.draws] == [
        (d.n_context, d.draw, d.seed, d.indices.tolist()) for d in want_context.draws]
    assert list(back.bootstrap) == list(result.bootstrap)
    for key, values in result.bootstrap.items():
        np.testing.assert_array_equal(back.bootstrap[key], values)
    assert back.rank_zero == result.rank_zero
    assert [t["stage"] for t in back.timings] == [t["stage"] for t in result.timings]


def test_merged_folder_equals_a_single_run_byte_for_byte(runs):
    merged, _ = merge_results([runs / "p23", runs / "p1"], runs / "merged")
    for name in SAME_BYTES:
        assert (merged / name).read_bytes() == (runs / "all" / name).read_bytes(), name
    assert not (merged / "parts").exists()  # as a single run's folder
    # timings: the same stages in the same order; only the seconds measured differ
    strip = [line.rsplit(",", 1)[0] for line in (merged / "timings.csv").read_text().splitlines()]
    want = [line.rsplit(",", 1)[0] for line in (runs / "all" / "timings.csv").read_text().splitlines()]
    assert strip == want
    with pytest.raises(AlreadyComplete, match="already complete"):  # the same merge again
        merge_results([runs / "p1", runs / "p23"], runs / "merged")


def test_a_stale_merged_folder_is_not_skipped(runs, tmp_path):
    """A merged folder whose results.csv is not what the parts give now (a part re-run
    since) is refused, not skipped."""
    stale = tmp_path / "merged"
    merge_results([runs / "p23", runs / "p1"], stale)
    csv_path = stale / "results.csv"
    lines = csv_path.read_bytes().splitlines(keepends=True)
    csv_path.write_bytes(b"".join(lines[:-1]))  # as if a row had changed since
    with pytest.raises(SpecError, match="holds another merge"):
        merge_results([runs / "p23", runs / "p1"], stale)


def test_rerunning_a_complete_part_skips_and_another_selection_is_refused(runs):
    spec = runs / "spec.toml"
    with pytest.raises(AlreadyComplete, match="already complete.*--overwrite"):
        fit_analysis(spec, out=runs / "p1", subjects=["sub-01"])
    with pytest.raises(SpecError, match="holds another analysis.*dataset.subjects.*--overwrite"):
        fit_analysis(spec, out=runs / "p1", subjects=["sub-02"])
    with pytest.raises(SpecError, match="holds another analysis.*analysis.seed"):
        fit_analysis(spec, out=runs / "p1", subjects=["sub-01"], overrides=["analysis.seed=1"])


def test_a_part_with_failed_cells_is_not_skipped(runs, tmp_path):
    import shutil

    shutil.copytree(runs / "p1", tmp_path / "p1")
    results = tmp_path / "p1" / "results.csv"
    lines = results.read_text().splitlines(keepends=True)
    lines[1] = lines[1].rstrip("\n").rsplit(",", 1)[0] + ",error: ValueError: boom\n"
    results.write_text("".join(lines))
    with pytest.raises(SpecError, match="failed cells.*--overwrite") as caught:
        fit_analysis(runs / "spec.toml", out=tmp_path / "p1", subjects=["sub-01"])
    assert not isinstance(caught.value, AlreadyComplete)


def test_a_spec_with_aligners_is_refused_before_any_work(roi_toy_spec, tmp_path):
    with pytest.raises(SpecError, match=r"--subject.*aligner stage \(procrustes\).*every "
                                        r"subject.*--workers N or --scheduler"):
        fit_analysis(roi_toy_spec, out=tmp_path / "p", subjects=["sub-01"])
    assert not (tmp_path / "p").exists()


def test_an_unknown_subject_is_refused_with_the_subjects(runs, tmp_path):
    with pytest.raises(SpecError, match="--subject 'sub-9' is not a subject.*sub-01, sub-02"):
        fit_analysis(runs / "spec.toml", out=tmp_path / "p", subjects=["sub-9"])


def test_merge_refuses_a_missing_or_duplicated_subject(runs, tmp_path):
    with pytest.raises(SpecError, match="in none of the folders: sub-02, sub-03.*--subject sub-02"):
        merge_results([runs / "p1"], tmp_path / "m")
    with pytest.raises(SpecError, match="'sub-01' is in two of the folders.*p1"):
        merge_results([runs / "p1", runs / "p23", runs / "p1"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_merge_refuses_parts_of_another_analysis_naming_the_folder(runs, tmp_path):
    fit_analysis(runs / "spec.toml", out=tmp_path / "seed1", subjects=["sub-02", "sub-03"],
                 overrides=["analysis.seed=1"])
    with pytest.raises(SpecError, match=r"'.*seed1' is not a part of the same analysis.*"
                                        r"analysis.seed"):
        merge_results([runs / "p1", tmp_path / "seed1"], tmp_path / "m")


def test_merge_refuses_a_folder_without_parts(runs, tmp_path):
    with pytest.raises(SpecError, match="'.*all' has no parts/manifest.json.*--subject"):
        merge_results([runs / "all"], tmp_path / "m")


def test_lock_differences_names_the_keys():
    a = '[analysis]\nseed = 0\n[dataset]\nsubjects = ["a"]\nplugin = "x"\n'
    b = '[analysis]\nseed = 1\n[dataset]\nsubjects = ["b"]\nplugin = "x"\n'
    assert lock_differences(a, b) == ["analysis.seed", "dataset.subjects"]
    assert lock_differences(a, b, ignore=("dataset.subjects",)) == ["analysis.seed"]
    assert lock_differences(a, a) == []


def test_merge_orders_flagged_denoisers_as_a_single_run_gathers_them(tmp_path):
    from conform_core.analysis import AnalysisResult
    from conform_core.analysis.merge import merge_parts
    from conform_core.analysis.parts import PartInfo

    def part(subject: str, rank_zero: dict[str, list[str]]) -> PartInfo:
        return PartInfo(folder=tmp_path / subject, name="x", subjects=(subject,),
                        subjects_all=("sub-02", "sub-01"), denoisers=("psn", "pca"),
                        metric_order=(), result=AnalysisResult(rows=[], rank_zero=rank_zero))

    merged = merge_parts([part("sub-02", {"pca": ["sub-02"]}),
                          part("sub-01", {"pca": ["sub-01"], "psn": ["sub-01"]})])
    # a single run gathers its cells sorted by (subject, denoiser position)
    assert list(merged.rank_zero.items()) == [("psn", ["sub-01"]), ("pca", ["sub-01", "sub-02"])]
