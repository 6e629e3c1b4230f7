"""The two datasets: `synthetic` (simulated in memory) and `synthetic-folder` (a study folder),
plus the `location` that `synthetic` keeps for older specs. The contract kit runs on all three
from tests/test_common.py (instances from this plugin's `conform_contract_instances`)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from conform_synthetic import (
    SimulatedFolderDataset,
    SimulationParams,
    SyntheticDataset,
    simulate_study,
    write_study,
)

from conform_core.exceptions import DataFileError, ParameterError, UnknownComponentError
from conform_core.plugins import default_registry

SMALL = dict(n_subjects=2, n_units=12, n_stimuli=24, n_shared=8, n_repeats=2, n_features=8)
BAD = [("n_units", -3), ("n_units", "many"), ("n_subjects", 0), ("n_repeats", 1.5),
       ("snr", -1.0), ("test_fraction", 1.5), ("missing_fraction", "none"),
       ("individual_differences", 2.0), ("random_state", "seed"), ("noise_rank", -1),
       ("timeseries", "yes")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SMALL written by write_study (what `conform simulate` writes)."""
    return write_study(tmp_path_factory.mktemp("synthetic") / "study", SMALL)


def test_registered_as_synthetic_and_synthetic_folder() -> None:
    registry = default_registry()
    assert registry.get("dataset", "synthetic") is SyntheticDataset
    assert registry.get("dataset", "synthetic-folder") is SimulatedFolderDataset


# ------------------------------------------------------------------ synthetic (in memory)
def test_parameters_are_the_simulation_settings_with_their_defaults() -> None:
    """The signature is derived from SimulationParams: same names, order and defaults."""
    parameters = inspect.signature(SyntheticDataset).parameters
    assert list(parameters) == [*SimulationParams.names(), "options", "location"]
    for name, default in SimulationParams.defaults().items():
        assert parameters[name].default == default
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert SyntheticDataset().get_params() == {**SimulationParams.defaults(), "options": None,
                                               "location": None}


def test_every_setting_is_documented_in_the_docstring() -> None:
    doc = inspect.getdoc(SyntheticDataset)
    for name in SimulationParams.names():
        assert f"\n{name} : " in doc, name


def test_unknown_parameter_is_a_type_error_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match=r"\['n_unit'\]\. Did you mean 'n_units'\?"):
        SyntheticDataset(n_unit=3)


def test_in_memory_equals_simulate_study() -> None:
    study = simulate_study(**SMALL, noise_rank=0, lowrank_fraction=0.0, random_state=4)
    ds = SyntheticDataset(**SMALL, noise_rank=0, lowrank_fraction=0.0, random_state=4)
    for expected in study.subjects:
        got = ds.load_subject(expected.name)
        np.testing.assert_array_equal(got.trials.betas, expected.trials.betas)
        np.testing.assert_array_equal(got.truth.noise_ceiling, expected.truth.noise_ceiling)


def test_in_memory_is_lazy_cached_and_deterministic() -> None:
    ds = SyntheticDataset(**SMALL)
    assert "_cache" not in vars(ds)
    assert ds.subjects() == ["sub-01", "sub-02"]
    first = ds.load_subject("sub-02")
    assert ds.load_subject("sub-02") is first
    assert list(vars(ds)["_cache"].subjects) == ["sub-02"]
    other = SyntheticDataset(**SMALL).load_subject("sub-02")
    np.testing.assert_array_equal(first.trials.betas, other.trials.betas)


def test_set_params_simulates_again() -> None:
    ds = SyntheticDataset(**SMALL)
    assert ds.load_subject("sub-01").trials.n_units == 12
    ds.set_params(n_units=6)
    assert ds.load_subject("sub-01").trials.n_units == 6


def test_timeseries_reaches_the_simulator() -> None:
    ds = SyntheticDataset(**SMALL, timeseries=True, tr=1.5)
    assert ds.load_subject("sub-01").timeseries.tr == 1.5
    assert ds.simulation_params().n_features == 8


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_setting_is_caught_naming_it(name, value) -> None:
    with pytest.raises(ParameterError, match=f"'{name}' parameter of SyntheticDataset") as info:
        SyntheticDataset(**{**SMALL, name: value}).check_params()
    assert info.value.param == name


