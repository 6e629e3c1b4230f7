"""The contract kit: checks that every component (ours and third parties') must pass."""

from __future__ import annotations

from .checks import check_component, parametrize_with_checks

__all__ = ["check_component", "parametrize_with_checks"]
