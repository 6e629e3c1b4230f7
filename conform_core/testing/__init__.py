"""The contract kit: checks that every component (ours and third parties') must pass.

- :func:`parametrize_with_checks` runs every check that applies to each component as its
  own test; :func:`check_component` lists them for one instance; :func:`checks_for` for a
  class.
- :class:`ContractInstance` says how to build a component for the checks (lazily, in a
  temporary folder; checks that need a missing optional module are skipped);
  :func:`registered_contract_instances` gives one for every registered component, from the
  hook :func:`~conform_core.hookspecs.conform_contract_instances`.
- :mod:`conform_core.testing.fakes` makes the small inputs the checks use;
  :mod:`conform_core.testing.strategies` holds hypothesis strategies for the containers.
"""

from __future__ import annotations

from .checks import check_component, checks_for, parametrize_with_checks
from .instances import ContractInstance, ContractInstances, registered_contract_instances
from .memory import measured_peak

__all__ = ["measured_peak", "ContractInstance", "ContractInstances", "check_component", "checks_for",
           "parametrize_with_checks", "registered_contract_instances"]
