"""`conform fit --subject`, `--merge` and `--nthreads` as a cluster job array runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SPEC = """
denoiser = ["trial-average", "pca"]
encoder = "ridge"
features = "precomputed"

[analysis]
name = "cluster"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 2
n_units = 20
n_stimuli = 40
"""


def conform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("CONFORM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "conform_core", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the spec, one folder per subject (``parts/sub-0N``) and a single run."""
    root = tmp_path_factory.mktemp("cluster")
    (root / "spec.toml").write_text(textwrap.dedent(SPEC))
    for subject in ("sub-01", "sub-02"):
        done = conform("fit", "spec.toml", "--subject", subject, "--out", f"parts/{subject}",
                       "--nthreads", "2", "--quiet", cwd=root)
        assert done.returncode == 0, done.stderr
    done = conform("fit", "spec.toml", "--out", "single", "--threads", "2", "--quiet", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


def test_merge_gives_the_single_runs_results_csv(work):
    done = conform("fit", "--merge", "parts/sub-02", "parts/sub-01", "--out", "merged", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "Merged 2 folder(s) (2 subjects) into merged" in done.stdout
    assert (work / "merged" / "results.csv").read_bytes() == (
        work / "single" / "results.csv").read_bytes()
    again = conform("fit", "--merge", "parts/sub-01", "parts/sub-02", "--out", "merged", cwd=work)
    assert again.returncode == 0 and "Skipped" in again.stdout and "already complete" in again.stdout


def test_rerunning_a_finished_subject_skips_it(work):
    before = (work / "parts" / "sub-01" / "provenance.json").read_text()
    done = conform("fit", "spec.toml", "--subject", "sub-01", "--out", "parts/sub-01",
                   "--nthreads", "2", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "Skipped" in done.stdout and "already complete" in done.stdout
    assert (work / "parts" / "sub-01" / "provenance.json").read_text() == before
    other = conform("fit", "spec.toml", "--subject", "sub-02", "--out", "parts/sub-01", cwd=work)
    assert other.returncode == 2 and "holds another analysis" in other.stderr


def test_nthreads_is_recorded_in_provenance(work):
    prov = json.loads((work / "parts" / "sub-01" / "provenance.json").read_text())
    assert prov["nthreads"] == prov["blas_threads_per_task"] == 2
    assert prov["subjects"] == ["sub-01"] and prov["subject_selection"] is True


def test_subject_with_aligners_exits_2_and_writes_nothing(work):
    done = conform("fit", "spec.toml", "--set", "aligner=procrustes", "--subject", "sub-01",
                   "--out", "aligned", cwd=work)
    assert done.returncode == 2
    assert "aligner stage (procrustes)" in done.stderr and "every subject" in done.stderr
    assert not (work / "aligned").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--merge", "parts/sub-01"], "--merge needs --out"),
    (["--merge", "parts/sub-01", "--out", "m", "--subject", "sub-01"], "--subject does not apply"),
    (["spec.toml", "parts/sub-01", "--out", "m"], "takes one spec"),
    (["--merge", "parts/sub-01", "--out", "m"], "in none of the folders: sub-02"),
])
def test_usage_mistakes_exit_2(work, args, message):
    done = conform("fit", *args, cwd=work)
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split())
    assert not (work / "m").exists()


def test_a_bids_study_split_by_subject_merges_to_the_single_run(tmp_path):
    """The issue's "done when": examples/bids.toml on a simulated fMRIPrep tree, by subject."""
    pytest.importorskip("conform_bids")
    from conform_core.analysis import fit_analysis
    from conform_core.analysis.merge import merge_results

    done = conform("simulate", "study", "--timeseries", "--layout", "fmriprep", "--subjects", "2",
                   "--units", "25", "--stimuli", "40", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    spec = Path(__file__).resolve().parents[2] / "examples" / "bids.toml"
    where = [f"dataset.location={tmp_path / 'study'}"]
    fit_analysis(spec, overrides=where, out=tmp_path / "single")
    for subject in ("sub-01", "sub-02"):
        fit_analysis(spec, overrides=where, out=tmp_path / subject, subjects=[subject])
    merged, _ = merge_results([tmp_path / "sub-02", tmp_path / "sub-01"], tmp_path / "merged")
    for name in ("results.csv", "report.md", "spec.lock.toml", "unit_scores.parquet"):
        assert (merged / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name
