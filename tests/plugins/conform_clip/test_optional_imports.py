"""Without torch/open_clip, ClipFeatures says how to install the ``clip`` extra."""

from __future__ import annotations

import sys

import pytest

from conform_core.optional import MissingDependencyError


def test_missing_torch_gives_the_install_command(monkeypatch):
    from conform_clip.features import _require

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(MissingDependencyError, match=r'ClipFeatures needs .*\'torch\'.*'
                                                     r'pip install "conform-fmri\[clip\]"'):
        _require("torch")
