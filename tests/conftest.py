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
