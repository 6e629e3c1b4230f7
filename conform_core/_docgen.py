"""Generate docs/plugins.md from the hook specifications (run: python -m conform_core._docgen)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from . import hookspecs

__all__ = ["plugins_markdown", "hook_names"]

_INTRO = """# Writing a conform plugin

A plugin is an installed Python module named in the `conform` entry-point group of its
distribution. conform finds it with `importlib.metadata`, loads it lazily the first time a
component or command is needed, and calls the hooks below on it. A plugin that fails to
import is reported with its distribution and a fix, and the others keep working.
Start one with:

```bash
conform plugins new my-denoiser --kind denoiser
```

This writes the project `conform-my-denoiser/`. Its `pyproject.toml` names the module in the
entry-point group:

<!-- doc-test: excerpt conform-my-denoiser/pyproject.toml -->
```toml
[project.entry-points.conform]
my-denoiser = "conform_my_denoiser"
```

and it has a component skeleton that passes the contract kit, with a test
(`pip install -e conform-my-denoiser && pytest conform-my-denoiser` runs it):

<!-- doc-test: excerpt conform-my-denoiser/tests/test_contract.py -->
```python
from conform_core.testing import parametrize_with_checks

from conform_my_denoiser.component import MyDenoiser

@parametrize_with_checks([MyDenoiser()])
def test_contract(component, check):
    check(component)
```

Components follow scikit-learn's manners (parameters stored in `__init__`, `fit` returns
self, fitted attributes end in `_`) and derive from one base class per kind in
`conform_core.components`: `Dataset`, `Denoiser`, `Aligner`, `Encoder`, `Features`.
Environment: `CONFORM_LOAD_PLUGINS=a,b` loads only those plugins; `CONFORM_TRACE_PLUGINS=1`
prints every hook call.

This file is generated from `conform_core/hookspecs.py` by `python -m conform_core._docgen`;
a test fails when it is stale.

## Hooks
"""


# tests/test_docs.py runs every code block of the docs; a signature is not a program.
_SIGNATURE_MARK = ("<!-- doc-test: skip (a hook signature, not a program; "
                   "tests/test_hooks_documented.py checks it) -->")


def hook_names() -> list[str]:
    """Names of every hook specification."""
    return sorted(n for n, f in vars(hookspecs).items()
                  if n.startswith("conform_") and callable(f) and hasattr(f, "conform_spec"))


def plugins_markdown() -> str:
    """The text of docs/plugins.md."""
    parts = [_INTRO]
    for name in hook_names():
        func = getattr(hookspecs, name)
        signature = f"{name}{inspect.signature(func)}".replace("'", "")
        doc = inspect.getdoc(func) or ""
        parts.append(f"\n### `{name}`\n\n{_SIGNATURE_MARK}\n```python\n@hookimpl\n"
                     f"def {signature}: ...\n```\n\n{doc}\n")
    return "".join(parts)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/plugins.md")
    target.write_text(plugins_markdown(), encoding="utf-8")
    print(f"wrote {target}")
