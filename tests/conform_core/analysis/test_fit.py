"""`conform fit` end to end on a tiny simulated study."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest

from conform_core import SpecError
from conform_core.analysis import fit_analysis

SPEC = """
denoiser = ["trial-average", "pca"]
aligner = ["procrustes"]
encoder = ["ridge"]
features = "precomputed"

[analysis]
name = "tiny"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 3
n_units = 40
n_stimuli = 80
n_shared = 40
snr = 0.5
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(SPEC))
    return path


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_fit_writes_the_results_folder(spec_file, tmp_path):
    out, result = fit_analysis(spec_file, out=tmp_path / "res")
    names = {p.name for p in out.iterdir()}
    assert {
        "results.csv",
        "report.md",
        "spec.lock.toml",
        "provenance.json",
        "timings.csv",
        "unit_scores.parquet",
        "scores_distribution.png",
        "denoiser_encoder_heatmap.png",
    } <= names
    rows = _rows(out)
    assert list(rows[0])[:7] == [
        "subject",
        "roi",
        "denoiser",
        "aligner",
        "encoder",
        "metric",
        "value",
    ]
    cells = {(r["denoiser"], r["aligner"], r["encoder"]) for r in rows}
    assert {
        ("trial-average", "none", "ridge"),
        ("pca", "none", "ridge"),
        ("pca", "procrustes", "none"),
        ("none", "none", "none"),
    } <= cells
    assert not result.failures
    assert "| denoiser | aligner | encoder |" in (out / "report.md").read_text()


def test_lock_rerun_reproduces_results_byte_for_byte(spec_file, tmp_path):
    first, _ = fit_analysis(spec_file, out=tmp_path / "a")
    second, _ = fit_analysis(first / "spec.lock.toml", out=tmp_path / "b")
    assert (first / "results.csv").read_bytes() == (second / "results.csv").read_bytes()


def test_swapping_one_stage_keeps_numbers_that_do_not_depend_on_it(spec_file, tmp_path):
    first, _ = fit_analysis(spec_file, out=tmp_path / "a")
    swapped, _ = fit_analysis(
        first / "spec.lock.toml", out=tmp_path / "b", overrides=["encoder.alphas=[0.1, 1.0, 10.0]"]
    )

    def key(r):
        return tuple(r[c] for c in ("subject", "roi", "denoiser", "aligner", "encoder", "metric"))

    before = {key(r): r["value"] for r in _rows(first)}
    after = {key(r): r["value"] for r in _rows(swapped)}
    assert before.keys() == after.keys()
    independent = [k for k in before if k[4] != "ridge"]
    assert independent and all(before[k] == after[k] for k in independent)
    assert any(before[k] != after[k] for k in before if k[4] == "ridge")
    lock = (swapped / "spec.lock.toml").read_text()
    assert "alphas = [\n    0.1," in lock


def test_set_replaces_a_stage_by_name(spec_file, tmp_path):
    out, _ = fit_analysis(
        spec_file, out=tmp_path / "a", overrides=["denoiser=pca", "aligner=procrustes"]
    )
    assert {r["denoiser"] for r in _rows(out)} == {"pca", "none"}


def test_a_failing_cell_is_reported_and_others_complete(spec_file, tmp_path):
    text = spec_file.read_text().replace(
        'denoiser = ["trial-average", "pca"]',
        'denoiser = ["trial-average", {plugin = "pca", params = {n_components = 999}}]',
    )
    spec_file.write_text(text)
    out, result = fit_analysis(spec_file, out=tmp_path / "a")
    failures = [r for r in _rows(out) if r["metric"] == "error"]
    assert failures and all("n_components" in r["status"] for r in failures)
    assert {r["denoiser"] for r in failures} == {"pca"}
    assert {r["subject"] for r in failures} == {"sub-01", "sub-02", "sub-03"}
    assert any(r["denoiser"] == "trial-average" and r["metric"] == "pearson_r" for r in _rows(out))
    assert "## Failed cells" in (out / "report.md").read_text()


def test_unknown_parameter_lists_the_real_ones(spec_file, tmp_path):
    with pytest.raises(
        SpecError, match="'trial-average' has no parameter 'n_components'. Its parameters: none"
    ):
        fit_analysis(spec_file, out=tmp_path / "a", overrides=["denoiser.n_components=2"])


