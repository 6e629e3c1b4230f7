"""Generate docs/plugins.md from the hook specifications (run: python -m conform_core._docgen)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
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
"""

_LAYOUT = """
## The layout to copy

Every plugin of conform (the built-in ones and the scaffold) has the same shape:

```text
conform-my-denoiser/
    pyproject.toml               # entry point: my-denoiser = "conform_my_denoiser"
    src/conform_my_denoiser/
        __init__.py              # the hooks, the component re-exported, __all__
        component.py             # the public component class
        _solvers.py              # pure functions: arrays in, arrays out (if the kind has one)
    tests/test_contract.py       # the contract kit on the component
```

- **`__init__.py`** implements the hooks, typed, imports the component from its public module
  and names both in `__all__`:

  <!-- doc-test: excerpt conform-my-denoiser/src/conform_my_denoiser/__init__.py -->
  ```python
  from conform_core.hookspecs import hookimpl

  from .component import MyDenoiser

  if TYPE_CHECKING:
      from conform_core import ComponentRegistry

  __all__ = ["MyDenoiser", "conform_register"]


  @hookimpl
  def conform_register(registry: ComponentRegistry) -> None:
      registry.add("denoiser", "my-denoiser", MyDenoiser)
  ```

- **The component** lives in `component.py`, or in a public module named for what it is when
  that reads better (MOSAIC's reader is `conform_mosaic.dataset`, CLIP's features
  `conform_clip.features`); modules starting with `_` are private. `conform plugins` shows
  each component's public module, the one to import it from. The class has a numpydoc
  docstring (Parameters, and Attributes for what `fit` sets) and keeps the algorithm out:
  solvers are pure functions in `_solvers.py` (or more `_private` modules) beside it, which
  can be tested and reused without a component.
- **Parameters are declared, not checked by hand.** `_parameter_constraints` says what each
  constructor parameter may be (see `conform_core.constraints`); the base class's
  `check_params()` checks it, `fit` runs it first, and `conform fit SPEC --check` runs it for
  every cell of an analysis before any work. Rules between parameters go in
  `_check_params_extra()`; a setting that needs ROI labels on the units (as psn's
  `parcels="atlas"`) is checked against the dataset's labels in `check_roi_labels(labels)`,
  which `--check` also runs; checks that need the data stay in `fit`:

  <!-- doc-test: excerpt conform-my-denoiser/src/conform_my_denoiser/component.py -->
  ```python
  class MyDenoiser(Denoiser):
      _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
          "shrinkage": [Interval(float, 0, 1)]}
  ```

- **Pass-through options**: a component that forwards settings to an underlying
  implementation takes them as one dict parameter named `options` (as `glmsingle` does),
  declared e.g. `[InstanceOf(dict, "a dict of options"), None]`; its keys can be checked with
  `check_constraints(DECLARATION, options, owner=..., reject_unknown=True)`, which refuses
  unknown names and suggests the closest one.
- **Commands**: implement `conform_register_commands(app)` (below) and add one typer sub-app,
  `app.add_typer(sub_app, name="my-denoiser")`, whose options are declared with
  `typing.Annotated[..., typer.Option(help=...)]`. Import the module that defines the commands
  inside the hook, so loading components does not load the CLI.
- **Progress**: report long loops through `conform_core.progress.progress` (a rich bar on a
  terminal, one plain line per step otherwise, nothing with `--quiet`), never a bar of your own.
- **Optional dependencies** are imported at the point of use, never at import time, through
  `conform_core.optional.require`, which raises an error naming what needs the package and
  the command that installs it; `import conform_my_denoiser` and registration stay cheap.
- **Contract instances**: the kit checks each component with its default parameters. Only
  when the default instance cannot run (a dataset that reads files, a model that needs
  weights) implement `conform_contract_instances` (below), with the build functions in a
  public `testing` module of the plugin.
- **Plugins never import each other** (conform's `tests/test_layering.py` enforces it for its
  own); what two plugins share belongs in `conform_core`.
"""


# tests/test_docs.py runs every code block of the docs; a signature is not a program.
_SIGNATURE_MARK = ("<!-- doc-test: skip (a hook signature, not a program; "
                   "tests/test_hooks_documented.py checks it) -->")


