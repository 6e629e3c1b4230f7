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


def test_builtin_components_with_parameters_check_them():
    """Every built-in component that takes parameters declares _parameter_constraints (or
    overrides check_params), so `conform fit --check` validates its cells before any work."""
    from conform_core.components import Component

    registry = default_registry()
    unchecked = [entry.cls.__name__ for entry in registry.entries()
                 if entry.module.split(".")[0] in BUILTIN_PACKAGES
                 and entry.cls._get_param_names()
                 and not entry.cls._parameter_constraints
                 and entry.cls.check_params is Component.check_params]
    assert unchecked == []


def test_kit_catches_check_params_that_changes_parameters():
    import pytest
    from conform_baselines import PCADenoiser

    from conform_core.testing.checks import check_check_params_passes

    class Rounding(PCADenoiser):
        """PCA that 'fixes' its parameters in check_params.

        Parameters
        ----------
        n_components, max_components : as PCADenoiser
        """

        def check_params(self) -> None:
            self.n_components = 2

    with pytest.raises(AssertionError, match="modified parameters"):
        check_check_params_passes(Rounding(n_components=3))


def test_kit_catches_dataset_metadata_that_disagrees_with_subjects():
    import pytest
    from conform_synthetic import SyntheticDataset

    from conform_core.data import StimulusSet
    from conform_core.testing.checks import check_dataset_metadata

    class Partial(SyntheticDataset):
        """Synthetic data whose stimulus_set forgets the stimuli (see SyntheticDataset).

        Parameters
        ----------
        n_units : int
        """

        def stimulus_set(self) -> StimulusSet:
            return StimulusSet(ids=["not-a-stimulus"])

    with pytest.raises(AssertionError, match="missing from stimulus_set"):
        check_dataset_metadata(Partial(n_subjects=2, n_units=5, n_stimuli=12))
