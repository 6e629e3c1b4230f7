"""PSN at whole-cortex scale: CPU time, wall time and peak memory per mode (issue 16).

For each (mode, units) row, one fresh Python process simulates units x 1,000 conditions x
3 trials (float32: a 12-dimensional signal shared smoothly along the unit axis, low-rank
noise and independent noise, about 0.3 signal-to-noise per trial), fits
:class:`conform_psn.PSNDenoiser` and denoises the trial averages, and reports:

- ``cpu_s``: CPU seconds of the fit plus transform (all threads), ``wall_s``;
- ``peak_gib``: the process's peak resident memory (``ru_maxrss``) minus the data's own
  size and the interpreter's, so it is what the fit adds; ``rss_gib`` the full figure
  (GiB, 2^30 bytes: conform's GB are binary, as SLURM's);
- ``nmse``: squared error to the true signal over its variance (the trial average's is
  printed as ``nmse_avg``), so the ground truth shows what each mode gives up.

Modes: ``full`` (one exact fit of all units, preset ``standard``: PSN's own default),
``full-auto`` (one exact fit, conform's default preset ``auto``), ``lowrank``
(``covariance="lowrank"``, preset ``auto``) and ``piecewise`` (``PSNDenoiser()``'s
defaults: ``auto`` in contiguous blocks of at most 1,000 units, ``n_jobs`` blocks at
once). The anchor, measured in the same run, is ``full`` at 2,000 units; each row prints
its CPU time over the anchor's. BLAS runs one thread per task (threadpoolctl); ``--jobs``
(default 2) is the number of tasks at once for piecewise; both are printed.

Targets (issue 16): 8,000 units ``full`` under 5 CPU-minutes and 4 GB; 91,282 units
``lowrank`` or ``piecewise`` under 30 minutes wall with 2 workers and 16 GB.

Usage::

    python benchmarks/psn_scale.py                       # the issue's table (about an hour)
    python benchmarks/psn_scale.py --units 2000 5000 --modes full lowrank
    python benchmarks/psn_scale.py --quick               # 2,000 units, every mode
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine  # noqa: E402

N_CONDITIONS = 1000
N_TRIALS = 3
N_LATENT = 12
MODES = ("full", "full-auto", "lowrank", "piecewise")
SIZES = (2000, 5000, 8000, 20000, 91282)
#: Rows skipped by default because they cannot meet any budget (memory ~ units^2).
TOO_BIG = {"full": 8000, "full-auto": 2000}
TARGETS = {("full", 8000): (300.0, None, 4.0), ("lowrank", 91282): (None, 1800.0, 16.0),
           ("piecewise", 91282): (None, 1800.0, 16.0)}
"""(mode, units) -> (CPU seconds, wall seconds, GiB) limits; None: no limit. conform's "GB"
are binary units, as SLURM's and ``--mem``'s (docs/fit.md, "Memory")."""


def simulate(n_units: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (trials (units, conditions, trials) float32, true signal (units, conditions)).

    Built in blocks of units so that no more than the data itself is ever held at once.
    """
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((N_LATENT, N_CONDITIONS)).astype(np.float32)
    noise_latent = rng.standard_normal((5, N_CONDITIONS, N_TRIALS)).astype(np.float32)
    position = np.linspace(0, 1, n_units, dtype=np.float32)
    freq = rng.uniform(1, 20, N_LATENT).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, N_LATENT).astype(np.float32)
    data = np.empty((n_units, N_CONDITIONS, N_TRIALS), dtype=np.float32)
    truth = np.empty((n_units, N_CONDITIONS), dtype=np.float32)
    block = 4096
    for start in range(0, n_units, block):
        stop = min(start + block, n_units)
        pos = position[start:stop, None]
        mixing = np.sin(2 * np.pi * freq * pos + phase) + 0.3 * rng.standard_normal(
            (stop - start, N_LATENT)).astype(np.float32)
        signal = mixing @ latent / np.sqrt(N_LATENT) * 0.55 + rng.standard_normal(
            (stop - start, 1)).astype(np.float32)
        truth[start:stop] = signal
        loads = rng.standard_normal((stop - start, 5)).astype(np.float32) * 0.45
        noise = np.einsum("uk,kct->uct", loads, noise_latent)
        noise += rng.standard_normal(noise.shape, dtype=np.float32) * 0.8
        data[start:stop] = signal[:, :, None] + noise
    return data, truth