def hook_names() -> list[str]:
    """Names of every hook specification."""
    return sorted(n for n, f in vars(hookspecs).items()
                  if n.startswith("conform_") and callable(f) and hasattr(f, "conform_spec"))


_KIT = """
## The contract kit

`conform_core.testing` checks that a component keeps the contract every stage of `conform fit`
relies on: scikit-learn's manners (parameters stored unchanged in `__init__`, `fit` returns
self and changes no parameter, refitting gives the same result) and conform's own rules
(declared containers, dtypes, missing trials, parameter validation). Each check is one test,
named `Cls(params)-check_name`, so a failure says which rule broke and how.

`parametrize_with_checks` takes instances, or `ContractInstance` objects that say how to build
one when a test first needs it, never at collection: with parameters
(`ContractInstance(MyDenoiser, params={"rank": 2})`) or with a function that receives an empty
temporary folder, for a component that needs files. conform's MOSAIC reader is checked on a
toy subject written into that folder:

```python
from conform_core.testing import ContractInstance, parametrize_with_checks
from conform_mosaic import MosaicDataset
from conform_mosaic.testing import toy_folder


def toy_mosaic(folder):
    \"\"\"A MosaicDataset over a one-subject toy folder written into `folder`.\"\"\"
    return MosaicDataset(location=str(toy_folder(folder)), rois=[1000, 1001, 24576])


@parametrize_with_checks([ContractInstance(MosaicDataset, toy_mosaic, id="toy")])
def test_contract(component, check):
    check(component)
```

The folder comes from pytest's `tmp_path_factory`, and each instance is built once per test
session. A component that needs an optional extra names its modules and how to install them,
e.g. `requires=("torch", "open_clip"), hint="pip install 'conform-fmri[clip]'"`: when one is
missing, the checks that need it are skipped with that reason instead of failing, and the
others (parameters, docstring, declarations) still run.

To have every registered component checked the same way wherever the kit runs over the
registry, implement the hook `conform_contract_instances` (above) in the plugin module and keep
the build functions in a public `testing` module of the plugin (as `conform_mosaic.testing`
and `conform_clip.testing` do). A component with no instance from the hook is checked with its
default parameters. conform's own `tests/test_common.py` is this test, for the components of
its distribution:

```python
from conform_core.testing import parametrize_with_checks, registered_contract_instances


@parametrize_with_checks(registered_contract_instances(distributions=["conform-my-denoiser"]))
def test_contract(component, check):
    check(component)
```

The checks, in the order they run (each is shown to fail on a deliberately broken component in
conform's `tests/conform_core/testing/test_checks.py`):

"""


def _kit_table() -> str:
    """One row per contract check: its name, the kinds it runs on, the first docstring line."""
    from .components import KIND_BASES
    from .testing.checks import checks_for

    applies: dict[Callable[..., None], list[str]] = {}
    for kind, base in KIND_BASES.items():
        for check in checks_for(base):
            applies.setdefault(check, []).append(kind)
    rows = ["| check | runs on | what it checks |", "|---|---|---|"]
    for func, kinds in applies.items():
        where = "every component" if len(kinds) == len(KIND_BASES) else ", ".join(kinds)
        summary = (inspect.getdoc(func) or "").splitlines()[0]
        summary = summary.replace("``", "`").replace("|", "\\|")
        rows.append(f"| `{func.__name__}` | {where} | {summary} |")
    return "\n".join(rows) + "\n"


def plugins_markdown() -> str:
    """Return the text of docs/plugins.md."""
    parts = [_INTRO, _LAYOUT, "\n## Hooks\n"]
    for name in hook_names():
        func = getattr(hookspecs, name)
        signature = f"{name}{inspect.signature(func)}".replace("'", "")
        doc = inspect.getdoc(func) or ""
        parts.append(f"\n### `{name}`\n\n{_SIGNATURE_MARK}\n```python\n@hookimpl\n"
                     f"def {signature}: ...\n```\n\n{doc}\n")
    parts.append(_KIT)
    parts.append(_kit_table())
    return "".join(parts)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/plugins.md")
    target.write_text(plugins_markdown(), encoding="utf-8")
    print(f"wrote {target}")
