"""The simulated site of conform_registry.testing: what it writes follows the protocol, or not."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from conform_core.exceptions import DataFileError
from conform_registry._validators import validate_files
from conform_registry.testing import simulate_contribution
from stimulus_design import DesignParams, allocate_more, create_study, write_protocol

IDS = [f"img{i:03d}" for i in range(120)]


@pytest.fixture(scope="module")
def pool() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((len(IDS), 8)).astype(np.float32)


@pytest.fixture(scope="module")
def package(pool, tmp_path_factory) -> Path:
    params = DesignParams(sites=1, participants_per_site=2, core=6, per_participant=20, overlap=2,
                          repeats=2, sessions=2, runs=2, core_sessions=1, min_session_repeats=1,
                          seed=3)
    state = create_study(IDS, pool, params)
    people, state = allocate_more(state, pool, 2, 8.0, site="cam", seed=1)
    out = tmp_path_factory.mktemp("request") / "package"
    write_protocol(state, people, out, embeddings=pool)
    return out


def test_a_contribution_that_follows_the_protocol_passes_the_registry_validator(
        package, pool, tmp_path):
    info = simulate_contribution(package, tmp_path, embeddings=pool, ids=IDS, seed=4)
    assert info["participants"] == ["sub-01", "sub-02"]
    assert {"sub-01_CONFORM.hdf5", "sub-02_CONFORM.hdf5"} <= set(info["files"])
    report = validate_files(tmp_path, kind=None, protocol=package)
    assert report.kind == "mosaic" and report.errors == [], report.errors


def test_betas_carry_the_shared_signal(package, pool, tmp_path):
    first = simulate_contribution(package, tmp_path / "a", embeddings=pool, ids=IDS, seed=4,
                                  noise=0.1)
    simulate_contribution(package, tmp_path / "b", embeddings=pool, ids=IDS, seed=4, noise=0.1)
    with h5py.File(tmp_path / "a" / "sub-01_CONFORM.hdf5") as a, \
            h5py.File(tmp_path / "b" / "sub-01_CONFORM.hdf5") as b:
        key = sorted(a["betas"])[0]
        one, two = a["betas"][key][()], b["betas"][key][()]
    signal = slice(1000, 1064)
    # same seed and participant: identical; the signal block differs from 0, the rest is 0
    assert np.array_equal(one, two) and np.all(one[:1000] == 0) and np.std(one[signal]) > 0.3
    assert first["trials"]["sub-01"] > 0


def test_deviating_from_the_protocol_is_caught_by_the_validator(package, pool, tmp_path):
    simulate_contribution(package, tmp_path, embeddings=pool, ids=IDS, deviate=True)
    report = validate_files(tmp_path, kind=None, protocol=package)
    assert [i.code for i in report.errors] == ["events.protocol_mismatch"]
    assert "run-01" in report.errors[0].path


def test_a_folder_that_is_no_package_is_refused(pool, tmp_path):
    with pytest.raises(DataFileError, match="protocol package"):
        simulate_contribution(tmp_path, tmp_path / "out", embeddings=pool, ids=IDS)