def _denoiser(mode: str, n_units: int, jobs: int):  # noqa: ANN202 (imported late)
    from conform_psn import PSNDenoiser

    if mode == "full":  # one exact fit of all units (max_parcel: no blocks)
        return PSNDenoiser(preset="standard", max_parcel=n_units)
    if mode == "full-auto":
        return PSNDenoiser(max_parcel=n_units)
    if mode == "lowrank":
        return PSNDenoiser(covariance="lowrank")
    return PSNDenoiser(n_jobs=jobs)  # the default: auto in blocks of at most 1,000 units


def run_row(mode: str, n_units: int, jobs: int) -> dict:
    """Simulate, fit and transform in this process; return the figures."""
    from threadpoolctl import threadpool_limits

    from conform_core.data import ConditionTrials, Units

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    data, truth = simulate(n_units)
    ids = np.array([f"s{i:04d}" for i in range(N_CONDITIONS)])
    units = Units(ids=np.array([f"u{i}" for i in range(n_units)]),
                  roi=np.array(["cortex"] * n_units))
    trials = ConditionTrials(data, ids, "sub-01", units)
    centred = truth - truth.mean(axis=1, keepdims=True)
    scale = float(np.mean(centred.astype(np.float64) ** 2))
    nmse_avg = float(np.mean((data.mean(axis=2) - truth).astype(np.float64) ** 2) / scale)
    den = _denoiser(mode, n_units, jobs)
    with threadpool_limits(1):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        out = den.fit(trials).transform(trials).data
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    nmse = float(np.mean((out - truth).astype(np.float64) ** 2) / scale)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    data_bytes = data.nbytes + truth.nbytes
    return {"mode": mode, "units": n_units, "cpu_s": cpu, "wall_s": wall,
            "rss_gib": rss / 2**30, "peak_gib": max(rss - base_rss - data_bytes, 0) / 2**30,
            "nmse": nmse, "nmse_avg": nmse_avg, "chosen": str(den.chosen_), "jobs": jobs}


def _child(mode: str, n_units: int, jobs: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--row", mode, str(n_units), "--jobs", str(jobs)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "units": n_units, "error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        return {"mode": mode, "units": n_units, "error": tail[0][:100]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _verdict(row: dict) -> str:
    limits = TARGETS.get((row["mode"], row["units"]))
    if limits is None or "error" in row:
        return "" if limits is None else "FAIL"
    cpu, wall, gb = limits
    ok = ((cpu is None or row["cpu_s"] <= cpu) and (wall is None or row["wall_s"] <= wall)
          and (gb is None or row["rss_gib"] <= gb))
    return "meets target" if ok else "MISSES target"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--jobs", type=int, default=2, help="piecewise tasks at once")
    parser.add_argument("--timeout", type=float, default=2400, help="seconds per row")
    parser.add_argument("--all", action="store_true", help="also rows expected not to fit")
    parser.add_argument("--quick", action="store_true", help="2,000 units, every mode")
    parser.add_argument("--row", nargs=2, metavar=("MODE", "UNITS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(run_row(args.row[0], int(args.row[1]), args.jobs)))
        return
    sizes = [2000] if args.quick else args.units
    print(f"machine: {machine()}; BLAS threads per task: 1; piecewise tasks at once: "
          f"{args.jobs}; data: units x {N_CONDITIONS} conditions x {N_TRIALS} trials, float32")
    anchor = _child("full", 2000, 1, args.timeout)
    print(f"anchor: full (standard preset) at 2,000 units: {anchor.get('cpu_s', float('nan')):.1f}"
          " CPU-s")
    header = (f"{'mode':<10} {'units':>6} {'cpu_s':>8} {'wall_s':>8} {'x anchor':>9} "
              f"{'rss_gib':>7} {'peak_gib':>8} {'nmse':>6} {'avg':>6}  chosen / verdict")
    print(header)
    for mode in args.modes:
        for n in sizes:
            if not args.all and n > TOO_BIG.get(mode, n):
                print(f"{mode:<10} {n:>6}  skipped (memory ~ units^2; --all runs it)")
                continue
            row = anchor if (mode, n) == ("full", 2000) else _child(mode, n, args.jobs,
                                                                   args.timeout)
            if "error" in row:
                print(f"{mode:<10} {n:>6}  failed: {row['error']}  {_verdict(row)}")
                continue
            ratio = row["cpu_s"] / anchor["cpu_s"] if "cpu_s" in anchor else float("nan")
            print(f"{mode:<10} {n:>6} {row['cpu_s']:>8.1f} {row['wall_s']:>8.1f} "
                  f"{ratio:>9.2f} {row['rss_gib']:>7.2f} {row['peak_gib']:>8.2f} "
                  f"{row['nmse']:>6.3f} {row['nmse_avg']:>6.3f}  {row['chosen']} "
                  f"{_verdict(row)}", flush=True)


if __name__ == "__main__":
    main()
