from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import conform_core.io as io_module
from conform_core import DataFileError
from conform_core.io import (
    atomic_directory,
    atomic_path,
    atomic_write,
    current_umask,
    save_npy,
    sha256_file,
    write_json,
    write_text,
)


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


# --- permissions: outputs honour the umask (issue 10, point 6) ---------------------------------

MODES = [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)]


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), MODES)
def test_written_files_get_the_mode_open_would_give(tmp_path, umask, assert_modes, mask,
                                                    file_mode, dir_mode):
    """write_text, write_json, save_npy, atomic_write and atomic_path: 0o666 less the umask."""
    umask(mask)
    out = tmp_path / "out"
    write_text(out / "a.txt", "x")
    write_json(out / "sub" / "b.json", {"a": 1})
    save_npy(out / "c.npy", np.arange(3))
    with atomic_write(out / "d.bin", "wb") as handle:
        handle.write(b"x")
    with atomic_path(out / "e.nii.gz") as tmp:
        tmp.write_bytes(b"x")
    assert assert_modes(out, files=file_mode, folders=dir_mode) == 7


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), MODES)
def test_atomic_directory_publishes_a_folder_the_umask_allows(tmp_path, umask, assert_modes, mask,
                                                              file_mode, dir_mode):
    umask(mask)
    with atomic_directory(tmp_path / "new") as tmp:
        write_text(tmp / "f.txt", "x")
        (tmp / "nested" / "deeper").mkdir(parents=True)
        save_npy(tmp / "nested" / "deeper" / "g.npy", np.zeros(2))
        (tmp / "nested" / "plain.txt").write_text("y")
    assert assert_modes(tmp_path / "new", files=file_mode, folders=dir_mode) == 6


def test_replacing_a_private_file_gives_it_umask_permissions(tmp_path, umask):
    """A replaced file gets a new file's mode, as documented (not the old file's 0600)."""
    umask(0o022)
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o600)
    write_text(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_directory_keeps_an_inherited_set_group_id_bit(tmp_path, umask):
    """Shared group folders (chmod g+s) pass their group on; the published folder keeps that."""
    umask(0o022)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o2775)
    if not shared.stat().st_mode & stat.S_ISGID:
        pytest.skip("this file system does not keep the set-group-ID bit on folders")
    with atomic_directory(shared / "results") as tmp:
        write_text(tmp / "f.txt", "x")
    mode = (shared / "results").stat().st_mode
    assert mode & stat.S_ISGID and stat.S_IMODE(mode) & 0o777 == 0o755


def test_current_umask_reads_without_changing_it(umask, monkeypatch):
    umask(0o027)
    assert current_umask() == 0o027
    assert current_umask() == 0o027  # unchanged by reading

    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(io_module, "open", no_proc, raising=False)  # the os.umask fallback
    assert current_umask() == 0o027
    monkeypatch.undo()
    assert current_umask() == 0o027


# --- atomic_path: a temporary file name for libraries that need one ---------------------------

def test_atomic_path_keeps_suffixes_and_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "bold.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".nii.gz")
        assert tmp.name != target.name and not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["bold.nii.gz"]


def test_atomic_path_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.hdf5"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.hdf5"]


def test_atomic_path_accepts_a_library_that_recreates_the_file(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "t.txt"
    with atomic_path(target) as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # a library's private mode
        os.write(fd, b"x")
        os.close(fd)
    assert target.read_bytes() == b"x"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_directory_overwrite_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "stale.txt").write_text("old run")
    with atomic_directory(out, overwrite=True) as tmp:
        write_text(tmp / "new.txt", "x")
        assert (out / "stale.txt").exists()  # the old folder stays until the new one is complete
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
