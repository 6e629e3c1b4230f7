"""Benchmark conform_psn's GSN and PSN against the official implementations.

Times ``perform_gsn``, ``psn(data)`` (default preset) and ``psn(data, 'wiener')`` on
500 x 1,000 x 2 and 1,000 x 1,000 x 3 (float32 and float64), with BLAS pinned to one
thread (threadpoolctl) and again with all cores, and on the shared reference cases.

When the official packages (``gsn`` = cvnlab/GSN, ``psn`` = jacob-prince/PSN) are
importable, each official call is timed side by side with ours in this process, on
the same data: the repetitions interleave (ours, official, official, ours, ...), each
repetition runs the call enough times to last ``--min-time`` seconds, and the median
per-call time is reported. The outputs are checked against each other in the same run
with the parity tolerances of ``shared/docs/psn_gsn.md`` section 6 (covariances,
denoisers, denoised data within 1e-8 of the largest magnitude for float64, 1e-5 for
float32; shrinkage levels, numiters and global K exact). Nothing here installs them:
put them in a scratch environment, e.g. ``/tmp/venv-official``, and run this script
with that environment's python.

When they are absent, the ratio is to the 1-thread times recorded in
``../shared/refdata/psn/*.json`` (and, for 500 x 1,000 x 2 float64, the ``large``
anchor of ``shared/docs/psn_gsn.md`` section 7), which were measured under other load.

Also printed: the peak Python-tracked memory of our call (tracemalloc, which numpy
reports its buffers to) and the 1-minute load average before each block.

Usage::

    /tmp/venv-official/bin/python benchmarks/psn_gsn.py           # full run
    /tmp/venv-official/bin/python benchmarks/psn_gsn.py --quick   # refcases + 500x1000x2 f64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import numpy as np
from conform_psn import perform_gsn, psn
from threadpoolctl import threadpool_info, threadpool_limits

REFDATA = Path(__file__).resolve().parents[1].parent / "shared" / "refdata" / "psn"
# shared/docs/psn_gsn.md section 7, `large` (500 x 1000 x 2), 1 BLAS thread, medians
# measured with a load average of about 8 on 2 cores (GSN took 2.1-2.3 s when quieter).
LARGE_ANCHOR = {"gsn": 4.052, "psn": 5.864, "psn_skip_split_half": 3.194}
GSN_KEYS = ("cN", "cS", "cNb", "cSb", "ncsnr", "mnS")
PSN_KEYS = ("denoiser", "denoiseddata")


# ----------------------------------------------------------------------------- official

def _official() -> dict[str, Any] | None:
    """The official entry points and where they come from, or None if not importable."""
    try:
        import gsn  # type: ignore[import-not-found]
        import psn as psn_pkg  # type: ignore[import-not-found]
        from gsn.perform_gsn import perform_gsn as off_gsn  # type: ignore[import-not-found]
        from psn import psn as off_psn  # type: ignore[import-not-found]
    except ImportError:
        return None

    def version(dist: str, fallback: str) -> str:
        try:
            return dist_version(dist)
        except PackageNotFoundError:
            return fallback

    def tree_version(package: Any) -> str:  # an exported source tree on sys.path
        root = Path(package.__file__).parents[1]
        for name in ("pyproject.toml", "setup.py"):
            text = (root / name).read_text() if (root / name).is_file() else ""
            found = [line.split("=", 1)[1].strip(" ',\"") for line in text.splitlines()
                     if line.replace(" ", "").startswith("version=")]
            if found:
                return found[0]
        return "?"

    quiet = {"wantverbose": 0, "backend": "numpy"}

    def call_psn(data: np.ndarray, preset: str | None) -> dict[str, Any]:
        args = (data,) if preset is None else (data, preset)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return off_psn(*args, wantfig=False, wantverbose=False,
                           gsn_args={"backend": "numpy"})

    return {
        "gsn": lambda data: off_gsn(data, dict(quiet)),
        "psn": call_psn,
        "about": (f"gsn {version('gsn', tree_version(gsn))} ({Path(gsn.__file__).parent}), "
                  f"psn {version('psn', tree_version(psn_pkg))} "
                  f"(__version__ {getattr(psn_pkg, '__version__', '?')}) "
                  f"({Path(psn_pkg.__file__).parent}); backend='numpy'"),
    }


def _parity(kind: str, mine: dict[str, Any], ref: dict[str, Any], dtype: Any) -> str:
    """'ok' or the first mismatch, with the tolerances of psn_gsn.md section 6."""
    rtol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-8
    worst = 0.0
    keys = GSN_KEYS if kind == "gsn" else PSN_KEYS
    for key in keys:
        a = np.asarray(mine[key], dtype=np.float64)
        b = np.asarray(ref[key], dtype=np.float64).reshape(a.shape)
        scale = max(float(np.abs(b).max()), 1e-12)
        err = float(np.abs(a - b).max()) / scale
        # float32 input: ncsnr = sqrt(diag(cD - cN/T) / diag(cN)) amplifies float32
        # rounding in low-SNR units; both implementations land 2-3e-5 from the float64
        # result on 500x1000x2, so their difference can exceed 1e-5.
        tol = 1e-4 if (key == "ncsnr" and rtol == 1e-5) else rtol
        if not err <= tol:
            return f"MISMATCH {key} {err:.1e}"
        worst = max(worst, err)
    exact = (("shrinklevelN", "shrinklevelD", "numiters") if kind == "gsn"
             else ("best_threshold",) if kind == "psn" else ())
    for key in exact:
        if not np.array_equal(np.asarray(mine[key]), np.asarray(ref[key])):
            return f"MISMATCH {key} {mine[key]} vs {ref[key]}"
    if kind == "wiener":
        k_mine, k_ref = float(mine["best_threshold"]), float(ref["best_threshold"])
        if abs(k_mine - k_ref) > rtol * max(abs(k_ref), 1.0):
            return f"MISMATCH best_threshold {k_mine} vs {k_ref}"
    return f"ok ({worst:.0e})"


# ----------------------------------------------------------------------------- timing

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


def _sample(fn: Callable[[], Any], loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops


def _loops(fn: Callable[[], Any], min_time: float) -> tuple[int, Any]:
    """Run once (warm-up, keeps the output); loops per sample so one lasts ``min_time``."""
    t0 = time.perf_counter()
    out = fn()
    once = time.perf_counter() - t0
    return max(1, int(np.ceil(min_time / max(once, 1e-6)))), out


def side_by_side(ours: Callable[[], Any], official: Callable[[], Any] | None, repeats: int,
                 min_time: float) -> tuple[float, float | None, Any, Any]:
    """Median seconds per call of ours and the official (interleaved), and their outputs."""
    n_ours, out_ours = _loops(ours, min_time)
    times: dict[str, list[float]] = {"ours": [], "off": []}
    out_off = None
    if official is not None:
        n_off, out_off = _loops(official, min_time)
    for rep in range(repeats):
        order = ("ours", "off") if rep % 2 == 0 else ("off", "ours")
        for who in order:
            if who == "ours":
                times["ours"].append(_sample(ours, n_ours))
            elif official is not None:
                times["off"].append(_sample(official, n_off))
    off = statistics.median(times["off"]) if times["off"] else None
    return statistics.median(times["ours"]), off, out_ours, out_off


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _row(label: str, sec: float, ref: float | None, ref_kind: str, peak: float,
         parity: str) -> str:
    if ref:
        ratio, ref_s = f"**{ref / sec:.1f}x**", f"{ref:.4g} ({ref_kind})"
    else:
        ratio, ref_s = "n/a", "n/a"
    return f"| {label} | {sec:.4g} | {ref_s} | {ratio} | {peak:.1f} | {parity} |"


def _run_case(label: str, data: np.ndarray, off: dict[str, Any] | None, repeats: int,
              min_time: float, recorded: dict[str, float | None]) -> list[str]:
    rows = []
    cases = (("perform_gsn", "gsn", lambda: perform_gsn(data),
              (lambda: off["gsn"](data)) if off else None),
             ("psn default", "psn", lambda: psn(data),
              (lambda: off["psn"](data, None)) if off else None),
             ("psn wiener", "wiener", lambda: psn(data, "wiener"),
              (lambda: off["psn"](data, "wiener")) if off else None))
    for name, kind, ours, official in cases:
        sec, ref, out_ours, out_off = side_by_side(ours, official, repeats, min_time)
        if official is not None:
            kind_s, parity = "official here", _parity(kind, out_ours, out_off, data.dtype)
        else:
            ref, kind_s, parity = recorded.get(kind), "recorded", "not checked"
        rows.append(_row(f"{label} {name}", sec, ref, kind_s, peak_mb(ours), parity))
    return rows


def bench_refcases(threads: int | None, off: dict[str, Any] | None, repeats: int,
                   min_time: float) -> list[str]:
    rows = []
    key2 = "blas_1_thread" if threads == 1 else "default_threads"
    for path in sorted(REFDATA.glob("*.json")):
        meta = json.loads(path.read_text())
        with np.load(path.with_suffix(".npz")) as npz:
            data = npz["in__data"]
        rt = meta["runtime_s"]
        recorded = {"gsn": rt.get("gsn_perform_gsn", {}).get(key2, {}).get("median"),
                    "psn": rt.get("psn_standard_full_default", {}).get(key2, {}).get("median")}
        shape = "x".join(map(str, data.shape))
        rows += _run_case(f"{meta['case']} {shape}", data, off, repeats, min_time, recorded)
    return rows


def bench_sizes(sizes: list[tuple[int, int, int]], dtypes: list[Any], threads: int | None,
                off: dict[str, Any] | None, repeats: int, min_time: float) -> list[str]:
    rows = []
    for shape in sizes:
        for dtype in dtypes:
            data = make_data(*shape, dtype)
            recorded: dict[str, float | None] = {}
            if shape == (500, 1000, 2) and threads == 1 and dtype == np.float64:
                recorded = {"gsn": LARGE_ANCHOR["gsn"], "psn": LARGE_ANCHOR["psn"]}
            label = f"{'x'.join(map(str, shape))} {np.dtype(dtype).name}"
            rows += _run_case(label, data, off, repeats, min_time, recorded)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the reference cases and 500x1000x2 float64")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved repetitions per call (median; default 5)")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds one repetition lasts at least (short calls loop)")
    parser.add_argument("--threads", choices=("1", "all", "both"), default="both",
                        help="BLAS threads: pinned to 1, all cores, or both (default)")
    parser.add_argument("--no-refcases", action="store_true", help="skip the refdata cases")
    args = parser.parse_args()
    repeats = max(1, min(args.repeats, 3) if args.quick else args.repeats)
    sizes = [(500, 1000, 2)] if args.quick else [(500, 1000, 2), (1000, 1000, 3)]
    dtypes = [np.float64] if args.quick else [np.float32, np.float64]
    off = _official()
    blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('num_threads')} threads)"
                     for i in threadpool_info())
    print(f"numpy {np.__version__}; BLAS: {blas}; {os.cpu_count()} CPUs")
    print("official: " + (off["about"] if off else
                          "not importable -> ratios to recorded refdata times (other load)"))
    print(f"{repeats} interleaved repetitions of >= {args.min_time} s each, median per call")
    header = ("| case | ours [s] | official [s] | speed-up | ours peak MB | parity |\n"
              "|---|---|---|---|---|---|")
    blocks = {"1": [(1, "BLAS pinned to 1 thread")],
              "all": [(None, "all cores")]}.get(args.threads,
                                                [(1, "BLAS pinned to 1 thread"),
                                                 (None, "all cores")])
    for threads, label in blocks:
        print(f"\n### {label} (load average {os.getloadavg()[0]:.1f} at start)\n\n{header}",
              flush=True)
        with threadpool_limits(threads):
            if REFDATA.is_dir() and not args.no_refcases:
                for row in bench_refcases(threads, off, repeats, args.min_time):
                    print(row, flush=True)
            for row in bench_sizes(sizes, dtypes, threads, off, repeats, args.min_time):
                print(row, flush=True)
        print(f"\n(load average {os.getloadavg()[0]:.1f} at end)", flush=True)


if __name__ == "__main__":
    main()