def test_settings_that_do_not_fit_together_name_the_dataset() -> None:
    with pytest.raises(ParameterError, match="'n_shared' parameter of SyntheticDataset must be "
                                             r"at most n_stimuli=24; got 30\. Lower n_shared"):
        SyntheticDataset(**{**SMALL, "n_shared": 30}).check_params()


def test_check_params_simulates_nothing() -> None:
    ds = SyntheticDataset(**SMALL)
    assert ds.check_params() is None
    assert "_cache" not in vars(ds)


def test_metadata_matches_the_subjects_without_simulating_them() -> None:
    ds = SyntheticDataset(**SMALL)
    assert ds.roi_labels() == []
    stimuli = ds.stimulus_set()
    assert stimuli.n_stimuli == 24 and stimuli.embeddings.shape == (24, 8)
    assert vars(ds)["_cache"].subjects == {}
    subject = ds.load_subject("sub-01")
    assert subject.trials.units.roi is None
    assert np.isin(subject.stimuli.ids, stimuli.ids).all()


def test_unknown_subject_suggests_names() -> None:
    with pytest.raises(UnknownComponentError, match="sub-01"):
        SyntheticDataset(**SMALL).load_subject("sub-1")


def test_describe_in_memory_lists_the_resolved_settings() -> None:
    summary = SyntheticDataset(**SMALL).describe()
    assert summary["dataset"] == "SyntheticDataset"
    assert summary["params"]["n_shared"] == 8 and summary["params"]["random_state"] == 0
    assert [row["subject"] for row in summary["subjects"]] == ["sub-01", "sub-02"]


# ------------------------------------------------------------------ options (older specs)
def test_options_are_merged_over_the_parameters() -> None:
    ds = SyntheticDataset(**{**SMALL, "n_features": 64}, options={"n_features": 8, "noise_rank": 2})
    params = ds.simulation_params()
    assert params.n_features == 8 and params.noise_rank == 2


def test_unknown_option_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ParameterError, match=r"unknown key\(s\) \['n_featurez'\].*n_features"):
        SyntheticDataset(options={"n_featurez": 3}).check_params()


def test_option_given_twice_with_other_values_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"key\(s\) \['n_units'\] also given, with other "
                                             "values, as parameters"):
        SyntheticDataset(n_units=12, options={"n_units": 30}).check_params()


def test_options_must_be_a_dict() -> None:
    with pytest.raises(ParameterError, match=r"'options' parameter of SyntheticDataset must be "
                                             r"a dict of simulate_study keywords or None"):
        SyntheticDataset(options=["noise_rank", 0]).check_params()


# ------------------------------------------------------------------ synthetic-folder
def test_folder_reads_back_the_simulated_arrays(folder: Path) -> None:
    disk, memory = SimulatedFolderDataset(location=str(folder)), SyntheticDataset(**SMALL)
    assert disk.subjects() == memory.subjects() == ["sub-01", "sub-02"]
    for name in memory.subjects():
        a, b = memory.load_subject(name), disk.load_subject(name)
        np.testing.assert_array_equal(a.trials.betas, b.trials.betas)
        np.testing.assert_array_equal(a.truth.signal.data, b.truth.signal.data)
        np.testing.assert_array_equal(a.test_ids, b.test_ids)
    assert disk.stimulus_set().n_stimuli == 24 and disk.roi_labels() == []


def test_folder_study_params_are_the_written_settings(folder: Path) -> None:
    ds = SimulatedFolderDataset(location=str(folder))
    assert ds.study_params() == SimulationParams(**SMALL).as_dict()
    assert ds.data_params() == {"location": str(folder)}


