"""`conform fit` at 5,000 units: the quickstart grid within 10 minutes on 2 cores (issue 16).

Runs ``conform fit`` as a user would (a subprocess, ``--workers 2``) on the in-memory
simulator: 4 subjects x 5,000 units x 2,000 stimuli (all shown to every subject) x 3
trials, denoisers trial-average, pca and psn (its defaults: preset ``auto``, in 1,000-unit
blocks above 1,000 units), ridge encoder. The anchor, measured in the same run, is the same
fit with the trial average alone (simulation, loading, features and the encoder); the
script prints both wall times, their ratio and the verdict against the target (600 s).
BLAS runs one thread per worker (``OMP_NUM_THREADS`` and friends; printed).

Usage::

    python benchmarks/fit_scale.py                  # the issue's size (about 10 minutes)
    python benchmarks/fit_scale.py --units 1000     # smaller, to try it out
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine  # noqa: E402

TARGET_S = 600.0

SPEC = """
denoiser = {denoisers}
encoder = "ridge"
features = "precomputed"

[analysis]
name = "fit-scale"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = {subjects}
n_units = {units}
n_stimuli = {stimuli}
n_shared = {stimuli}
n_repeats = 3
snr = 0.4
"""


def run_fit(folder: Path, name: str, denoisers: list[str], args: argparse.Namespace) -> float:
    """Write the spec, run ``conform fit`` on it; return the wall seconds (exit on failure)."""
    spec = folder / f"{name}.toml"
    spec.write_text(SPEC.format(denoisers=str(denoisers).replace("'", '"'),
                                subjects=args.subjects, units=args.units, stimuli=args.stimuli))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "conform_core", "fit", str(spec), "--out",
           str(folder / name), "--workers", str(args.workers)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"conform fit failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    print(f"  {name}: {wall:.1f} s wall", flush=True)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--stimuli", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine()}; conform fit --workers {args.workers}, BLAS threads per "
          f"worker: 1; {args.subjects} subjects x {args.units} units x {args.stimuli} "
          "stimuli x 3 trials")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        anchor = run_fit(folder, "anchor-trial-average", ["trial-average"], args)
        grid = run_fit(folder, "grid", ["trial-average", "pca", "psn"], args)
    verdict = "meets" if grid <= TARGET_S else "MISSES"
    print(f"grid (trial-average, pca, psn): {grid:.1f} s wall = {grid / anchor:.2f} x the "
          f"anchor (trial-average alone, {anchor:.1f} s); target {TARGET_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
