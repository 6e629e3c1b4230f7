"""`conform glmsingle` beyond the basics: --check, --mem, --format, --nthreads, re-runs,
condition outputs, and the dataset mode (--dataset --subject [--session])."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conform_glmsingle._io import load_output
from conform_glmsingle._jobs import _Settings
from conform_glmsingle.cli import run_glmsingle_dataset
from conform_synthetic import SimulatedFolderDataset, simulate_study, write_study

from conform_core.exceptions import ParameterError
from conform_core.registry import ComponentRegistry


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated study folder: one subject, two NIfTI runs of 30 voxels."""
    root = tmp_path_factory.mktemp("glm") / "study"
    write_study(root, simulate_study(n_subjects=1, n_units=30, n_stimuli=24, timeseries=True,
                                     random_state=0))
    return root


def _files(study: Path) -> list[str]:
    func = study / "sub-01" / "func"
    runs, events = sorted(func.glob("*_bold.nii.gz")), sorted(func.glob("*_events.tsv"))
    return [*map(str, runs), "--events", *map(str, events)]


def _conform(args: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "400"}
    done = subprocess.run([sys.executable, "-m", "conform_core", "glmsingle", *args,
                           "--no-progress"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def test_check_prints_the_design_and_exits_by_support(study, tmp_path):
    code, text = _conform([*_files(study), "--check", "--types", "BD"], tmp_path)
    assert code == 0, text
    assert "type D: yes (requested)" in text and "Predicted peak memory" in text
    assert list(tmp_path.iterdir()) == []  # nothing written
    # --check also checks the --mem budget
    code, text = _conform([*_files(study), "--check", "--mem", "1MB"], tmp_path)
    assert code == 2 and "--mem 1.00 MB is too small" in text
    # a single run cannot cross-validate: D unsupported -> exit 2, B alone fine
    one = [_files(study)[0], "--events", _files(study)[3]]
    code, text = _conform([*one, "--check", "--types", "D"], tmp_path)
    assert code == 2, text
    assert "type D: NO (requested)" in text and "single run" in text
    code, text = _conform([*one, "--out", str(tmp_path / "o"), "--types", "D"], tmp_path)
    assert code == 2 and "cannot support type(s) D" in text and "--types B" in text
    assert not (tmp_path / "o").exists()
    assert _conform([*one, "--check", "--types", "B"], tmp_path)[0] == 0


def test_fit_writes_conditions_and_skips_a_rerun(study, tmp_path):
    out = tmp_path / "glm"
    args = [*_files(study), "--out", str(out), "--format", "npy", "--nthreads", "1"]
    code, text = _conform(args, tmp_path)
    assert code == 0, text
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["nthreads"] == 1 and prov["format"] == "npy" and prov["types"] == ["D"]
    typed = load_output(out / "TYPED_FITHRF_GLMDENOISE_RR")
    cond = load_output(out / "CONDITIONS_TYPED")
    betas = typed["betasmd"].reshape(30, -1)
    trials = np.genfromtxt(out / "trials.tsv", delimiter="\t", names=True, dtype=None,
                           encoding="utf-8")
    np.testing.assert_array_equal(cond["trial_condition"], trials["condition_index"])
    c0 = cond["trial_condition"] == 0
    # float32 betas averaged in float64, stored as float32: rounding only
    np.testing.assert_allclose(cond["mean"].reshape(30, -1)[:, 0], betas[:, c0].mean(axis=1),
                               rtol=1e-5, atol=1e-6)
    assert cond["n_trials"].sum() == betas.shape[1]
    stamp = (out / "provenance.json").stat().st_mtime_ns
    code, text = _conform(args, tmp_path)
    assert code == 0 and "already holds this fit" in text and "skipping" in text
    assert (out / "provenance.json").stat().st_mtime_ns == stamp
    # other options: the folder is not this fit's -> refused without --overwrite
    code, text = _conform([*args[:-4], "--out", str(out), "--types", "BD"], tmp_path)
    assert code == 2 and "is not empty" in text
    # --overwrite fits again, even over a complete fit of the same inputs and options
    code, text = _conform([*args, "--overwrite"], tmp_path)
    assert code == 0 and "skipping" not in text, text
    assert (out / "provenance.json").stat().st_mtime_ns != stamp


def test_run_files_that_disagree_on_the_tr_are_refused(study, tmp_path):
    import nibabel as nib

    files = _files(study)
    copy = tmp_path / "run2_bold.nii.gz"
    image = nib.load(files[1])
    image.header.set_zooms(image.header.get_zooms()[:3] + (2.0,))
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine, image.header), copy)
    args = [files[0], str(copy), *files[2:], "--out", str(tmp_path / "glm")]
    code, text = _conform(args, tmp_path)
    assert code == 2 and "disagree on the TR" in text and "records 2.0 s" in text, text
    assert not (tmp_path / "glm").exists()
    code, text = _conform([*args, "--tr", "1", "--check"], tmp_path)  # --tr decides, and says so
    assert code == 0 and "differs from the TR in the run headers" in text, text


def test_mem_chooses_the_chunk_or_refuses_before_work(study, tmp_path):
    out = tmp_path / "glm"
    code, text = _conform([*_files(study), "--out", str(out), "--mem", "1MB"], tmp_path)
    assert code == 2 and "--mem 1.00 MB is too small" in text and not out.exists()
    code, text = _conform([*_files(study), "--out", str(out), "--mem", "2GB", "--format",
                           "hdf5"], tmp_path)
    assert code == 0, text
    assert "within --mem 2.00 GB" in text
    assert (out / "TYPED_FITHRF_GLMDENOISE_RR.hdf5").is_file()
    assert load_output(out / "DESIGNINFO.hdf5")["stimdur"] > 0


