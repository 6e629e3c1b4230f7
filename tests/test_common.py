"""Every built-in component passes the contract kit (scikit-learn's test_common, for conform)."""

from __future__ import annotations

from conform_core.plugins import default_registry
from conform_core.testing import parametrize_with_checks

BUILTIN_PACKAGES = ("conform_baselines", "conform_synthetic", "conform_psn", "conform_glmsingle",
                    "conform_mosaic", "conform_clip")


def _builtin_instances():
    registry = default_registry()
    out = []
    for entry in registry.entries():
        if entry.module.split(".")[0] in BUILTIN_PACKAGES:
            out.extend(entry.cls._contract_instances())
    return out


def test_every_builtin_plugin_loads():
    """No built-in plugin fails to import or register."""
    errors = [str(e) for e in default_registry().load_errors]
    assert errors == []


def test_builtin_components_are_registered():
    registry = default_registry()
    for kind, name in [("denoiser", "trial-average"), ("denoiser", "pca"), ("encoder", "ridge"),
                       ("aligner", "procrustes"), ("features", "precomputed")]:
        assert registry.get(kind, name) is not None


@parametrize_with_checks(_builtin_instances())
def test_contract(component, check):
    check(component)
