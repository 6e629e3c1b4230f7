"""`conform fit` as a scheduler runs it: exit codes, --check, failed subjects, provenance.

Every test runs the real command in a subprocess (stdout and stderr are pipes, so the
command also shows its non-terminal behaviour: one log line per finished task).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conform_synthetic import simulate_study, write_study

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPEC = """
denoiser = ["trial-average", "pca"]
encoder = "ridge"
features = "precomputed"

[analysis]
name = "tiny"
seed = 0

[dataset]
plugin = "synthetic"
location = "study"
"""


def conform(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("CONFORM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "conform_core", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A written study of 3 subjects x 30 units (the spec's simulator settings would give more)."""
    root = tmp_path_factory.mktemp("fit-cli")
    write_study(root / "study", simulate_study(n_subjects=3, n_units=30, n_stimuli=60, n_shared=30,
                                               random_state=1))
    return root


@pytest.fixture
def work(study: Path, tmp_path: Path) -> Path:
    """A fresh folder holding a copy of the study and the spec."""
    import shutil

    shutil.copytree(study / "study", tmp_path / "study")
    (tmp_path / "spec.toml").write_text(textwrap.dedent(SPEC))
    return tmp_path


def _corrupt(work: Path, *subjects: str) -> None:
    for name in subjects:
        path = next((work / "study" / name).glob("*_trials.npz"))
        path.write_bytes(path.read_bytes()[:200])  # truncated, as by an interrupted copy


def test_success_exits_0_and_logs_one_line_per_task(work):
    done = conform("fit", "spec.toml", "--out", "res", cwd=work)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("conform fit [")]
    # 3 subjects x (prepare + 2 denoiser cells) = 9 tasks, each announced once, with the total
    assert len(lines) == 9 and lines[-1].startswith("conform fit [9/9]"), done.stderr
    assert (work / "res" / "results.csv").is_file()
    # the summary: one table per question, each saying what it ranks by
    out = done.stdout
    assert "Denoised responses: Which denoiser should I use for denoised responses? Ranked by " \
           "heldout_trial_nmse." in out
    assert "Encoding models: Which denoiser and encoder predict held-out responses best? " \
           "Ranked by" in out
    assert "1 is as good as predicting each unit's mean response" in out
    assert "95 % percentile bootstrap over test stimuli" in out
    assert "winner" in out.lower()
    assert "Aligners" not in out  # no aligner stage in this spec


def test_one_corrupt_subject_exits_3_and_says_so(work):
    _corrupt(work, "sub-02")
    done = conform("fit", "spec.toml", "--out", "res", cwd=work)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "2 of 6 cells failed" in done.stdout
    assert "sub-02" in done.stdout and "failed" in done.stdout
    # the healthy subjects' results are written, failures recorded in results.csv
    text = (work / "res" / "results.csv").read_text()
    assert "error:" in text and "sub-01" in text


def test_allow_failures_keeps_exit_0(work):
    _corrupt(work, "sub-02")
    done = conform("fit", "spec.toml", "--out", "res", "--allow-failures", cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 6 cells failed" in done.stdout


def test_every_subject_failing_replaces_nothing_even_with_overwrite(work):
    (work / "res").mkdir()
    (work / "res" / "results.csv").write_text("earlier results\n")
    _corrupt(work, "sub-01", "sub-02", "sub-03")
    done = conform("fit", "spec.toml", "--out", "res", "--overwrite", cwd=work)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Every subject failed" in done.stdout and "nothing was written" in done.stdout
    assert (work / "res" / "results.csv").read_text() == "earlier results\n"
    assert sorted(p.name for p in work.iterdir()) == ["res", "spec.toml", "study"]


def test_check_only_checks(work):
    done = conform("fit", "spec.toml", "--out", "res", "--check", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout and "Nothing was run" in done.stdout
    assert not (work / "res").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "denoiser[pca].n_components=-3"], "n_components"),
        (["--set", "denoiser[pcx].n_components=2"], "no entry labelled 'pcx'. Did you mean 'pca'?"),
        (["--set", "analysis.seed=abc"], "seed must be a non-negative integer; got 'abc'"),
        (
            ["--set", "dataset.location=/path/to/mosaic"],
            "still holds the placeholder '/path/to/mosaic'",
        ),
        (["--set", "dataset.location=nowhere"], "does not exist"),
        (
            ["--set", "aligner=procrustes", "--set", "dataset.subjects=['sub-01', 'sub-02']"],
            "needs at least 3 subjects; this analysis has 2",
        ),
        (["--scheduler", "not-an-address"], "Cannot reach the Dask scheduler at 'not-an-address'"),
    ],
)
def test_what_can_be_checked_fails_before_work_with_exit_2(work, args, expected):
    done = conform("fit", "spec.toml", "--out", "res", *args, cwd=work)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert expected in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr
    assert "conform fit [" not in done.stderr  # no task started
    assert not (work / "res").exists()


