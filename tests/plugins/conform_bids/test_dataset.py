"""Loading a toy fMRIPrep-style study: volumes, surfaces, sessions, confounds, ROIs, stimuli,
ground truth, laziness and the contract of a dataset."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conform_bids import BIDSDataset
from conform_bids.testing import N_FSAVERAGE5


def test_volumes_units_sessions_and_stimuli(toy_study: Path) -> None:
    ds = BIDSDataset(location=str(toy_study))
    assert ds.subjects() == ["sub-01", "sub-02"]
    subject = ds.load_subject("01")  # the label alone is accepted
    ts = subject.timeseries
    assert subject.name == "sub-01" and ts.n_runs == 4 and ts.tr == 1.0
    assert ts.sessions.tolist() == [0, 0, 1, 1]
    # the toy's 3 x 4 sheet: 11 cells in the brain mask, the last one outside
    assert ts.n_units == 11 and ts.units.space == "MNI152NLin2009cAsym"
    assert ts.units.ids[0] == "v0000000" and ts.units.indices.tolist() == list(range(11))
    assert ts.runs[0].dtype == np.float32 and ts.runs[0].shape == (11, 16)
    assert ts.confounds is None
    assert subject.stimuli.n_stimuli == 6 and subject.stimuli.embeddings.shape == (6, 4)
    assert subject.stimuli.sources[0].endswith("stimuli/images/stim-0000.png")
    assert subject.stimuli.categories is not None
    assert subject.test_ids.tolist() == ["stim-0000", "stim-0001"]
    assert len(subject.train_ids) == 4


def test_surfaces_hold_the_same_data_as_volumes(toy_study: Path) -> None:
    vol = BIDSDataset(location=str(toy_study)).load_subject("sub-02").timeseries
    surf = BIDSDataset(location=str(toy_study), space="fsaverage5").load_subject("sub-02")
    ts = surf.timeseries
    # the toy puts sheet cell k on hemi-L vertex k for k < 6, else on hemi-R vertex k - 6
    assert ts.units.ids.tolist() == [f"L{k:06d}" for k in range(6)] + [f"R{k:06d}"
                                                                       for k in range(5)]
    assert ts.units.indices.tolist() == list(range(6)) + [N_FSAVERAGE5 + k for k in range(5)]
    for a, b in zip(vol.runs, ts.runs):
        np.testing.assert_array_equal(a, b)  # same float32 values, written twice


def test_sessions_and_participants_restrict_the_runs(toy_study: Path) -> None:
    ds = BIDSDataset(location=str(toy_study), participants=["sub-02"], sessions=["ses-02"])
    assert ds.subjects() == ["sub-02"]
    subject = ds.load_subject("sub-02")
    assert subject.timeseries.n_runs == 2 and subject.timeseries.sessions.tolist() == [0, 0]
    # trial amplitudes are stored for every run (4 runs of 6 trials): ses-02's are rows 12-23
    truth = np.load(toy_study / "derivatives" / "ground-truth" / "sub-02" /
                    "sub-02_desc-truth.npz")
    np.testing.assert_array_equal(subject.truth.trial_amplitudes,
                                  truth["trial_amplitudes"][12:24])


def test_ground_truth_is_aligned_to_the_units(toy_study: Path) -> None:
    import numpy.testing as npt

    truth = np.load(toy_study / "derivatives" / "ground-truth" / "sub-01" /
                    "sub-01_desc-truth.npz")
    for space in ("MNI152NLin2009cAsym", "fsaverage5"):
        subject = BIDSDataset(location=str(toy_study), space=space).load_subject("sub-01")
        signal = subject.truth.signal
        assert signal.units.ids.tolist() == subject.timeseries.units.ids.tolist()
        npt.assert_array_equal(signal.data, truth["signal"])
        assert subject.truth.trial_amplitudes.shape == (subject.timeseries.n_events, 11)
    roi = toy_study / "roi_mask.nii.gz"
    mask = np.zeros((3, 4, 1), np.uint8)
    mask[0, 1:, 0] = 1  # cells 1, 2, 3
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(roi))
    no_truth = BIDSDataset(location=str(toy_study), truth=None).load_subject("sub-01")
    assert no_truth.truth is None


def test_confounds_are_passed_per_run(toy_study: Path) -> None:
    ts = BIDSDataset(location=str(toy_study), confounds=["motion6", "global_signal"]
                     ).load_subject("sub-01").timeseries
    assert ts.n_confounds == 7 and ts.confounds[0].shape == (16, 7)
    # global_signal is the mean of the 11 units at each volume, to the 4 decimals written
    np.testing.assert_allclose(ts.confounds[0][:, 6], ts.runs[0].mean(axis=0), atol=1e-4)


def test_rois_from_an_atlas_with_its_table(toy_study: Path, tmp_path: Path) -> None:
    atlas = tmp_path / "sub-01_space-MNI152NLin2009cAsym_desc-toy_dseg.nii.gz"
    labels = np.zeros((3, 4, 1), np.int16)
    labels[0, :, 0] = 3
    labels[1, :, 0] = 7
    nib.save(nib.Nifti1Image(labels, np.eye(4)), str(atlas))
    (tmp_path / "desc-toy_dseg.tsv").write_text('index\tname\n3\t"V1"\n7\tV2\n')
    (tmp_path / "dataset_description.json").write_text("{}")
    ds = BIDSDataset(location=str(toy_study), roi=str(atlas).replace("sub-01", "sub-{subject}"))
    with pytest.raises(Exception, match="not found"):
        ds.load_subject("sub-02")  # no atlas for sub-02
    ds = BIDSDataset(location=str(toy_study), roi=str(atlas), participants=["01"])
    assert ds.roi_labels() == ["V1", "V2"]
    roi = ds.load_subject("sub-01").timeseries.units.roi
    assert roi.tolist() == ["V1"] * 4 + ["V2"] * 4 + [""] * 3


def test_rois_from_a_mask_and_from_surface_labels(toy_study: Path, tmp_path: Path) -> None:
    mask = tmp_path / "label-face_mask.nii.gz"
    data = np.zeros((3, 4, 1), np.uint8)
    data[2, 0, 0] = 1  # cell 8
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(mask))
    ds = BIDSDataset(location=str(toy_study), roi=str(mask))
    assert ds.roi_labels() == ["face"]
    roi = ds.load_subject("sub-01").timeseries.units.roi
    assert np.flatnonzero(roi == "face").tolist() == [8]
    for hemi in "LR":
        keys = np.zeros(N_FSAVERAGE5, np.int32)
        keys[:3] = 1
        image = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
            keys, intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")])
        for key, name in ((0, "???"), (1, f"{hemi}_V1")):
            label = nib.gifti.GiftiLabel(key=key)
            label.label = name
            image.labeltable.labels.append(label)
        nib.save(image, str(tmp_path / f"hemi-{hemi}.label.gii"))
    ds = BIDSDataset(location=str(toy_study), space="fsaverage5",
                     roi=str(tmp_path / "hemi-{hemi}.label.gii"))
    assert ds.roi_labels() == ["L_V1", "R_V1"]
    roi = ds.load_subject("sub-01").timeseries.units.roi
    assert roi.tolist() == ["L_V1"] * 3 + [""] * 3 + ["R_V1"] * 3 + [""] * 2


def test_nothing_is_read_until_a_subject_is_loaded_and_runs_one_at_a_time(
        toy_study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    load = nib.load

    def spy(path: str, *args: object, **kwargs: object) -> object:
        opened.append(Path(path).name)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(nib, "load", spy)
    ds = BIDSDataset(location=str(toy_study))
    ds.subjects()
    ds.stimulus_set()
    ds.describe()
    assert opened == []
    # check_params reads headers (masks and BOLD runs: grids, volume counts), never the data
    import conform_bids._images as images

    def no_data(*args: object) -> None:
        raise AssertionError("check_params read image data")

    with monkeypatch.context() as m:
        m.setattr(images, "_array", no_data)
        ds.check_params()
    assert len(opened) == 16 and set(opened) == {p.name for p in toy_study.rglob(
        "*_space-MNI152NLin2009cAsym_desc-*.nii.gz")}
    opened.clear()
    ds.load_subject("sub-01")
    # the 4 brain masks first (small), then each BOLD run once
    assert [n.split("_space")[0] for n in opened[:4]] == [n.split("_space")[0]
                                                          for n in opened[4:]]
    assert all("brain_mask" in n for n in opened[:4])
    assert all("preproc_bold" in n for n in opened[4:]) and len(opened) == 8


def test_raw_bold_without_derivatives(toy_study: Path) -> None:
    ts = BIDSDataset(location=str(toy_study), derivatives=None).load_subject("sub-01").timeseries
    assert ts.units.space == "native" and ts.n_units == 11  # the 12th cell is constant 0
    assert BIDSDataset(location=str(toy_study), derivatives="none").subjects() == [
        "sub-01", "sub-02"]


def test_params_round_trip_and_check(toy_study: Path) -> None:
    from sklearn.base import clone

    ds = BIDSDataset(location=str(toy_study), confounds=["motion6"], sessions=["01"])
    assert clone(ds).get_params() == ds.get_params()
    from conform_core.exceptions import ParameterError

    with pytest.raises(ParameterError, match="confounds_na"):
        BIDSDataset(location=str(toy_study), confounds_na="drop").check_params()
    with pytest.raises(ParameterError, match="participants"):
        BIDSDataset(location=str(toy_study), participants=["07"]).check_params()
