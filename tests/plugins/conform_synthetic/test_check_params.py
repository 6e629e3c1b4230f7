"""SyntheticDataset: check_params, roi_labels and stimulus_set, without simulating subjects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conform_synthetic import SyntheticDataset

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.simulation import write_study

SMALL = {"n_subjects": 2, "n_units": 12, "n_stimuli": 24, "n_shared": 8, "n_repeats": 2,
             "options": {"n_features": 8}}
BAD = [("n_units", -3), ("n_units", "many"), ("n_subjects", 0), ("n_repeats", 1.5),
       ("snr", -1.0), ("test_fraction", 1.5), ("missing_fraction", "none"),
       ("individual_differences", 2.0), ("random_state", "seed")]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_simulation_value_is_caught_naming_it(name, value):
    with pytest.raises(ParameterError, match=f"'{name}'"):
        SyntheticDataset(**{**SMALL, name: value}).check_params()


def test_unknown_option_is_caught():
    with pytest.raises(ParameterError, match=r"unknown key\(s\) \['n_featurez'\]"):
        SyntheticDataset(options={"n_featurez": 3}).check_params()


def test_check_params_simulates_nothing():
    ds = SyntheticDataset(**SMALL)
    assert ds.check_params() is None
    assert "_memory_cache" not in vars(ds)


def test_location_must_be_a_study_folder(tmp_path: Path):
    with pytest.raises(DataFileError, match=r"no such folder.*`conform simulate .*nope`"):
        SyntheticDataset(location=str(tmp_path / "nope")).check_params()
    with pytest.raises(DataFileError, match=r"holds no study\.json.*`conform simulate .*"
                                            r"point location at such a folder"):
        SyntheticDataset(location=str(tmp_path)).check_params()
    with pytest.raises(ParameterError, match=r"got '/path/to/study'\. That is a placeholder"):
        SyntheticDataset(location="/path/to/study").check_params()
    with pytest.raises(ParameterError, match=r"'location' parameter of SyntheticDataset must be "
                                             r"the path of a folder or None; got 3"):
        SyntheticDataset(location=3).check_params()
    with pytest.raises(ParameterError, match=r"'options' parameter of SyntheticDataset must be "
                                             r"a dict of simulate_study keywords or None"):
        SyntheticDataset(options=["noise_rank", 0]).check_params()


def test_location_ignores_simulation_params(tmp_path: Path):
    params = {k: v for k, v in SMALL.items() if k != "options"}
    write_study(tmp_path / "study", {**params, "n_features": 8})
    ds = SyntheticDataset(location=str(tmp_path / "study"), n_units=-3)
    assert ds.check_params() is None
    assert ds.roi_labels() == []
    stimuli = ds.stimulus_set()
    assert stimuli.n_stimuli == 24 and stimuli.embeddings is not None


def test_in_memory_metadata_matches_the_subjects():
    ds = SyntheticDataset(**SMALL)
    assert ds.roi_labels() == []
    stimuli = ds.stimulus_set()
    assert stimuli.n_stimuli == 24 and stimuli.embeddings.shape == (24, 8)
    subject = ds.load_subject("sub-01")
    assert subject.trials.units.roi is None
    assert np.isin(subject.stimuli.ids, stimuli.ids).all()