def test_check_reports_a_bad_cell_parameter(work):
    done = conform(
        "fit", "spec.toml", "--check", "--set", "denoiser[pca].n_components=-3", cwd=work
    )
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "Stage 'denoiser' (pca)" in message and "-3" in message
    assert "--set denoiser[pca].n_components=VALUE" in message


def test_rois_are_checked_against_the_dataset(work):
    spec = (
        (work / "spec.toml")
        .read_text()
        .replace('location = "study"', 'location = "study"\nrois = ["V1"]')
    )
    (work / "spec.toml").write_text(spec)
    done = conform("fit", "spec.toml", "--out", "res", "--check", cwd=work)
    assert done.returncode == 2
    assert "'V1' is not an ROI of this dataset" in " ".join(done.stderr.split())


def test_atlas_parcels_need_roi_labels_and_are_refused_before_work(work):
    """The simulator's units carry no ROI labels: psn's parcels='atlas' is refused by
    --check (exit 2), not in every cell at fit time."""
    done = conform("fit", "spec.toml", "--out", "res", "--check", "--set", "denoiser=psn",
                   "--set", "denoiser.parcels=atlas", cwd=work)
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert "parcels='atlas'" in message and "carry none" in message, message
    assert "--set denoiser[psn].parcels=VALUE" in message or "--set denoiser.parcels=VALUE" \
        in message, message
    assert "Traceback" not in done.stderr


def test_set_with_a_label_targets_one_entry(work):
    done = conform(
        "fit", "spec.toml", "--out", "res", "--set", "denoiser[pca].n_components=2", cwd=work
    )
    assert done.returncode == 0, done.stderr
    lock = tomllib.loads((work / "res" / "spec.lock.toml").read_text())
    params = {d["label"]: d["params"] for d in lock["denoiser"]}
    assert params["pca"]["n_components"] == 2
    assert "n_components" not in params["trial-average"]


def test_lock_records_the_data_used_not_the_spec_simulator_settings(work):
    spec = (
        (work / "spec.toml")
        .read_text()
        .replace('location = "study"\n', "[dataset.params]\nn_units = 300\nn_subjects = 9\n")
    )
    (work / "spec.toml").write_text(spec)
    done = conform("fit", "spec.toml", "--out", "res", "--set", "dataset.location=study", cwd=work)
    assert done.returncode == 0, done.stderr
    lock = tomllib.loads((work / "res" / "spec.lock.toml").read_text())
    assert lock["dataset"]["params"]["n_units"] == 30  # the folder's, not the spec's 300
    assert lock["dataset"]["params"]["n_subjects"] == 3
    assert lock["dataset"]["location"] == str(work / "study")
    inputs = lock["lock"]["inputs"]
    assert "stimuli.tsv" in inputs and any(k.startswith("sub-03/") for k in inputs)
    # re-running the lock reproduces the results exactly
    again = conform("fit", "res/spec.lock.toml", "--out", "res2", cwd=work)
    assert again.returncode == 0, again.stderr
    assert (work / "res2" / "results.csv").read_bytes() == (
        work / "res" / "results.csv"
    ).read_bytes()