@pytest.mark.parametrize("cls", [SimulatedFolderDataset, SyntheticDataset])
def test_location_must_be_a_study_folder(cls, tmp_path: Path) -> None:
    name = cls.__name__
    with pytest.raises(DataFileError, match=r"no such folder.*`conform simulate .*nope`"):
        cls(location=str(tmp_path / "nope")).check_params()
    with pytest.raises(DataFileError, match=fr"'location' parameter of {name} must be a folder "
                                            r"written by `conform simulate`; .* holds no "
                                            r"study\.json.*point location at such a folder"):
        cls(location=str(tmp_path)).check_params()
    with pytest.raises(ParameterError, match=r"got '/path/to/study'\. That is a placeholder"):
        cls(location="/path/to/study").check_params()
    with pytest.raises(ParameterError, match=fr"'location' parameter of {name} must be the path "
                                             r"of a folder.*; got 3"):
        cls(location=3).check_params()


def test_folder_without_location_says_what_to_pass() -> None:
    with pytest.raises(ParameterError, match=r"'location' parameter of SimulatedFolderDataset "
                                             r"must be the path of a folder; got None\. Pass the "
                                             r"folder `conform simulate` wrote\."):
        SimulatedFolderDataset().check_params()


def test_describe_from_disk_reads_only_metadata(tmp_path: Path, folder: Path) -> None:
    import shutil

    copy = tmp_path / "study"
    shutil.copytree(folder, copy)
    for npz in copy.glob("sub-*/*_trials.npz"):
        npz.unlink()  # describe must not need the data files
    summary = SimulatedFolderDataset(location=str(copy)).describe()
    assert summary["dataset"] == "SimulatedFolderDataset"
    assert [row["subject"] for row in summary["subjects"]] == ["sub-01", "sub-02"]
    assert summary["subjects"][0]["n_trials"] == 48


def test_missing_folder_names_it_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"does not exist\. Write one with `conform simulate"):
        SimulatedFolderDataset(location=str(tmp_path / "nope")).subjects()


def test_corrupt_subject_file_names_file_and_fix(tmp_path: Path, folder: Path) -> None:
    import shutil

    copy = tmp_path / "study"
    shutil.copytree(folder, copy)
    (copy / "sub-02" / "sub-02_trials.npz").write_bytes(b"not a zip")
    ds = SimulatedFolderDataset(location=str(copy))
    ds.load_subject("sub-01")
    with pytest.raises(DataFileError, match=r"sub-02_trials\.npz.*conform simulate"):
        ds.load_subject("sub-02")


# ------------------------------------------------------------------ synthetic + location
def test_location_reads_the_folder_and_ignores_valid_settings(folder: Path) -> None:
    ds = SyntheticDataset(location=str(folder), n_units=300, n_subjects=9)
    assert ds.check_params() is None
    assert ds.subjects() == ["sub-01", "sub-02"]
    assert ds.load_subject("sub-01").trials.n_units == 12
    assert ds.stimulus_set().n_stimuli == 24
    assert ds.describe()["dataset"] == "SyntheticDataset"


def test_location_still_checks_each_setting(folder: Path) -> None:
    with pytest.raises(ParameterError, match="'n_units' parameter of SyntheticDataset"):
        SyntheticDataset(location=str(folder), n_units=-3).check_params()


def test_data_params_with_location_are_the_folders_settings(folder: Path) -> None:
    """The lock records the study that was read, and re-running it reads the same folder."""
    ds = SyntheticDataset(location=str(folder), n_units=300, options={"noise_rank": 0})
    params = ds.data_params()
    assert params == {**SimulationParams(**SMALL).as_dict(), "options": None,
                      "location": str(folder)}
    again = SyntheticDataset(**params)
    np.testing.assert_array_equal(again.load_subject("sub-01").trials.betas,
                                  ds.load_subject("sub-01").trials.betas)


def test_data_params_in_memory_are_the_parameters() -> None:
    ds = SyntheticDataset(**SMALL)
    assert ds.data_params() == ds.get_params()


# ------------------------------------------------------------------ conform data info
def test_data_info_reads_a_folder_with_either_name(folder: Path, capsys) -> None:
    from conform_core.cli import main

    for name in ("synthetic-folder", "synthetic"):
        with pytest.raises(SystemExit) as info:
            main(["data", "info", name, str(folder), "--json"])
        assert info.value.code == 0
        assert '"sub-02"' in capsys.readouterr().out
