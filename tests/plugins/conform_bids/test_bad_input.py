"""Bad input: each a DataFileError naming the file and the fix, raised before any output.

Layout problems (a run without events, a stimulus file missing, a TR missing or inconsistent),
confound values and what image headers tell (mask and BOLD grids, volumes per confounds row)
fail ``check_params()`` (what ``conform fit`` runs before any work) and ``load_subject``;
image data problems (surface hemisphere or density, truncated NIfTI) fail ``load_subject``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conform_bids import BIDSDataset
from conform_bids.testing import _gifti

from conform_core.exceptions import DataFileError

RUN1 = "sub-01_ses-01_task-conform_run-01"
SPACE = "space-MNI152NLin2009cAsym"


def _func(root: Path, deriv: bool = False) -> Path:
    base = root / "derivatives" / "fmriprep" if deriv else root
    return base / "sub-01" / "ses-01" / "func"


def _fails_check_and_load(root: Path, match: str, **params: object) -> None:
    with pytest.raises(DataFileError, match=match):
        BIDSDataset(location=str(root), **params).check_params()  # type: ignore[arg-type]
    with pytest.raises(DataFileError, match=match):
        BIDSDataset(location=str(root), **params).load_subject("sub-01")  # type: ignore[arg-type]


def test_a_run_without_events(fresh_toy: Path) -> None:
    (_func(fresh_toy) / f"{RUN1}_events.tsv").unlink()
    _fails_check_and_load(fresh_toy, rf"sub-01 ses-01 task-conform run-1 has a BOLD run "
                                     rf"\({RUN1}_{SPACE}_desc-preproc_bold.nii.gz\) but no "
                                     rf"events.tsv. Add .*{RUN1}_events.tsv")


def test_events_naming_a_stimulus_without_file(fresh_toy: Path) -> None:
    path = _func(fresh_toy) / f"{RUN1}_events.tsv"
    path.write_text(path.read_text().replace("images/stim-0003.png", "images/gone.png"))
    _fails_check_and_load(fresh_toy, r"names the stimulus file 'images/gone.png', but "
                                     r".*stimuli/images/gone.png' does not exist. Put the "
                                     "stimulus there")


def test_events_naming_a_file_the_stimulus_table_omits(fresh_toy: Path) -> None:
    (fresh_toy / "stimuli" / "images" / "extra.png").write_bytes(b"png")
    path = _func(fresh_toy) / f"{RUN1}_events.tsv"
    path.write_text(path.read_text().replace("images/stim-0003.png", "images/extra.png"))
    _fails_check_and_load(fresh_toy, r"stimuli.tsv' does not list. Add a row for it")


def _rewrite_json(path: Path, **changes: object) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps({k: v for k, v in meta.items() if v is not None}))


def test_a_tr_missing_from_every_sidecar(fresh_toy: Path) -> None:
    _rewrite_json(fresh_toy / "task-conform_bold.json", RepetitionTime=None)
    for path in (fresh_toy / "derivatives").rglob("*_bold.json"):
        _rewrite_json(path, RepetitionTime=None)
    _fails_check_and_load(fresh_toy, r"No RepetitionTime for sub-01 ses-01 task-conform run-1"
                                     r".*Add \"RepetitionTime\": <seconds> to "
                                     r"task-conform_bold.json")


def test_the_tr_is_inherited_from_the_top_level_sidecar(fresh_toy: Path) -> None:
    for path in (fresh_toy / "derivatives").rglob("*_bold.json"):
        path.unlink()
    _rewrite_json(fresh_toy / "task-conform_bold.json", RepetitionTime=1.0)
    ds = BIDSDataset(location=str(fresh_toy))
    ds.check_params()
    assert ds.load_subject("sub-01").timeseries.tr == 1.0


def test_a_tr_inconsistent_across_runs(fresh_toy: Path) -> None:
    path = _func(fresh_toy, deriv=True) / f"{RUN1}_{SPACE}_desc-preproc_bold.json"
    _rewrite_json(path, RepetitionTime=2.0)
    _fails_check_and_load(fresh_toy, r"The runs of sub-01 have different RepetitionTime "
                                     rf"\(1 s in .*; 2 s in .*{RUN1}_{SPACE}_desc-preproc_bold"
                                     r".nii.gz\). One TR per subject")


def test_a_mask_not_on_the_bold_grid(fresh_toy: Path) -> None:
    for mask in (fresh_toy / "derivatives" / "fmriprep" / "sub-01").rglob("*brain_mask.nii.gz"):
        nib.save(nib.Nifti1Image(np.ones((3, 4, 2), np.uint8), np.eye(4)), str(mask))
    # headers only: found by check_params, before any output
    _fails_check_and_load(fresh_toy, r"The brain mask .*brain_mask.nii.gz' \(shape \(3, 4, "
                                     r"2\).* does not match the BOLD grid of .*preproc_bold"
                                     r".nii.gz' \(shape \(3, 4, 1\).*Use the mask fMRIPrep")


def test_masks_of_one_subject_on_different_grids(fresh_toy: Path) -> None:
    mask = _func(fresh_toy, deriv=True) / f"{RUN1}_{SPACE}_desc-brain_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((3, 4, 1), np.uint8), 2 * np.eye(4)), str(mask))
    _fails_check_and_load(fresh_toy, "is on another grid than")


def test_a_surface_of_the_wrong_hemisphere(fresh_toy: Path) -> None:
    path = _func(fresh_toy, deriv=True) / f"{RUN1}_space-fsaverage5_hemi-L_bold.func.gii"
    _gifti(path, np.zeros((10242, 3), np.float32), "R")
    with pytest.raises(DataFileError, match=r"hemi-L_bold.func.gii' is named hemi-L but holds "
                                            "the right hemisphere"):
        BIDSDataset(location=str(fresh_toy), space="fsaverage5").load_subject("sub-01")


def test_a_surface_of_the_wrong_density(fresh_toy: Path) -> None:
    path = _func(fresh_toy, deriv=True) / f"{RUN1}_space-fsaverage5_hemi-R_bold.func.gii"
    _gifti(path, np.zeros((40962, 3), np.float32), "R")
    with pytest.raises(DataFileError, match=r"has 40962 vertices but space fsaverage5 has 10242 "
                                            "per hemisphere"):
        BIDSDataset(location=str(fresh_toy), space="fsaverage5").load_subject("sub-01")
    # and an fsaverage5 file read as fsaverage6 names the density it expected
    from conform_bids._images import read_surface

    left = path.with_name(path.name.replace("hemi-R", "hemi-L"))
    with pytest.raises(DataFileError, match="has 10242 vertices but space fsaverage6 has 40962"):
        read_surface(str(left), "L", "fsaverage6", None)


def test_confounds_with_nan_rows(toy_study: Path) -> None:
    _fails_check_and_load(toy_study, r"desc-confounds_timeseries.tsv' has n/a values in "
                                     r"\['framewise_displacement'\] \(rows \[0\].*"
                                     "confounds_na='zero'",
                          confounds=["motion6", "framewise_displacement"])
    filled = BIDSDataset(location=str(toy_study), confounds=["motion6", "framewise_displacement"],
                         confounds_na="zero").load_subject("sub-01").timeseries
    assert filled.confound_names == ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z",
                                     "framewise_displacement")
    assert all(c[0, 6] == 0.0 and np.isfinite(c).all() for c in filled.confounds)


def test_an_unknown_confound_column_suggests_the_closest(toy_study: Path) -> None:
    with pytest.raises(DataFileError, match=r"has no column\(s\) \['trans_q'\]"):
        BIDSDataset(location=str(toy_study), confounds=["trans_q"]).load_subject("sub-01")


def test_a_truncated_nifti(fresh_toy: Path) -> None:
    path = _func(fresh_toy, deriv=True) / f"{RUN1}_{SPACE}_desc-preproc_bold.nii.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    with pytest.raises(DataFileError, match=rf"{RUN1}_{SPACE}_desc-preproc_bold.nii.gz'.*"
                                            "Re-copy the file"):
        BIDSDataset(location=str(fresh_toy)).load_subject("sub-01")


def test_a_file_that_is_not_nifti(fresh_toy: Path) -> None:
    path = _func(fresh_toy, deriv=True) / f"{RUN1}_{SPACE}_desc-preproc_bold.nii.gz"
    path.write_bytes(b"not an image at all")
    with pytest.raises(DataFileError, match=r"Cannot read NIfTI file .*preproc_bold.nii.gz' "
                                            r"\(19 bytes\)"):
        BIDSDataset(location=str(fresh_toy)).load_subject("sub-01")


def test_several_tasks_need_a_choice(fresh_toy: Path) -> None:
    src = _func(fresh_toy)
    for f in list(src.glob(f"{RUN1}_*")):
        (src / f.name.replace("task-conform", "task-other")).write_bytes(f.read_bytes())
    from conform_core.exceptions import ParameterError

    with pytest.raises(ParameterError, match=r"one of the tasks found \(conform, other\)"):
        BIDSDataset(location=str(fresh_toy)).check_params()
    assert BIDSDataset(location=str(fresh_toy)).describe()["choose"].startswith("several tasks")
    ds = BIDSDataset(location=str(fresh_toy), task="conform")
    ds.check_params()
    assert any("task 'other' is not the chosen task" in line
               for line in ds.describe()["cannot use"])


def test_a_missing_derivatives_folder(toy_study: Path) -> None:
    with pytest.raises(DataFileError, match=r'derivatives = "none" \(on the command line: '
                                            r"--param derivatives=none\)"):
        BIDSDataset(location=str(toy_study), derivatives="derivatives/nope").check_params()


def _remove_derivative(root: Path, run: str) -> None:
    for path in _func(root, deriv=True).glob(f"{run}_{SPACE}_*"):
        path.unlink()


def test_a_raw_run_with_events_but_no_derivative_is_a_problem(fresh_toy: Path) -> None:
    # loading the other 3 runs alone would drop this run's trials (and misalign the truth)
    run2 = "sub-01_ses-01_task-conform_run-02"
    _remove_derivative(fresh_toy, run2)
    _fails_check_and_load(fresh_toy, r"sub-01 ses-01 task-conform run-2 has a raw BOLD run with "
                                     rf"events \({run2}_bold.nii.gz\) but no preprocessed BOLD in "
                                     r"space 'MNI152NLin2009cAsym' .*Choose a space every run has "
                                     r".*leave sub-01 out with participants=")
    ds = BIDSDataset(location=str(fresh_toy), participants=["02"])
    ds.check_params()
    assert ds.subjects() == ["sub-02"]


def test_confounds_with_another_row_count_than_volumes(fresh_toy: Path) -> None:
    path = _func(fresh_toy, deriv=True) / f"{RUN1}_desc-confounds_timeseries.tsv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")  # 15 rows, 16 volumes
    _fails_check_and_load(fresh_toy, r"has 15 rows but its BOLD run .*has 16 volumes",
                          confounds=["motion6"])


def test_the_stimulus_column_is_chosen_once_for_the_study(fresh_toy: Path) -> None:
    path = _func(fresh_toy) / f"{RUN1}_events.tsv"
    lines = path.read_text().splitlines()
    # a run whose stim_file is all n/a: no trials there (its trial_type is not a stimulus)
    path.write_text("\n".join([lines[0]] + [line.rsplit("\t", 1)[0] + "\tn/a"
                                            for line in lines[1:]]) + "\n")
    ds = BIDSDataset(location=str(fresh_toy))
    assert "image" not in ds.stimulus_set().ids.tolist()
    events = ds.load_subject("sub-01").timeseries.events
    assert [e.n_events for e in events] == [0, 6, 6, 6]
    # a run whose events lack stim_file altogether is refused, naming the column
    path.write_text("\n".join(line.rsplit("\t", 1)[0] for line in lines) + "\n")
    _fails_check_and_load(fresh_toy, r"lacks the column\(s\) \['stim_file'\].*chosen once for "
                                     r"the study \('stim_file'\)")


def test_stimulus_ids_from_file_names_that_clash(fresh_toy: Path) -> None:
    stimuli = fresh_toy / "stimuli"
    (stimuli / "stimuli.tsv").unlink()
    (stimuli / "stimuli_embeddings.npy").unlink()
    for folder in ("faces", "houses"):
        (stimuli / folder).mkdir()
        (stimuli / folder / "001.png").write_bytes(b"png")
    run1 = fresh_toy / "sub-01" / "ses-01" / "func" / f"{RUN1}_events.tsv"
    run1.write_text(run1.read_text().replace("images/stim-0000.png", "faces/001.png"))
    other = (fresh_toy / "sub-02" / "ses-01" / "func" /
             "sub-02_ses-01_task-conform_run-01_events.tsv")
    other.write_text(other.read_text().replace("images/stim-0000.png", "houses/001.png"))
    ids = BIDSDataset(location=str(fresh_toy)).stimulus_set().ids.tolist()
    assert {"faces/001", "houses/001", "stim-0001"} <= set(ids) and "001" not in ids
    # the ids are the study's: the same when sub-01 is read alone
    alone = BIDSDataset(location=str(fresh_toy), participants=["01"]).load_subject("sub-01")
    assert "faces/001" in alone.timeseries.stimulus_ids().tolist()


def test_onsets_move_by_the_slice_timing_start_time(fresh_toy: Path) -> None:
    for path in _func(fresh_toy, deriv=True).glob("*_desc-preproc_bold.json"):
        _rewrite_json(path, StartTime=0.5, SliceTimingCorrected=True)
    ds = BIDSDataset(location=str(fresh_toy))
    events = ds.load_subject("sub-01").timeseries.events
    # the toy's onsets are 1, 3, ... s; ses-01 volumes are sampled 0.5 s after their start
    np.testing.assert_array_equal(events[0].onset, 0.5 + 2.0 * np.arange(6))
    np.testing.assert_array_equal(events[2].onset, 1.0 + 2.0 * np.arange(6))
    assert ds.describe()["slice timing"].startswith("StartTime 0.5 s")
