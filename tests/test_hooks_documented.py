"""Every hook is documented with its exact signature and an example, and exercised by a test."""

from __future__ import annotations

import inspect
from pathlib import Path

from conform_core import hookspecs
from conform_core._docgen import hook_names, plugins_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_plugins_md_is_up_to_date():
    assert (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8") == plugins_markdown(), (
        "docs/plugins.md is stale: run `python -m conform_core._docgen docs/plugins.md`")


def test_every_hook_has_signature_and_example_in_the_docs():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert hook_names() == ["conform_contract_instances", "conform_register",
                            "conform_register_commands"]
    for name in hook_names():
        func = getattr(hookspecs, name)
        assert f"def {name}{inspect.signature(func)}".replace("'", "") in text
        assert "Examples" in (inspect.getdoc(func) or "")


def test_every_hook_is_named_in_some_test():
    tests = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py")
                    if p.name != "test_hooks_documented.py")
    for name in hook_names():
        assert name in tests, f"no test mentions {name}"
