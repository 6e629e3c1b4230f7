"""conform_core must import nothing above it: no plugin, no stimulus_design, no registry."""

from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _upward(mods: list[str]) -> list[str]:
    return [m for m in mods if (m.startswith("conform_") and not m.startswith("conform_core"))
            or m.startswith("stimulus_design")]


def test_importing_conform_core_loads_no_plugin():
    assert _upward(_modules_after("import conform_core")) == []


def test_importing_the_cli_module_loads_no_plugin():
    assert _upward(_modules_after("import conform_core.cli, conform_core.testing")) == []


def test_importing_conform_core_does_not_import_torch():
    assert "torch" not in _modules_after("import conform_core")
