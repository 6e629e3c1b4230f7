"""Fixtures: the bids-examples subset (tests/data/bids-examples) and toy fMRIPrep-style studies.

Nothing here may touch the network: every test of this folder runs with sockets refused.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from conform_bids import write_toy_study

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "bids-examples"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every socket connection (pybids and nibabel must work offline)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test of conform_bids tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def examples() -> Path:
    """The bids-examples subset (ds001, ds000117, ds000001-fmriprep)."""
    return EXAMPLES


@pytest.fixture(scope="session")
def toy_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy study with 2 subjects x 2 sessions x 2 runs, volumes and fsaverage5 surfaces.

    Shared by the tests that only read it; tests that damage files use :func:`fresh_toy`.
    """
    return write_toy_study(tmp_path_factory.mktemp("toy") / "study", n_sessions=2)


@pytest.fixture()
def fresh_toy(tmp_path: Path, toy_study: Path) -> Path:
    """A private copy of the toy study, to damage."""
    return Path(shutil.copytree(toy_study, tmp_path / "study"))