def test_dataset_mode_with_the_synthetic_folder(study, tmp_path):
    out = tmp_path / "glm"
    args = ["--dataset", "synthetic-folder", "--location", str(study), "--subject", "01",
            "--out", str(out)]
    code, text = _conform(args, tmp_path)
    assert code == 0, text
    assert (out / "sub-01" / "provenance.json").is_file()
    assert (out / "sub-01" / "conditions.tsv").is_file()
    code, text = _conform(args, tmp_path)
    assert code == 0 and "already holds this fit" in text
    code, text = _conform([*args, "--session", "1"], tmp_path)
    assert code == 2 and "has no 'sessions' parameter" in text


def test_dataset_mode_refits_when_an_input_file_changes(study, tmp_path):
    import shutil

    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    out = tmp_path / "glm"
    args = ["--dataset", "synthetic-folder", "--location", "study", "--subject", "01",
            "--out", str(out), "--types", "B"]
    assert _conform(args, tmp_path)[0] == 0
    # the same folder named another way is the same input: skipped
    code, text = _conform([*args[:3], str(copy), *args[4:]], tmp_path)
    assert code == 0 and "already holds this fit" in text, text
    events = sorted((copy / "sub-01" / "func").glob("*_events.tsv"))[0]
    events.write_text(events.read_text())  # rewritten: another modification time
    os.utime(events, ns=(events.stat().st_atime_ns, events.stat().st_mtime_ns + 10**9))
    code, text = _conform(args, tmp_path)
    assert code == 2 and "is not empty" in text  # not this fit any more: refused, not skipped
    code, text = _conform([*args, "--overwrite"], tmp_path)
    assert code == 0 and "skipping" not in text, text


class SessionFolder(SimulatedFolderDataset):
    """The simulated study, each run its own session ("1", "2"), loadable one session at a time."""

    def __init__(self, location: str | None = None, sessions: list[str] | None = None) -> None:
        super().__init__(location=location)
        self.sessions = sessions

    def _load_subject(self, name: str) -> Any:
        from dataclasses import replace

        subject = super()._load_subject(name)
        ts = subject.timeseries
        keep = [i for i in range(ts.n_runs) if self.sessions is None
                or str(i + 1) in [str(s) for s in self.sessions]]
        return replace(subject, timeseries=replace(
            ts, runs=[ts.runs[i] for i in keep], events=[ts.events[i] for i in keep],
            sessions=np.array([i + 1 for i in keep])))


def test_dataset_mode_loads_one_session_of_a_dataset_with_sessions(study, tmp_path):
    registry = ComponentRegistry()
    registry.add("dataset", "session-folder", SessionFolder)
    lines: list[str] = []
    settings = _Settings(types="B", verbose=False, echo=lines.append)
    written, results, code, target = run_glmsingle_dataset(
        "session-folder", tmp_path / "glm", subject="sub-01", session="2",
        location=str(study), registry=registry, settings=settings)
    assert code == 0 and target == tmp_path / "glm" / "sub-01" / "ses-2"
    prov = json.loads((target / "provenance.json").read_text())
    assert prov["inputs"]["session"] == "2" and prov["design"]["n_runs"] == 1
    assert "Design:" in lines[0] and "1 run(s)" in lines[0]
    # D needs two runs: the single session cannot support it, refused before any output
    with pytest.raises(ParameterError, match="cannot support type"):
        run_glmsingle_dataset("session-folder", tmp_path / "glm2", subject="01", session="1",
                              location=str(study), registry=registry,
                              settings=_Settings(types="D", verbose=False))
    assert not (tmp_path / "glm2").exists()


def test_dataset_confounds_stay_in_every_model(tmp_path):
    """The dataset's confounds are extra regressors of types C and D too (quirks "fixed"):
    the official quirks would drop them from a 0-PC model, leaving type D without them."""
    root = tmp_path / "moving"
    write_study(root, simulate_study(n_subjects=1, n_units=30, n_stimuli=24, timeseries=True,
                                     motion=1.0, random_state=0))
    out = tmp_path / "glm"
    code, text = _conform(["--dataset", "synthetic-folder", "--location", str(root), "--subject",
                           "01", "--out", str(out), "--types", "BD"], tmp_path)
    assert code == 0, text
    assert json.loads((out / "sub-01" / "provenance.json").read_text())["quirks"] == "fixed"
    for stem in ("TYPEB_FITHRF", "TYPED_FITHRF_GLMDENOISE_RR"):
        extra = load_output(out / "sub-01" / stem)["extrabetas"]
        assert len(extra) == 2 and all(np.isfinite(e).all() and e.shape[-1] == 6 for e in extra)


def test_dataset_mode_output_inside_the_study_is_skipped_on_rerun(study, tmp_path):
    """BIDS keeps derivatives under the study: the fit's own outputs are not its inputs."""
    import shutil

    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    args = ["--dataset", "synthetic-folder", "--location", str(copy), "--subject", "01",
            "--out", str(copy / "derivatives" / "glmsingle"), "--types", "B"]
    assert _conform(args, tmp_path)[0] == 0
    code, text = _conform(args, tmp_path)
    assert code == 0 and "already holds this fit" in text, text
