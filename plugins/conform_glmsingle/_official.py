"""Run the official ``glmsingle`` package, if importable, with the safeguards it lacks.

The official ``fit`` deletes ``outputdir`` and ``figuredir`` (defaulting to folders in the
current directory) and uses the global numpy RNG (glmsingle.md pitfalls 1, 10). We run it
in a private temporary directory as working directory, seed numpy with 0 and restore the
caller's RNG state and working directory afterwards, then copy the requested files into the
user's ``outputdir`` without deleting anything there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

__all__ = ["fit_official", "official_available"]

_OURS = ("engine", "verbose", "quirks", "random_state")


def official_available() -> bool:
    """Return whether the official ``glmsingle`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("glmsingle") is not None


def fit_official(params: dict[str, Any], design: list[NDArray[np.float64]],
                 runs: list[NDArray[np.float32]], spatial: tuple[int, ...], volume: bool,
                 stimdur: float, tr: float, outputdir: str | Path | None) -> dict[str, Any]:
    """Fit with the official package (validated inputs); return its results dict."""
    if not official_available():
        raise ParameterError("engine='official' needs the official glmsingle package, which is not "
                             "installed. Install it from its git repository, or use engine='native'.")
    from glmsingle.glmsingle import GLM_single as Official

    opts = {k: v for k, v in params.items() if k not in _OURS}
    if "xvalscheme" in opts:  # official accepts ints or arrays of >= 2 runs only (pitfall 7)
        opts["xvalscheme"] = [int(f[0]) if np.size(f) == 1 else np.asarray(f) for f in opts["xvalscheme"]]
    if not opts.get("wantlibrary", 1):  # pitfall 5: type B must be requested
        flags = list(opts.get("wantmemoryoutputs", [1, 1, 1, 1]))
        flags[1] = 1
        opts["wantmemoryoutputs"] = flags
    data = [r.reshape(*spatial, r.shape[1]) if volume else r for r in runs]
    state = np.random.get_state()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="glmsingle-official-") as tmp:
        try:
            os.chdir(tmp)
            np.random.seed(0)
            out = Official(opts).fit(design, data, stimdur, tr, outputdir=os.path.join(tmp, "out"),
                                     figuredir=os.path.join(tmp, "fig"))
        finally:
            os.chdir(cwd)
            np.random.set_state(state)
        if outputdir is not None:
            dest = Path(outputdir)
            dest.mkdir(parents=True, exist_ok=True)
            for f in Path(tmp, "out").iterdir():
                tmp_dest = dest / f".{f.name}.tmp"
                shutil.copyfile(f, tmp_dest)
                os.replace(tmp_dest, dest / f.name)
    return out
