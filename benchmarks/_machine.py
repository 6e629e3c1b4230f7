"""What a benchmark prints about the machine it ran on (shared by the benchmark scripts)."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """CPU model and core count."""
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} logical cores"
