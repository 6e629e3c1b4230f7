"""`conform data info mosaic DIR` and `conform mosaic validate FILE...` through conform_core.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from conform_core.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


def test_data_info_describes_the_folder(
    toy_master: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _run(["data", "info", "mosaic", str(toy_master), "--json"], capsys)
    assert code == 0, text
    info = json.loads(text)
    assert info["n_subjects"] == 1 and info["subjects"][0]["n_trials"] == 18
    assert info["splits"].startswith("official")


def test_data_info_table(
    toy_master: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFORM_MOSAIC_ATLAS", str(toy_master / "atlas.npy"))
    monkeypatch.setenv("COLUMNS", "200")
    code, text = _run(["data", "info", "mosaic", str(toy_master)], capsys)
    assert code == 0, text
    assert "sub-01_TOY" in text and "visual ->" in text


def test_data_info_on_a_missing_folder_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _run(["data", "info", "mosaic", str(tmp_path / "none")], capsys)
    assert code == 2 and "does not exist" in text


def test_validate_ok_exits_0(toy_master: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _run(["mosaic", "validate", str(toy_master / "sub-01_TOY.hdf5")], capsys)
    assert code == 0 and "OK (MOSAIC-compliant)" in text


def test_validate_lists_problems_and_exits_2(
    toy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File(toy_dir / "sub-01_TOY.hdf5", "r+") as f:
        del f.attrs["github_url"]
    bad = toy_dir / "sub-02_TOY.hdf5"
    bad.write_bytes(b"\x00" * 100)
    code, text = _run(
        ["mosaic", "validate", "--quick", str(toy_dir / "sub-01_TOY.hdf5"), str(bad)], capsys
    )
    assert code == 2
    assert "2 of 2 file(s) do not follow the MOSAIC format" in text
    assert "'github_url' is missing" in text and "not an HDF5 file" in text
