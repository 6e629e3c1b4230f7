"""Benchmark GLMsingle's exact event timing and its memory prediction (issue 15).

Fits type D on one simulated session twice: with the events on the TR grid (the 0/1 onset
matrix path, the anchor) and with the same events moved off the grid by up to one TR (the
fine-grid path: regressors built at 0.1 s from the library's impulse responses). Prints the
wall time of each (minimum over repeats, BLAS pinned by threadpoolctl), their ratio, and the
peak memory ``conform_glmsingle._memory.predict_peak_bytes`` predicts beside the numpy peak
tracemalloc measures for the off-grid fit.

    python benchmarks/glmsingle_timing.py            # 5,000 units, 6 runs
    python benchmarks/glmsingle_timing.py --quick    # 2,000 units
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from _machine import machine
from conform_glmsingle import GLM_single, events_design
from conform_glmsingle._memory import format_bytes, predict_peak_bytes
from conform_synthetic import simulate_study
from threadpoolctl import threadpool_limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 units instead of 5,000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args()
    n_units = 2000 if args.quick else 5000
    ts = simulate_study(n_subjects=1, n_units=n_units, n_stimuli=120, timeseries=True,
                        random_state=0).subjects[0].timeseries
    ids = [ev.stimulus_ids for ev in ts.events]
    n_times = [run.shape[1] for run in ts.runs]
    durations = [ev.duration for ev in ts.events]
    rng = np.random.default_rng(0)
    on_grid, _ = events_design([ev.onset for ev in ts.events], durations, ids, n_times, ts.tr)
    jitter = [ev.onset + rng.uniform(0.0, ts.tr, ev.onset.size) for ev in ts.events]
    jitter = [np.minimum(o, (n - 1) * ts.tr) for o, n in zip(jitter, n_times)]
    off_grid, _ = events_design(jitter, durations, ids, n_times, ts.tr)
    params = {"wantmemoryoutputs": [0, 0, 0, 1], "verbose": False}
    print(f"machine: {machine()}; BLAS threads: {args.threads}")
    print(f"session: {n_units} units, {len(n_times)} runs, {sum(n_times)} volumes, "
          f"{sum(len(i) for i in ids)} trials, type D")
    seconds = {}
    with threadpool_limits(args.threads):
        for name, design in (("on-grid (matrix path)", on_grid), ("off-grid (fine grid)", off_grid)):
            best = np.inf
            for _ in range(args.repeats):
                start = time.perf_counter()
                GLM_single(dict(params)).fit(design, list(ts.runs), 3.0, ts.tr)
                best = min(best, time.perf_counter() - start)
            seconds[name] = best
            print(f"{name}: {best:.2f} s (best of {args.repeats})")
        tracemalloc.start()
        GLM_single(dict(params)).fit(off_grid, list(ts.runs), 3.0, ts.tr)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    predicted = predict_peak_bytes(n_units, n_times, [len(i) for i in ids], n_types=1,
                                   chunklen=50000)
    ratio = seconds["off-grid (fine grid)"] / seconds["on-grid (matrix path)"]
    print(f"memory: predicted {format_bytes(predicted)}, measured numpy peak "
          f"{format_bytes(peak)} (ratio {predicted / peak:.2f})")
    print(f"off-grid / on-grid time: {ratio:.2f}")


if __name__ == "__main__":
    main()
