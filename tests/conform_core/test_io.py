from __future__ import annotations

import numpy as np
import pytest

from conform_core import DataFileError
from conform_core.io import atomic_directory, atomic_write, save_npy, sha256_file, write_json


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"b": np.float32(1.5), "a": np.arange(2)})
    assert target.read_text() == '{\n  "a": [\n    0,\n    1\n  ],\n  "b": 1.5\n}\n'


def test_save_npy_round_trip_and_checksum(tmp_path):
    path = save_npy(tmp_path / "x.npy", np.arange(5))
    np.testing.assert_array_equal(np.load(path), np.arange(5))
    assert len(sha256_file(path)) == 64


def test_atomic_directory_refuses_existing_and_cleans_up(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    with pytest.raises(DataFileError, match="already exists"):
        with atomic_directory(out):
            pass
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "new") as tmp:
            (tmp / "f").write_text("x")
            raise RuntimeError("crash")
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def test_atomic_directory_publishes_complete_folder(tmp_path):
    with atomic_directory(tmp_path / "new") as tmp:
        (tmp / "f").write_text("x")
        assert not (tmp_path / "new").exists()
    assert (tmp_path / "new" / "f").read_text() == "x"
