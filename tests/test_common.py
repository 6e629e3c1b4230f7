"""Every component of this distribution passes the contract kit (scikit-learn's test_common).

This is the one place the kit runs over the built-in components: each registered component
installed by this distribution (read from the registry, so a new plugin is checked as soon as
it registers) is checked with the instances its plugin gives through the hook
``conform_contract_instances``, or with its default parameters. Instances are built lazily,
the first time one of their checks runs, never at collection time.
"""

from __future__ import annotations

import importlib.metadata as metadata

from conform_core.components import Component
from conform_core.plugins import default_registry
from conform_core.testing import parametrize_with_checks, registered_contract_instances

DISTRIBUTION = metadata.packages_distributions()["conform_core"][0]
"""The distribution that installs conform_core and the built-in plugins (``conform-fmri``)."""


def _ours() -> list[type[Component]]:
    return [e.cls for e in default_registry().entries() if e.distribution == DISTRIBUTION]


def test_every_builtin_plugin_loads():
    """No built-in plugin fails to import or register."""
    errors = [str(e) for e in default_registry().load_errors]
    assert errors == []


def test_builtin_components_are_registered():
    registry = default_registry()
    for kind, name in [("denoiser", "trial-average"), ("denoiser", "pca"), ("encoder", "ridge"),
                       ("aligner", "procrustes"), ("features", "precomputed")]:
        assert registry.get(kind, name) is not None


def test_every_component_of_this_distribution_is_checked():
    """The kit's instances cover every registered class, and only those of this distribution."""
    checked = {i.cls for i in registered_contract_instances(distributions=[DISTRIBUTION])}
    assert checked == set(_ours()) and len(checked) >= 5


@parametrize_with_checks(registered_contract_instances(distributions=[DISTRIBUTION]))
def test_contract(component, check):
    check(component)


def test_builtin_components_with_parameters_check_them():
    """Every built-in component that takes parameters declares _parameter_constraints (or
    overrides check_params), so `conform fit --check` validates its cells before any work."""
    unchecked = [cls.__name__ for cls in _ours()
                 if cls._get_param_names()
                 and not cls._parameter_constraints
                 and cls.check_params is Component.check_params]
    assert unchecked == []