def test_existing_results_folder_is_not_overwritten(spec_file, tmp_path):
    (tmp_path / "res").mkdir()
    with pytest.raises(SpecError, match="already exists.*--overwrite"):
        fit_analysis(spec_file, out=tmp_path / "res")


@pytest.mark.parametrize(
    "text, message",
    [
        (
            'denoisr = "pca"\n[dataset]\nplugin = "synthetic"\n',
            "Unknown key 'denoisr'.*Did you mean 'denoiser'",
        ),
        (
            'denoiser = "pcaa"\n[dataset]\nplugin = "synthetic"\n',
            "No denoiser named 'pcaa'.*Did you mean 'pca'",
        ),
        (
            'denoiser = [{plugin = "pca", params = {n_component = 2}}]\n[dataset]\nplugin = "synthetic"\n',
            "'pca' has no parameter 'n_component'.*Did you mean 'n_components'",
        ),
        (
            'glm = "trial-average"\n[dataset]\nplugin = "synthetic"\n',
            "Stage 'glm' needs a denoiser that turns",
        ),
        ('encoder = "ridge"\n', "has no \\[dataset\\] table"),
        (
            'denoiser = ["pca", "pca"]\n[dataset]\nplugin = "synthetic"\n',
            "lists 'pca' twice.*label",
        ),
        ('[dataset]\nplugin = "synthetic"\nsubjects = ["sub-99"]\n', "no subject 'sub-99'"),
        ('[dataset\nplugin = "synthetic"\n', "not valid TOML"),
    ],
)
def test_bad_specs_name_the_key_and_the_fix(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        fit_analysis(path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_set_values_are_rejected(spec_file, tmp_path):
    with pytest.raises(SpecError, match="unknown stage 'encodr'.*Did you mean 'encoder'"):
        fit_analysis(spec_file, out=tmp_path / "o", overrides=["encodr=ridge"])
    with pytest.raises(SpecError, match="STAGE=PLUGIN or STAGE.PARAM=VALUE"):
        fit_analysis(spec_file, out=tmp_path / "o", overrides=["encoder"])


def test_glm_stage_turns_time_series_into_trials(tmp_path):
    path = tmp_path / "glm.toml"
    path.write_text(
        textwrap.dedent("""
        glm = "glmsingle"
        denoiser = "trial-average"
        encoder = "ridge"
        [dataset]
        plugin = "synthetic"
        [dataset.params]
        n_subjects = 2
        n_units = 20
        n_stimuli = 40
        n_shared = 20
        timeseries = true
    """)
    )
    out, result = fit_analysis(path, out=tmp_path / "res")
    assert not result.failures
    assert any(r["metric"] == "truth_r" for r in _rows(out))
    assert "glmsingle" in (out / "spec.lock.toml").read_text()


def test_psn_runs_in_fit_with_every_preset(spec_file, tmp_path):
    presets = ["standard", "conservative", "aggressive", "compare", "wiener", "cv"]
    entries = ", ".join(
        f'{{plugin = "psn", params = {{preset = "{p}"}}, label = "psn-{p}"}}' for p in presets
    )
    text = spec_file.read_text().replace(
        'denoiser = ["trial-average", "pca"]', f"denoiser = [{entries}]"
    )
    text = text.replace('aligner = ["procrustes"]\n', "")
    spec_file.write_text(text)
    out, result = fit_analysis(spec_file, out=tmp_path / "res")
    assert not result.failures, result.failures
    scored = {r["denoiser"] for r in _rows(out) if r["metric"] == "pearson_r"}
    assert scored == {f"psn-{p}" for p in presets}


def test_lock_refuses_changed_inputs(tmp_path):
    from conform_synthetic import simulate_study, write_study

    write_study(
        tmp_path / "study", simulate_study(n_subjects=2, n_units=20, n_stimuli=40, n_shared=20)
    )
    spec = tmp_path / "s.toml"
    spec.write_text('[dataset]\nplugin = "synthetic"\nlocation = "study"\n')
    first, _ = fit_analysis(spec, out=tmp_path / "a")
    assert "stimuli.tsv" in (first / "spec.lock.toml").read_text()
    (tmp_path / "study" / "stimuli.tsv").write_text("changed\n")
    with pytest.raises(SpecError, match="inputs of this locked analysis changed.*stimuli.tsv"):
        fit_analysis(first / "spec.lock.toml", out=tmp_path / "b")
