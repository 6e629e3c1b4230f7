"""The plugin on layouts no one here wrote: the bids-examples subset (tests/data/bids-examples).

The imaging files there are empty placeholders, so these tests read the layout only: subjects,
sessions, runs, TR (by inheritance), events and stimuli are found and described without
opening an image, and loading the data fails with the clear "empty file" error.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import pytest
from conform_bids import BIDSDataset

from conform_core.exceptions import DataFileError, ParameterError


def _ds001(examples: Path, **params: object) -> BIDSDataset:
    params.setdefault("derivatives", str(examples / "ds000001-fmriprep"))
    return BIDSDataset(location=str(examples / "ds001"), **params)  # type: ignore[arg-type]


@pytest.fixture()
def no_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open an image: what runs under it reads the layout only."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was opened")

    monkeypatch.setattr(nib, "load", refuse)


def test_ds001_with_fmriprep_derivatives_is_indexed(examples: Path, no_images: None) -> None:
    ds = _ds001(examples)
    # sub-11 has raw runs but no derivatives in this subset: not a usable subject
    assert ds.subjects() == ["sub-10", "sub-16"]
    assert ds._problems("10") == [] and ds._problems("16") == []  # events, TR, masks there
    runs = ds._runs("10")
    assert [r.run for r in runs] == [1, 2, 3]  # raw run-01 matched with fMRIPrep's run-1
    assert {r.tr for r in runs} == {2.0}
    assert all(r.events and r.events.endswith("_events.tsv") for r in runs)
    assert all(r.confounds and "desc-confounds_timeseries" in r.confounds for r in runs)
    assert all("res-2_desc-brain_mask" in r.data["mask"] for r in runs)
    stimuli = ds.stimulus_set()  # trial_type: the balloon task's event types
    assert set(stimuli.ids.tolist()) == {"cash_demean", "control_pumps_demean",
                                         "explode_demean", "pumps_demean"}


def test_ds001_describe_reports_what_cannot_be_used(examples: Path, no_images: None) -> None:
    info = _ds001(examples).describe()
    assert info["task"] == "balloonanalogrisktask"
    assert info["spaces found"] == "MNI152NLin2009cAsym, fsaverage5, fsnative"
    rows = {r["subject"]: r for r in info["subjects"]}
    assert rows["sub-10"]["n_runs"] == 3 and rows["sub-10"]["tr"] == "2"
    assert rows["sub-10"]["stimulus_column"] == "trial_type" and rows["sub-10"]["n_events"] > 100
    unusable = "\n".join(info["cannot use"])
    assert "sub-11_task-balloonanalogrisktask_run-01_bold.nii.gz" in unusable
    assert "no preprocessed BOLD in space 'MNI152NLin2009cAsym'" in unusable
    assert "space 'fsnative', not the chosen space" in unusable


def test_ds001_raw_tr_is_inherited_from_the_top_level_sidecar(examples: Path,
                                                               no_images: None) -> None:
    ds = _ds001(examples, derivatives=None)
    assert ds.subjects() == ["sub-10", "sub-11", "sub-16"]
    runs = ds._runs("11")
    assert {r.tr for r in runs} == {2.0}
    assert {Path(r.tr_source).name for r in runs} == {
        f"sub-11_task-balloonanalogrisktask_run-0{k}_bold.nii.gz" for k in (1, 2, 3)}
    assert not (examples / "ds001" / "sub-11" / "func" /
                "sub-11_task-balloonanalogrisktask_run-01_bold.json").exists()


def test_ds001_surface_space(examples: Path, no_images: None) -> None:
    ds = _ds001(examples, space="fsaverage5")
    assert ds.subjects() == ["sub-10", "sub-16"]
    assert set(ds._runs("16")[0].data) == {"L", "R"}


def test_an_unknown_space_lists_the_spaces_found(examples: Path) -> None:
    with pytest.raises(ParameterError, match="fsaverage5") as info:
        _ds001(examples, space="fsaverage6").check_params()
    assert info.value.param == "space"


@pytest.mark.parametrize("space, what", [("MNI152NLin2009cAsym", "NIfTI"),
                                         ("fsaverage5", "GIFTI")])
def test_ds001_loading_reports_the_empty_image(examples: Path, space: str, what: str) -> None:
    with pytest.raises(DataFileError, match=f"Cannot read {what} file .*sub-10.* it is empty "
                                            r"\(0 bytes\)\. Re-copy"):
        _ds001(examples, space=space).load_subject("sub-10")


def test_check_params_reads_the_image_headers(examples: Path) -> None:
    # the subset's images are 0-byte placeholders: found before any output, not while fitting
    with pytest.raises(DataFileError, match=r"brain_mask\.nii\.gz': it is empty"):
        _ds001(examples).check_params()
    with pytest.raises(DataFileError, match=r"_bold\.nii\.gz': it is empty"):
        BIDSDataset(location=str(examples / "ds000117"), derivatives=None).check_params()


def test_ds001_empty_confounds_fail_before_any_image(examples: Path) -> None:
    with pytest.raises(DataFileError, match="confounds file .*run-1_desc-confounds_timeseries"
                                            r"\.tsv' is empty"):
        _ds001(examples, confounds=["motion6"]).load_subject("sub-16")


def test_ds000117_raw_sessions_and_stim_files(examples: Path, no_images: None) -> None:
    ds = BIDSDataset(location=str(examples / "ds000117"), derivatives=None)
    assert ds.subjects() == ["sub-01"]
    assert ds._problems("01") == []  # every stim_file named by the events exists
    runs = ds._runs("01")
    assert len(runs) == 9 and {r.session for r in runs} == {"mri"}
    assert {r.tr for r in runs} == {2.0}
    stimuli = ds.stimulus_set()
    assert "f013" in stimuli.ids.tolist()  # func/f013.bmp, named by its file name
    assert stimuli.sources[stimuli.ids.tolist().index("f013")].endswith("stimuli/func/f013.bmp")
    info = ds.describe()
    assert info["subjects"][0]["sessions"] == "mri"
    assert info["subjects"][0]["stimulus_column"] == "stim_file"
    assert any("events of a meg recording" in line for line in info["cannot use"])
    # another column: the events' stim_type
    other = BIDSDataset(location=str(examples / "ds000117"), derivatives=None,
                        stimulus_column="stim_type")
    assert set(other.stimulus_set().ids.tolist()) == {"FAMOUS", "UNFAMILIAR", "SCRAMBLED"}


def test_ds000117_session_selection(examples: Path, no_images: None) -> None:
    ds = BIDSDataset(location=str(examples / "ds000117"), derivatives=None, sessions=["meg"])
    # ses-meg holds MEG only: no BOLD run is left, and the message names the parameter
    with pytest.raises(ParameterError, match="'sessions' parameter .* got \\['meg'\\]"):
        ds.subjects()
    assert any("not in sessions=" in line
               for line in ds.describe()["cannot use"])


def test_ds000117_raw_loading_reports_the_empty_image(examples: Path) -> None:
    ds = BIDSDataset(location=str(examples / "ds000117"), derivatives=None)
    with pytest.raises(DataFileError, match=r"run-01_bold\.nii\.gz': it is empty"):
        ds.load_subject("01")


def test_info_on_a_raw_only_folder_describes_the_raw_bold(examples: Path,
                                                          no_images: None) -> None:
    info = BIDSDataset(location=str(examples / "ds001")).describe()  # no derivatives/fmriprep
    assert "not found: the raw BOLD is described instead" in info["derivatives"]
    assert "--param derivatives=none" in info["derivatives"]
    assert [r["subject"] for r in info["subjects"]] == ["sub-10", "sub-11", "sub-16"]


def test_info_lists_requested_participants_and_sessions_without_runs(
        examples: Path, no_images: None) -> None:
    info = _ds001(examples, participants=["10", "04"]).describe()
    assert [r["subject"] for r in info["subjects"]] == ["sub-10"]
    assert any(p.startswith("participants: sub-04 has no usable run") and
               "no such subject" in p for p in info["problems"])
    info = BIDSDataset(location=str(examples / "ds000117"), derivatives=None,
                       sessions=["mri", "7t"]).describe()
    assert any(p.startswith("sessions: ses-7t has no usable run") for p in info["problems"])


def test_sessions_on_a_study_without_sessions_is_said_once(examples: Path,
                                                           no_images: None) -> None:
    info = _ds001(examples, derivatives=None, sessions=["01"]).describe()
    assert [p for p in info["problems"] if "no sessions" in p] == [
        "sessions=['01'] selects nothing: this study has no sessions (no ses- level in its "
        "file names). Leave sessions unset."]
    unusable = "\n".join(info["cannot use"])
    assert "session ''" not in unusable and "events without a BOLD run" not in unusable
