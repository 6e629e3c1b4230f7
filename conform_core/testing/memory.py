"""Measure what a component allocates, to test its ``peak_memory`` estimate against."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

__all__ = ["measured_peak"]


def measured_peak(work: Callable[[], Any]) -> int:
    """Return the peak bytes allocated while ``work()`` runs, above what was allocated before.

    tracemalloc traces numpy's array allocations, so this is the peak that
    :meth:`~conform_core.components.base.Component.peak_memory` estimates (the inputs,
    allocated before, are not counted; what ``work`` returns is alive until it returns).
    Run ``work`` once beforehand so that first-use imports and caches are not counted.
    """
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
