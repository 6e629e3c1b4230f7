"""Shared fixtures: hypothesis profiles, reference data, temporary plugin managers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from conform_core.plugins import make_plugin_manager

settings.register_profile("dev", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO_ROOT = Path(__file__).resolve().parents[1]
REFDATA = REPO_ROOT.parent / "shared" / "refdata"


# A cap, not a measured optimum: each worker builds its own session fixtures (a PostgreSQL
# cluster, a registry server, simulated studies), so many workers cost memory and start-up.
MAX_WORKERS = 8
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): one worker per core this process may use, at most 8.

    Each worker's BLAS (and the commands it starts) gets its share of the cores, unless the
    environment already sets it: workers that each spread over every core slow one another.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    workers = max(1, min(cores, MAX_WORKERS))
    for name in BLAS_THREADS:  # read by the workers' BLAS when they start
        os.environ.setdefault(name, str(max(1, cores // workers)))
    return workers


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def refdata_dir() -> Path:
    """The reference outputs of the official implementations (skips when absent)."""
    if not REFDATA.is_dir():
        pytest.skip(f"reference data not found at {REFDATA}: these tests compare with the official "
                    "implementations' outputs, which live in ../shared/refdata beside the repo")
    return REFDATA


@pytest.fixture
def pm_with(request: pytest.FixtureRequest):
    """Build a plugin manager without entry points; ``add(plugin, name)`` registers a test plugin."""
    pm = make_plugin_manager(entry_points=False)

    def add(plugin: object, name: str):
        pm.register(plugin, name=name)
        request.addfinalizer(lambda: pm.unregister(name=name))
        return pm

    return add


@pytest.fixture
def umask():
    """Set the process umask in a test (``umask(0o022)``); the old one is restored afterwards.

    Subprocesses started by the test inherit it.
    """
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.fixture
def assert_modes():
    """``assert_modes(root, files=0o644, folders=0o755)``: every path from ``root`` down has it.

    Compares the permission bits (``mode & 0o777``, so an inherited set-group-ID bit is
    ignored) of ``root`` and of every file and folder below it, and names each mismatch.
    """
    import stat

    def check(root: Path, *, files: int, folders: int) -> int:
        root = Path(root)
        bad, count = [], 0
        for path in [root, *sorted(root.rglob("*"))]:
            if path.is_symlink():
                continue
            want = folders if path.is_dir() else files
            got = stat.S_IMODE(path.stat().st_mode) & 0o777
            count += 1
            if got != want:
                bad.append(f"{path.relative_to(root.parent)}: {got:04o}, want {want:04o}")
        assert not bad, "wrong permissions:\n" + "\n".join(bad)
        return count

    return check
