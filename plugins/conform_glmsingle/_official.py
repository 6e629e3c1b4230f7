"""Run the official ``glmsingle`` package, if importable, with the safeguards it lacks.

The official package (cvnlab/GLMsingle, BSD-3-Clause) is never installed or vendored by
conform: ``engine="official"`` only imports it when the user has installed it (for
comparisons). Its ``fit`` deletes ``outputdir`` and ``figuredir`` (defaulting to folders in
the current directory), always writes ``DESIGNINFO.npy`` and ``RUNWISEFIR.npy`` and uses the
global numpy RNG (glmsingle.md pitfalls 1, 10). We run it in a private temporary directory as
working directory, without figures, with numpy seeded by ``random_state`` (the caller's RNG
state is restored afterwards) and BLAS pinned to ``blas_threads``, then copy its files into
the user's ``outputdir`` (only when one is given) without deleting anything there.

Options are translated where the official package would crash or differ (pitfalls 5, 6, 7):
single-run ``xvalscheme`` folds become ints, ``wantlibrary=0`` requests type B internally (and
drops it again from the results unless asked for), a truthy ``brainexclude`` is refused, and
an HRF library or assumed HRF given as a file path is loaded and resampled by our code.
``quirks`` does not apply: the official package always has its own behaviour.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError
from conform_core.optional import missing_dependency, package_dir, require

from ._options import Options

__all__ = ["fit_official", "official_available", "official_version"]

#: Our options, unknown to the official package (it raises ValueError on unknown keys).
_OURS = ("engine", "verbose", "quirks", "random_state", "blas_threads", "outputformat")

#: Where the official package comes from (it is not a conform dependency, nor on PyPI's extras).
_OFFICIAL_URL = "git+https://github.com/cvnlab/GLMsingle"
_HOW: dict[str, Any] = {"purpose": "engine='official'", "package": _OFFICIAL_URL,
                        "alternative": "use engine='native'"}


def official_available() -> bool:
    """Return whether the official ``glmsingle`` package can be imported (without importing it).

    A package is required: a stray ``glmsingle.py`` module on ``sys.path`` (e.g. a script of
    that name in the working directory) does not count.
    """
    return package_dir("glmsingle") is not None


def _require_official() -> Any:
    """Import ``glmsingle.glmsingle`` from the official package, or say how to install it."""
    if not official_available():  # a stray glmsingle.py is not the package
        raise missing_dependency("glmsingle", **_HOW)
    return require("glmsingle.glmsingle", **_HOW)


def official_version() -> str | None:
    """Return the installed official package's version (``None`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("GLMsingle")
    except PackageNotFoundError:
        return None


def _official_params(params: dict[str, Any], opts: Options) -> tuple[dict[str, Any], bool]:
    """Translate our params to the official package's; return (params, type-B added)."""
    out = {k: v for k, v in params.items() if k not in _OURS}
    if "xvalscheme" in out and out["xvalscheme"] is not None:
        # official accepts a plain int or an array of >= 2 runs per fold only (pitfall 7)
        out["xvalscheme"] = [int(np.ravel(f)[0]) if np.size(f) == 1 else np.asarray(f, int).ravel()
                             for f in out["xvalscheme"]]
    elif "xvalscheme" in out:
        del out["xvalscheme"]
    for key in ("sessionindicator", "maxpolydeg"):
        if key in out and out[key] is None:
            del out[key]
    exclude = out.pop("brainexclude", None)
    if exclude is not None and np.any(np.asarray(exclude, dtype=bool)):  # all-False: the default
        raise ParameterError(
            "engine='official' cannot apply brainexclude: the official Python package crashes "
            "on an array and treats a scalar as a multiplier (the inverse of its documentation). "
            "Use engine='native' (brainexclude follows MATLAB there: 1 = exclude).")
    # HRFs given as file paths (0.1-s tables) are ours: pass the arrays resampled at the TR
    if isinstance(out.get("hrflibrary"), (str, Path)):
        out["hrflibrary"] = np.asarray(opts.hrflibrary, np.float64)
    if isinstance(out.get("hrftoassume"), (str, Path)):
        out["hrftoassume"] = np.asarray(opts.hrftoassume, np.float64)
    for key in ("hrflibrary", "hrftoassume"):
        if key in out and out[key] is None:
            del out[key]
    if "fracs" in out and out["fracs"] is None:
        del out["fracs"]
    added_b = False
    out["wantmemoryoutputs"] = list(opts["wantmemoryoutputs"])
    if not opts["wantlibrary"] and not out["wantmemoryoutputs"][1]:
        # pitfall 5: without type B the official C/D use HRF index 1 of a 1-HRF library
        out["wantmemoryoutputs"][1] = 1
        added_b = True
    return out, added_b


def fit_official(params: dict[str, Any], opts: Options, design: list[NDArray[np.float64]],
                 runs: list[NDArray[np.float32]], spatial: tuple[int, ...], volume: bool,
                 stimdur: float, tr: float,
                 outputdir: str | Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit with the official package (validated inputs).

    Returns
    -------
    results : dict
        The official results dict (official shapes), restricted to ``wantmemoryoutputs``.
    info : dict
        ``written`` (paths copied into ``outputdir``), ``timings`` (``{"total": seconds}``)
        and ``version`` (the official package's version).

    Raises
    ------
    conform_core.optional.MissingDependencyError
        If the official package is not installed (the message says how to install it).
    ParameterError
        For an option it cannot apply.
    """
    official = _require_official()
    off_params, added_b = _official_params(params, opts)
    if outputdir is None:  # official writes every requested type; we write nothing then
        off_params["wantfileoutputs"] = [0, 0, 0, 0]
    Official = official.GLM_single
    from threadpoolctl import threadpool_limits

    data = [r.reshape(*spatial, r.shape[1]) if volume else r for r in runs]
    seed = opts["random_state"]
    state = np.random.get_state()
    cwd = os.getcwd()
    verbose = bool(opts["verbose"])
    written: list[Path] = []
    caught: list[warnings.WarningMessage] = []
    with tempfile.TemporaryDirectory(prefix="glmsingle-official-") as tmp:
        try:
            os.chdir(tmp)
            if seed is not None:
                np.random.seed(seed)
            t0 = time.perf_counter()
            with contextlib.ExitStack() as stack:
                if not verbose:  # its prints and progress bars; warnings are re-issued below
                    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
                    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
                    caught = stack.enter_context(warnings.catch_warnings(record=True))
                stack.enter_context(threadpool_limits(limits=opts["blas_threads"], user_api="blas"))
                # figuredir=None: no figures (the official package then makes an empty
                # ./GLMestimatesingletrialfigures, here inside the temporary folder)
                out = Official(off_params).fit(design, data, stimdur, tr,
                                               outputdir=os.path.join(tmp, "out"), figuredir=None)
            elapsed = time.perf_counter() - t0
        finally:
            os.chdir(cwd)
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if seed is not None:
                np.random.set_state(state)
        if outputdir is not None:
            dest = Path(outputdir)
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted(Path(tmp, "out").iterdir()):
                tmp_dest = dest / f".{f.name}.tmp"
                shutil.copyfile(f, tmp_dest)
                os.replace(tmp_dest, dest / f.name)
                written.append(dest / f.name)
    if added_b:
        out.pop("typeb", None)
    return out, {"written": written, "timings": {"total": elapsed}, "version": official_version()}
