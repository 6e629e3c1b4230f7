"""The layers: conform_core imports nothing above it, and plugins never import each other.

conform_core must not import a plugin, stimulus_design or conform_registry (checked twice: the
modules an import really loads, and every import statement, including those inside
functions). A plugin asks the registry for another plugin's component
(``registry.get("features", "clip")``) instead of importing it, so each can be installed,
replaced or left out alone.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (ROOT / "plugins").glob("conform_*") if (p / "__init__.py").is_file())
PLUGINS.append(ROOT / "stimulus_design")
ABOVE_CORE = {p.name for p in PLUGINS} | {"conform_registry"}
"""Top-level packages above conform_core: every plugin, stimulus_design, the registry service."""


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


# ------------------------------------------------------------------ import statements
def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``source``: statements at any depth
    (inside functions too) and ``importlib.import_module("...")``/``__import__("...")`` calls
    with a literal name. Relative imports (``from . import x``) are left out."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def _imports_of(package: Path, forbidden: set[str]) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        for line, module in imported_modules(path.read_text(encoding="utf-8")):
            if module.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


def test_the_scanner_sees_imports_inside_functions_and_dynamic_ones():
    source = """
import numpy
from conform_core import Denoiser
from . import _private

def lazy():
    from conform_clip import ClipFeatures
    import conform_psn.components as c
    return importlib.import_module("conform_mosaic")
"""
    assert [m for _, m in imported_modules(source)] == [
        "numpy", "conform_core", "conform_clip", "conform_psn.components", "conform_mosaic"]


@pytest.mark.parametrize("package", PLUGINS, ids=lambda p: p.name)
def test_a_plugin_imports_no_other_plugin(package):
    """Ask the registry instead: ``default_registry().get(kind, name)``."""
    assert len(PLUGINS) >= 7
    assert _imports_of(package, ABOVE_CORE - {package.name}) == []


def test_conform_core_has_no_import_of_anything_above_it():
    assert _imports_of(ROOT / "conform_core", ABOVE_CORE) == []
