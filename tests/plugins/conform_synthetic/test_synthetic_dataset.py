"""The `synthetic` dataset: in memory, from `conform simulate` output, contract kit, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conform_core.exceptions import DataFileError, ParameterError, UnknownComponentError
from conform_core.plugins import default_registry
from conform_core.testing import parametrize_with_checks
from conform_synthetic import SyntheticDataset

SMALL = dict(n_subjects=2, n_units=12, n_stimuli=24, n_shared=8, n_repeats=2,
             options={"n_features": 8})  # the CLI uses n_latent=min(8, --features)
CLI_SMALL = ["--subjects", "2", "--units", "12", "--stimuli", "24", "--shared", "8",
             "--repeats", "2", "--features", "8", "--quiet"]


def cli(args: list[str]) -> int:
    from conform_core.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code)


@parametrize_with_checks([SyntheticDataset(**SMALL)])
def test_contract(component, check) -> None:
    check(component)


def test_registered_as_synthetic() -> None:
    assert default_registry().get("dataset", "synthetic") is SyntheticDataset


def test_in_memory_is_lazy_cached_and_deterministic() -> None:
    ds = SyntheticDataset(**SMALL)
    assert "_memory_cache" not in vars(ds)
    assert ds.subjects() == ["sub-01", "sub-02"]
    first = ds.load_subject("sub-02")
    assert ds.load_subject("sub-02") is first
    assert list(vars(ds)["_memory_cache"]["subjects"]) == ["sub-02"]
    other = SyntheticDataset(**SMALL).load_subject("sub-02")
    np.testing.assert_array_equal(first.trials.betas, other.trials.betas)


def test_options_reach_the_simulator() -> None:
    ds = SyntheticDataset(**{**SMALL, "timeseries": True}, )
    assert ds.load_subject("sub-01").timeseries is not None
    assert ds.simulation_params().n_features == 8


def test_unknown_option_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ParameterError, match=r"unknown key\(s\) \['n_featurez'\].*n_features"):
        SyntheticDataset(options={"n_featurez": 3}).subjects()


def test_unknown_subject_suggests_names() -> None:
    with pytest.raises(UnknownComponentError, match="sub-01"):
        SyntheticDataset(**SMALL).load_subject("sub-1")


@pytest.mark.parametrize("timeseries", [False, True])
def test_conform_simulate_round_trip_gives_identical_arrays(tmp_path: Path, timeseries: bool) -> None:
    out = tmp_path / "study"
    assert cli(["simulate", str(out), *CLI_SMALL, *(["--timeseries"] if timeseries else [])]) == 0
    disk = SyntheticDataset(location=str(out))
    memory = SyntheticDataset(**SMALL, timeseries=timeseries)
    assert disk.subjects() == memory.subjects()
    for name in memory.subjects():
        a, b = memory.load_subject(name), disk.load_subject(name)
        np.testing.assert_array_equal(a.trials.betas, b.trials.betas)
        np.testing.assert_array_equal(a.trials.stimulus_ids, b.trials.stimulus_ids)
        np.testing.assert_array_equal(a.trials.runs, b.trials.runs)
        np.testing.assert_array_equal(a.stimuli.embeddings, b.stimuli.embeddings)
        np.testing.assert_array_equal(a.train_ids, b.train_ids)
        np.testing.assert_array_equal(a.test_ids, b.test_ids)
        np.testing.assert_array_equal(a.truth.signal.data, b.truth.signal.data)
        np.testing.assert_array_equal(a.truth.noise_ceiling, b.truth.noise_ceiling)
        if timeseries:
            np.testing.assert_array_equal(a.truth.hrf_index, b.truth.hrf_index)
            for x, y in zip(a.timeseries.runs, b.timeseries.runs, strict=True):
                np.testing.assert_array_equal(x, y)
            for x, y in zip(a.timeseries.events, b.timeseries.events, strict=True):
                np.testing.assert_array_equal(x.onset, y.onset)
                np.testing.assert_array_equal(x.stimulus_ids, y.stimulus_ids)
        else:
            assert b.timeseries is None


def test_describe_from_disk_reads_only_metadata(tmp_path: Path) -> None:
    out = tmp_path / "study"
    assert cli(["simulate", str(out), *CLI_SMALL]) == 0
    for npz in out.glob("sub-*/*_trials.npz"):
        npz.unlink()  # describe must not need the data files
    summary = SyntheticDataset(location=str(out)).describe()
    assert [row["subject"] for row in summary["subjects"]] == ["sub-01", "sub-02"]
    assert summary["subjects"][0]["n_trials"] == 48


def test_missing_location_names_folder_and_fix(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"does not exist\. Write one with `conform simulate"):
        SyntheticDataset(location=str(tmp_path / "nope")).subjects()


def test_corrupt_subject_file_names_file_and_fix(tmp_path: Path) -> None:
    out = tmp_path / "study"
    assert cli(["simulate", str(out), *CLI_SMALL]) == 0
    (out / "sub-02" / "sub-02_trials.npz").write_bytes(b"not a zip")
    ds = SyntheticDataset(location=str(out))
    ds.load_subject("sub-01")
    with pytest.raises(DataFileError, match=r"sub-02_trials\.npz.*conform simulate"):
        ds.load_subject("sub-02")


def test_data_info_cli_reads_the_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "study"
    assert cli(["simulate", str(out), *CLI_SMALL]) == 0
    capsys.readouterr()
    assert cli(["data", "info", "synthetic", str(out), "--json"]) == 0
    assert '"sub-02"' in capsys.readouterr().out
