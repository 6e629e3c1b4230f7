"""``conform simulate --timeseries --layout fmriprep``: the BIDS raw tree, the fMRIPrep-style
derivatives and the ground truth hold exactly the simulator's study, in the layout of
docs/formats.md; bad combinations are refused before anything is written."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conform_synthetic import SimulatedFolderDataset, simulate_study, write_study
from conform_synthetic._fmriprep import FSAVERAGE5_VERTICES
from conform_synthetic._motion import MOTION_NAMES
from PIL import Image

from conform_core.cli import main
from conform_core.exceptions import DataFileError, ParameterError

#: One session, two runs, an odd sheet (21 units: hemi L gets ceil(21/2) = 11), no motion.
ONE = dict(n_subjects=1, n_units=21, n_stimuli=20, n_repeats=2, n_features=8, n_latent=3,
           timeseries=True, trials_per_run=20, random_state=1)
#: Two subjects, three sessions of one run each, missing units, motion.
MANY = dict(n_subjects=2, n_units=12, n_stimuli=24, n_repeats=2, n_features=8, n_latent=3,
            timeseries=True, trials_per_run=16, runs_per_session=1, unit_dropout=0.3,
            motion=0.5, random_state=2)
DERIV = Path("derivatives") / "fmriprep"
SPACE = "space-MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    study = simulate_study(**ONE)
    return study, write_study(tmp_path_factory.mktemp("one") / "bids", study, layout="fmriprep")


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    study = simulate_study(**MANY)
    return study, write_study(tmp_path_factory.mktemp("many") / "bids", study, layout="fmriprep")


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _expected_files(stems: list[tuple[str, str]], subjects: list[str],
                    stimuli: list[str]) -> set[str]:
    files = {"dataset_description.json", "participants.tsv", "study.json",
             "task-conform_bold.json", "stimuli/stimuli.tsv", "stimuli/stimuli_embeddings.npy",
             f"{DERIV}/dataset_description.json",
             "derivatives/ground-truth/dataset_description.json"}
    files |= {f"stimuli/images/{s}.png" for s in stimuli}
    files |= {f"derivatives/ground-truth/{s}/{s}_desc-truth.npz" for s in subjects}
    for folder, stem in stems:
        files |= {f"{folder}/{stem}_events.tsv", f"{folder}/{stem}_bold.nii.gz"}
        d = f"{DERIV}/{folder}/{stem}"
        files |= {f"{d}_{SPACE}_desc-preproc_bold.nii.gz", f"{d}_{SPACE}_desc-preproc_bold.json",
                  f"{d}_{SPACE}_desc-brain_mask.nii.gz",
                  f"{d}_space-fsaverage5_hemi-L_bold.func.gii",
                  f"{d}_space-fsaverage5_hemi-R_bold.func.gii",
                  f"{d}_desc-confounds_timeseries.tsv", f"{d}_desc-confounds_timeseries.json"}
    return files


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_single_session_tree_is_complete(one) -> None:
    study, root = one
    stems = [("sub-01/func", f"sub-01_task-conform_run-{r:02d}") for r in (1, 2)]
    assert study.subjects[0].timeseries.n_runs == 2
    assert _tree(root) == _expected_files(stems, ["sub-01"], study.stimuli.ids.tolist())


def test_sessions_get_ses_levels_and_runs_restart(many) -> None:
    study, root = many
    stems = []
    for s in study.subjects:
        assert s.timeseries.n_runs == 3 and s.timeseries.sessions.tolist() == [0, 1, 2]
        stems += [(f"{s.name}/ses-{k:02d}/func", f"{s.name}_ses-{k:02d}_task-conform_run-01")
                  for k in (1, 2, 3)]
    assert _tree(root) == _expected_files(stems, ["sub-01", "sub-02"],
                                          study.stimuli.ids.tolist())


def test_descriptions_participants_and_tr(one) -> None:
    study, root = one
    raw = _json(root / "dataset_description.json")
    assert raw["BIDSVersion"] == "1.10.0" and raw["DatasetType"] == "raw" and raw["Name"]
    assert raw["GeneratedBy"][0]["Name"] == "conform simulate"
    for sub in (DERIV, Path("derivatives/ground-truth")):
        d = _json(root / sub / "dataset_description.json")
        assert d["DatasetType"] == "derivative" and d["BIDSVersion"] == "1.10.0"
        assert d["GeneratedBy"][0]["Name"] == "conform simulate"
    assert [r["participant_id"] for r in _tsv(root / "participants.tsv")] == ["sub-01"]
    assert _json(root / "task-conform_bold.json") == {"RepetitionTime": 1.0,
                                                      "TaskName": "conform"}
    info = _json(root / "study.json")
    assert info["layout"] == "fmriprep" and info["params"] == study.params
    for sidecar in root.glob(f"{DERIV}/sub-01/func/*preproc_bold.json"):
        assert _json(sidecar)["RepetitionTime"] == 1.0


def test_stimuli_table_embeddings_and_images(one, tmp_path: Path) -> None:
    study, root = one
    rows = _tsv(root / "stimuli" / "stimuli.tsv")
    assert list(rows[0]) == ["stimulus_id", "stim_file", "category", "split"]
    assert [r["stimulus_id"] for r in rows] == study.stimuli.ids.tolist()
    assert {r["stimulus_id"] for r in rows if r["split"] == "test"} == set(study.test_ids)
    embeddings = np.load(root / "stimuli" / "stimuli_embeddings.npy")
    assert embeddings.dtype == np.float32
    np.testing.assert_array_equal(embeddings, study.stimuli.embeddings)
    for r in rows:
        with Image.open(root / "stimuli" / r["stim_file"]) as image:
            assert image.mode == "RGB" and image.size == (32, 32)
    # deterministic: the same study written again gives the same bytes, every file
    again = write_study(tmp_path / "again", study, layout="fmriprep")
    digest = {p: hashlib.sha256((again / p).read_bytes()).digest() for p in _tree(again)}
    assert digest == {p: hashlib.sha256((root / p).read_bytes()).digest() for p in _tree(root)}


def _volume(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def _surface(folder: Path, stem: str) -> np.ndarray:
    """The run on [hemi-L, hemi-R] vertices (vertices x volumes), hemisphere meta checked."""
    halves = []
    for hemi, structure in (("L", "CortexLeft"), ("R", "CortexRight")):
        image = nib.load(str(folder / f"{stem}_space-fsaverage5_hemi-{hemi}_bold.func.gii"))
        assert image.meta["AnatomicalStructurePrimary"] == structure
        assert {d.intent for d in image.darrays} == {
            nib.nifti1.intent_codes["NIFTI_INTENT_TIME_SERIES"]}
        data = image.agg_data()
        assert data.shape[0] == FSAVERAGE5_VERTICES and data.dtype == np.float32
        halves.append(data)
    return np.concatenate(halves)


@pytest.mark.parametrize("which", ["one", "many"])
def test_volumes_surfaces_and_mask_hold_the_simulated_runs(which, request) -> None:
    study, root = request.getfixturevalue(which)
    for subject in study.subjects:
        ts = subject.timeseries
        truth = np.load(root / "derivatives/ground-truth" / subject.name /
                        f"{subject.name}_desc-truth.npz")
        vol, surf = truth["volume_index"], truth["surface_index"]
        np.testing.assert_array_equal(vol, ts.units.indices)
        half = math.ceil(study.params["n_units"] / 2)
        np.testing.assert_array_equal(surf < FSAVERAGE5_VERTICES, ts.units.indices < half)
        derivs = sorted((root / DERIV / subject.name).rglob(f"*{SPACE}_desc-preproc_bold.nii.gz"))
        raws = sorted((root / subject.name).rglob("*_bold.nii.gz"))
        assert len(derivs) == len(raws) == ts.n_runs
        for r, (deriv, raw) in enumerate(zip(derivs, raws, strict=True)):
            run = np.asarray(ts.runs[r])
            assert deriv.read_bytes() == raw.read_bytes()  # the raw run is the same data
            image = nib.load(str(deriv))
            assert image.shape[2] == 1 and image.header.get_zooms()[3] == ts.tr
            flat = _volume(deriv).reshape(-1, run.shape[1])
            np.testing.assert_array_equal(flat[vol], run)
            assert not np.delete(flat, vol, axis=0).any()  # voxels of no unit are 0
            stem = deriv.name.split(f"_{SPACE}")[0]
            mask = nib.load(str(deriv.parent / f"{stem}_{SPACE}_desc-brain_mask.nii.gz"))
            assert mask.get_data_dtype() == np.uint8 and mask.shape == image.shape[:3]
            assert np.flatnonzero(np.asarray(mask.dataobj).ravel()).tolist() == sorted(vol)
            vertices = _surface(deriv.parent, stem)
            np.testing.assert_array_equal(vertices[surf], run)
            assert not np.delete(vertices, surf, axis=0).any()


def test_events_name_the_stimulus_images(many) -> None:
    study, root = many
    subject = study.subjects[1]
    files = sorted((root / subject.name).rglob("*_events.tsv"))
    ids = dict((r["stim_file"], r["stimulus_id"]) for r in _tsv(root / "stimuli/stimuli.tsv"))
    for path, events in zip(files, subject.timeseries.events, strict=True):
        rows = _tsv(path)
        assert list(rows[0]) == ["onset", "duration", "trial_type", "stim_file"]
        assert {r["trial_type"] for r in rows} == {"image"}
        np.testing.assert_array_equal([float(r["onset"]) for r in rows], events.onset)
        np.testing.assert_array_equal([float(r["duration"]) for r in rows], events.duration)
        assert [ids[r["stim_file"]] for r in rows] == events.stimulus_ids.tolist()


@pytest.mark.parametrize("which", ["one", "many"])
def test_confounds_table(which, request) -> None:
    study, root = request.getfixturevalue(which)
    subject = study.subjects[0]
    ts = subject.timeseries
    tables = sorted((root / DERIV / subject.name).rglob("*_desc-confounds_timeseries.tsv"))
    if which == "one":  # no motion in the data: the table has the walks motion would add
        moving = simulate_study(**ONE, motion=1.0).subjects[0].timeseries.confounds
    else:
        moving = ts.confounds
    for r, path in enumerate(tables):
        lines = [line.split("\t") for line in path.read_text().splitlines()]
        header, body = lines[0], lines[1:]
        n = ts.runs[r].shape[1]
        n_cos = math.floor(2 * n * ts.tr / 128) - 1  # fMRIPrep's DCT basis, constant left out
        assert header == [*MOTION_NAMES, "framewise_displacement", "global_signal",
                          *(f"cosine{k:02d}" for k in range(n_cos))]
        assert len(body) == n and body[0][6] == "n/a"
        assert all(v != "n/a" for row in body[1:] for v in row) and "n/a" not in body[0][:6]
        values = np.array([[np.nan if v == "n/a" else float(v) for v in row] for row in body])
        np.testing.assert_array_equal(values[:, :6], moving[r])
        np.testing.assert_allclose(values[:, 7], np.asarray(ts.runs[r], np.float64).mean(0),
                                   rtol=1e-12)
        sidecar = _json(path.with_suffix(".json"))
        assert set(sidecar) == set(header) and sidecar["trans_x"]["Units"] == "mm"


@pytest.mark.parametrize("which", ["one", "many"])
def test_truth_npz(which, request) -> None:
    study, root = request.getfixturevalue(which)
    for subject in study.subjects:
        truth = subject.truth
        path = root / "derivatives/ground-truth" / subject.name / f"{subject.name}_desc-truth.npz"
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        n_units, n_stim = truth.signal.data.shape
        assert set(a) == {"signal", "stimulus_ids", "noise_ceiling", "hrf_index",
                          "trial_amplitudes", "volume_index", "surface_index", "shared_space",
                          "shared_space_ids", "unit_positions"}
        assert a["signal"].dtype == np.float32 and a["signal"].shape == (n_units, n_stim)
        np.testing.assert_array_equal(a["signal"], truth.signal.data)
        np.testing.assert_array_equal(a["stimulus_ids"], truth.signal.stimulus_ids)
        np.testing.assert_array_equal(a["noise_ceiling"], truth.noise_ceiling)
        np.testing.assert_array_equal(a["hrf_index"], truth.hrf_index)
        assert a["trial_amplitudes"].shape == (subject.trials.n_trials, n_units)
        np.testing.assert_array_equal(a["trial_amplitudes"], truth.trial_amplitudes)
        for key in ("volume_index", "surface_index"):
            assert a[key].shape == (n_units,) and a[key].dtype == np.int64
        np.testing.assert_array_equal(a["unit_positions"], truth.unit_positions)
        # trials in event order: the stimulus of each trial is that of the events, BIDS order
        events = sorted((root / subject.name).rglob("*_events.tsv"))
        stim = [r["stim_file"][len("images/"):-len(".png")] for p in events for r in _tsv(p)]
        assert stim == subject.trials.stimulus_ids.tolist()


def test_synthetic_folder_refuses_the_layout(one) -> None:
    with pytest.raises(DataFileError, match=r"--layout fmriprep.*bids dataset"):
        SimulatedFolderDataset(location=str(one[1])).subjects()


def test_bad_combinations_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"layout fmriprep.*timeseries"):
        write_study(tmp_path / "a", {"n_subjects": 1, "n_units": 9}, layout="fmriprep")
    with pytest.raises(ParameterError, match=r"'conform'.*'fmriprep'"):
        write_study(tmp_path / "b", {"n_subjects": 1, "n_units": 9}, layout="bids")
    with pytest.raises(ParameterError, match=r"20485 units.*20484 vertices"):
        write_study(tmp_path / "c", {"n_subjects": 1, "n_units": 20485, "timeseries": True},
                    layout="fmriprep")
    assert not list(tmp_path.iterdir())


def _cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return int(info.value.code), captured.out + captured.err


def test_cli_exit_codes(tmp_path: Path, capsys) -> None:
    small = ["--subjects", "1", "--units", "9", "--stimuli", "12", "--repeats", "2", "--quiet"]
    code, text = _cli(["simulate", str(tmp_path / "ok"), *small, "--timeseries",
                       "--layout", "fmriprep"], capsys)
    assert code == 0 and "BIDS with fMRIPrep-style derivatives" in text, text
    assert (tmp_path / "ok" / DERIV / "dataset_description.json").is_file()
    code, text = _cli(["simulate", str(tmp_path / "no"), *small, "--layout", "fmriprep"], capsys)
    assert code == 2 and "--layout fmriprep" in text and "Pass --timeseries" in text, text
    code, text = _cli(["simulate", str(tmp_path / "no"), *small, "--layout", "nifti"], capsys)
    assert code == 2 and "The --layout option must be" in text, text
    code, text = _cli(["simulate", str(tmp_path / "no"), *small, "--motion", "1"], capsys)
    assert code == 2 and "--motion=1.0" in text and "--timeseries" in text, text
    assert not (tmp_path / "no").exists()


def test_default_layout_is_unchanged(tmp_path: Path) -> None:
    """The default layout writes what it always did: no layout key, no new files."""
    root = write_study(tmp_path / "s", {"n_subjects": 1, "n_units": 9, "n_stimuli": 12,
                                        "timeseries": True})
    assert "layout" not in _json(root / "study.json")
    assert sorted(_tree(root)) == sorted([
        "dataset_description.json", "stimuli.tsv", "stimuli_embeddings.npy",
        "stimuli_latent.npy", "study.json", "sub-01/sub-01_trials.npz", "sub-01/sub-01_runs.tsv",
        "sub-01/func/sub-01_task-conform_run-01_bold.nii.gz",
        "sub-01/func/sub-01_task-conform_run-01_bold.json",
        "sub-01/func/sub-01_task-conform_run-01_events.tsv"])
