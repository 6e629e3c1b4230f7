"""Benchmark conform_psn's GSN and PSN against the official implementations.

Times ``perform_gsn``, ``psn(data)`` (default preset) and ``psn(data, 'wiener')`` on
500 x 1,000 x 2 and 1,000 x 1,000 x 3 (float32 and float64), with BLAS pinned to one
thread (threadpoolctl) and again with all cores, and on the shared reference cases.
Prints the median time, the peak Python-tracked memory (tracemalloc, which numpy
reports its buffers to) and the ratio to the official code: timed here when the
official ``gsn``/``psn`` packages are importable, otherwise the 1-thread times
recorded in ``../shared/refdata/psn/*.json`` (and, for the 500 x 1,000 x 2 size, the
``large`` anchor of ``shared/docs/psn_gsn.md`` section 7).

Usage::

    python benchmarks/psn_gsn.py            # full run (a few minutes)
    python benchmarks/psn_gsn.py --quick    # reference cases + 500 x 1,000 x 2 float64
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from conform_psn import perform_gsn, psn

REFDATA = Path(__file__).resolve().parents[1].parent / "shared" / "refdata" / "psn"
# shared/docs/psn_gsn.md section 7, `large` (500 x 1000 x 2), 1 BLAS thread, medians
# measured with a load average of about 8 on 2 cores (GSN took 2.1-2.3 s when quieter).
LARGE_ANCHOR = {"gsn": 4.052, "psn": 5.864, "psn_skip_split_half": 3.194}


def _official() -> tuple[Callable | None, Callable | None]:
    try:
        from gsn.perform_gsn import perform_gsn as off_gsn  # type: ignore[import-not-found]
    except ImportError:
        off_gsn = None
    try:
        from psn import psn as off_psn  # type: ignore[import-not-found]
    except ImportError:
        off_psn = None
    return off_gsn, off_psn


def make_data(n_units: int, n_cond: int, n_trials: int, dtype: Any, seed: int = 0) -> np.ndarray:
    """Rank-40 signal (1/k spectrum) plus rank-10 correlated and diagonal noise."""
    rng = np.random.default_rng(seed)
    rank = min(40, n_units)
    u = np.linalg.qr(rng.standard_normal((n_units, rank)))[0]
    signal = (u * np.sqrt(3.0 / np.arange(1, rank + 1))) @ rng.standard_normal((rank, n_cond))
    noise_u = np.linalg.qr(rng.standard_normal((n_units, 10)))[0] * 2.0
    noise = (np.einsum("uk,kct->uct", noise_u, rng.standard_normal((10, n_cond, n_trials)))
             + rng.standard_normal((n_units, n_cond, n_trials)))
    return (signal[:, :, None] + noise).astype(dtype)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median seconds over ``repeats`` and the peak traced memory (MB) of one call."""
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(times), peak, out


def _row(label: str, sec: float, peak: float, ref: float | None, ref_kind: str) -> str:
    ratio = f"{ref / sec:6.1f}x ({ref_kind} {ref:.3f} s)" if ref else "   n/a"
    return f"| {label:<44} | {sec:8.3f} | {peak:8.1f} | {ratio} |"


def bench_refcases(threads: int | None, repeats: int) -> list[str]:
    rows = []
    for path in sorted(REFDATA.glob("*.json")):
        meta = json.loads(path.read_text())
        data = np.load(path.with_suffix(".npz"))["in__data"]
        rt = meta["runtime_s"]
        with threadpool_limits(threads):
            for name, fn, key in (
                    ("perform_gsn", lambda: perform_gsn(data), "gsn_perform_gsn"),
                    ("psn default", lambda: psn(data), "psn_standard_full_default")):
                sec, peak, _ = timed(fn, repeats)
                key2 = "blas_1_thread" if threads == 1 else "default_threads"
                ref = rt.get(key, {}).get(key2, {}).get("median")
                rows.append(_row(f"{meta['case']} {data.shape} {name}", sec, peak, ref,
                                 "recorded"))
    return rows


def bench_sizes(sizes: list[tuple[int, int, int]], dtypes: list[Any], threads: int | None,
                repeats: int) -> list[str]:
    off_gsn, off_psn = _official()
    rows = []
    for shape in sizes:
        for dtype in dtypes:
            data = make_data(*shape, dtype)
            tag = f"{shape[0]}x{shape[1]}x{shape[2]} {np.dtype(dtype).name}"
            with threadpool_limits(threads):
                cases = [("perform_gsn", lambda: perform_gsn(data), "gsn",
                          (lambda: off_gsn(data, {"wantverbose": 0, "backend": "numpy"}))
                          if off_gsn else None),
                         ("psn default", lambda: psn(data), "psn",
                          (lambda: off_psn(data, wantfig=False, wantverbose=False,
                                           gsn_args={"backend": "numpy"})) if off_psn else None),
                         ("psn wiener", lambda: psn(data, "wiener"), None,
                          (lambda: off_psn(data, "wiener", wantfig=False, wantverbose=False,
                                           gsn_args={"backend": "numpy"})) if off_psn else None)]
                for name, fn, anchor, off in cases:
                    sec, peak, _ = timed(fn, repeats)
                    if off is not None:
                        ref, kind = timed(off, repeats)[0], "official here"
                    elif (anchor and shape == (500, 1000, 2) and threads == 1
                          and dtype == np.float64):
                        ref, kind = LARGE_ANCHOR[anchor], "psn_gsn.md s7"
                    else:
                        ref, kind = None, ""
                    rows.append(_row(f"{tag} {name}", sec, peak, ref, kind))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the reference cases and 500x1000x2 float64, 1 repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (median)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    sizes = [(500, 1000, 2)] if args.quick else [(500, 1000, 2), (1000, 1000, 3)]
    dtypes = [np.float64] if args.quick else [np.float32, np.float64]
    blas = ", ".join(f"{i['internal_api']} {i.get('version')}" for i in threadpool_info())
    print(f"numpy {np.__version__}; BLAS: {blas}")
    header = ("| case | median s | peak MB | speed-up vs official |\n"
              "|---|---|---|---|")
    for threads, label in ((1, "BLAS pinned to 1 thread"), (None, "all cores")):
        print(f"\n### {label}\n\n{header}")
        if REFDATA.is_dir():
            print("\n".join(bench_refcases(threads, repeats)))
        print("\n".join(bench_sizes(sizes, dtypes, threads, repeats)))


if __name__ == "__main__":
    main()
