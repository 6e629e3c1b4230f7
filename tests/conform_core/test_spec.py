"""Spec overrides: where a dataset location given on the command line points."""

from __future__ import annotations

from pathlib import Path

import pytest

from conform_core.spec import apply_overrides, load_spec

SPEC = """
denoiser = "trial-average"
encoder = "ridge"
features = "precomputed"
[dataset]
plugin = "synthetic-folder"
location = "data/study"
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "specs" / "analysis.toml"
    path.parent.mkdir()
    path.write_text(SPEC)
    return path


def test_location_in_the_spec_is_relative_to_the_spec(spec_file: Path) -> None:
    assert load_spec(spec_file).location() == str(spec_file.parent / "data" / "study")


def test_location_on_the_command_line_is_relative_to_where_it_was_typed(
        spec_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `conform fit examples/bids.toml --set dataset.location=study` run from the repository
    # root means ./study, not examples/study
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    spec = apply_overrides(load_spec(spec_file), ["dataset.location=study"])
    assert spec.location() == str(work / "study")
    absolute = apply_overrides(load_spec(spec_file), [f"dataset.location={tmp_path / 'x'}"])
    assert absolute.location() == str(tmp_path / "x")
