"""The README stays true: its commands match CI, its example runs, its spec parses."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conform_core.spec import parse_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    first = _blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    assert "conform fit examples/quickstart.toml" in first[0]
    assert "pytest" in first[1]
    assert first[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_python_example_runs():
    namespace: dict[str, object] = {}
    exec(compile(_blocks("python")[0], "README.md", "exec"), namespace)
    assert namespace["denoised"].data.shape[0] == 200


def test_readme_spec_example_parses():
    parse_spec(tomllib.loads(_blocks("toml")[0]))
