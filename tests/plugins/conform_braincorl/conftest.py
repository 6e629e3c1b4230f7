"""BraInCoRL tests need torch and safetensors (the [braincorl] extra); they skip without them."""

from __future__ import annotations

import importlib.util

import pytest

MISSING = [m for m in ("torch", "safetensors") if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=f"needs {' and '.join(MISSING)}, from the [braincorl] extra "
                                   "(pip install 'conform-fmri[braincorl]')")
    for item in items:
        if "conform_braincorl" in str(item.path):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> object:
    """One intra-op thread: on a shared 2-core machine more threads make small models slower."""
    if MISSING:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
