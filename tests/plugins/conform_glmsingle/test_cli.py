"""`conform glmsingle` through the real command line: --out / --overwrite, the summary, bad files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conform_glmsingle.cli import check_out_folder, run_glmsingle_files, summarize_fit
from conform_synthetic import simulate_study, write_study

from conform_core.exceptions import DataFileError


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    """Two NIfTI runs of 30 voxels and their events (a 2-s fit)."""
    root = tmp_path_factory.mktemp("glm") / "study"
    write_study(root, simulate_study(n_subjects=1, n_units=30, n_stimuli=24, timeseries=True,
                                     random_state=0))
    func = root / "sub-01" / "func"
    runs, events = sorted(func.glob("*_bold.nii.gz")), sorted(func.glob("*_events.tsv"))
    assert len(runs) == 2 and len(events) == 2
    return runs, events


def _conform(args: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "400"}  # no wrapping inside the long paths
    done = subprocess.run([sys.executable, "-m", "conform_core", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def _args(runs: list[Path], events: list[Path], out: Path) -> list[str]:
    return ["glmsingle", *map(str, runs), "--events", *map(str, events), "--out", str(out),
            "--no-progress"]


def test_non_empty_out_is_refused_and_overwrite_replaces_it_whole(study, tmp_path, umask,
                                                                  assert_modes):
    runs, events = study
    umask(0o022)
    out = tmp_path / "glm_out"
    out.mkdir()
    (out / "stale_sub-02_marker.txt").write_text("from an earlier subject")

    code, text = _conform(_args(runs, events, out), tmp_path)
    assert code == 2, text
    assert f"Output folder {str(out)!r} is not empty" in text
    assert "--overwrite" in text and "another --out" in text
    assert [p.name for p in out.iterdir()] == ["stale_sub-02_marker.txt"]

    code, text = _conform([*_args(runs, events, out), "--overwrite"], tmp_path)
    assert code == 0, text
    names = sorted(p.name for p in out.iterdir())
    assert "stale_sub-02_marker.txt" not in names
    assert {"DESIGNINFO", "TYPED_FITHRF_GLMDENOISE_RR", "trials.tsv", "conditions.tsv",
            "CONDITIONS_TYPED", "betas_typeD.nii.gz", "condition_mean_typeD.nii.gz",
            "condition_t_typeD.nii.gz", "provenance.json"} <= set(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glm_out"]  # no temporary folder left
    assert f"Wrote {len(names)} file(s) to {out}" in text
    assert "HRF index per unit (0-based, 30 units): median" in text
    assert "Noise PCs (GLMdenoise):" in text and "Ridge fraction per unit (30 units)" in text
    assert "Design: 24 conditions, 72 trials in 2 run(s)" in text  # the design check, first
    assert text.index("Design:") < text.index("Predicted peak memory:") < text.index("Wrote")
    assert_modes(out, files=0o644, folders=0o755)  # readable by lab colleagues


def test_truncated_nifti_names_the_file_and_the_fix(study, tmp_path):
    runs, events = study
    broken = tmp_path / "sub-01_run-01_bold.nii.gz"
    data = runs[0].read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # an interrupted copy
    out = tmp_path / "glm_out"

    code, text = _conform(_args([broken, runs[1]], events, out), tmp_path)
    assert code == 2, text
    assert f"Run file {str(broken)!r} is truncated or corrupt" in text
    assert "Copy or export it again" in text and "gzip -t" in text
    assert "Aborted" not in text and "Traceback" not in text
    assert not out.exists()


def test_refusal_comes_before_reading_any_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(DataFileError, match="is not empty. Pass --overwrite"):
        run_glmsingle_files([tmp_path / "missing_bold.nii.gz"], [tmp_path / "missing.tsv"], out,
                            tr=None, stimdur=None)


def test_empty_existing_out_is_used(study, tmp_path):
    runs, events = study
    out = tmp_path / "out"
    out.mkdir()
    written = run_glmsingle_files(runs, events, out, tr=None, stimdur=None, types="B",
                                  verbose=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert all(p.parent == out.resolve() for p in written)


def test_out_that_is_a_file_or_holds_the_current_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataFileError, match="is a file, not a folder"):
        check_out_folder(tmp_path / "f", overwrite=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileError, match="holds the current folder"):
        check_out_folder(Path("."), overwrite=True)


def test_summary_says_what_each_type_chose():
    hrf = np.array([3, 3, 7, 1]).reshape(4, 1, 1)
    frac = np.array([0.05, 0.5, 1.0, np.nan]).reshape(4, 1, 1)
    lines = summarize_fit({"typeb": {"HRFindex": hrf},
                           "typed": {"HRFindex": hrf, "pcnum": 4, "noisepool": np.ones(4),
                                     "FRACvalue": frac}})
    assert lines == [
        "HRF index per unit (0-based, 4 units): median 3, most common 3 (2 units), range 1-7",
        "Noise PCs (GLMdenoise): 4",
        "Ridge fraction per unit (3 units): median 0.50, range 0.05-1.00",
    ]
    off = summarize_fit({"typec": {"HRFindex": hrf, "pcnum": 0, "noisepool": None}})
    assert off[1] == "Noise PCs (GLMdenoise): none, GLMdenoise was off"
    assert summarize_fit({"typea": {"onoffR2": np.zeros(4)}}) == []
