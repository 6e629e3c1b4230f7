"""Benchmark: coverage selection of `conform design` against a plain-numpy k-center.

Selects 10,000 of 200,000 512-d unit vectors with stimulus_design.select_kcenter (exact
greedy k-center in batched passes: candidate-set greedy plus blocked float32 GEMM updates) and
with the plain numpy rule (update every pool distance after every pick), prints both times and
their ratio, checks that both pick the same images, and then runs the selector on a
1,000,000-vector pool.

The plain rule costs the same for every pick (one pool-sized matrix-vector product), so with
``--numpy-picks N`` it is timed on its first N picks only and extrapolated linearly to the
full selection; the output labels that figure "extrapolated".

Usage::

    python benchmarks/design.py                      # 200k x 512 -> 10k, numpy, then 1M pool
    python benchmarks/design.py --numpy-picks 1000   # numpy timed on 1,000 picks, extrapolated
    python benchmarks/design.py --quick              # 50k -> 2k and a 200k "large" pool

Threads: FAISS (OpenMP) and BLAS (threadpoolctl) are pinned to --threads (default 2) and the
settings are printed. Data: synthetic clustered unit vectors with a power-law spectrum (a
stand-in for CLIP embeddings; real CLIP features have lower intrinsic dimension).
"""

from __future__ import annotations

import argparse
import resource
import time

import faiss
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from stimulus_design import (
    compare_with_random,
    nearest_selected,
    select_kcenter,
    select_kcenter_numpy,
)


def make_pool(n: int, d: int, *, n_clusters: int = 2000, seed: int = 0,
              chunk: int = 100_000) -> np.ndarray:
    """Clustered unit vectors (float32), generated in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, d + 1) ** -0.8).astype(np.float32)
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32) * scale * 3
    out = np.empty((n, d), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        block = centres[rng.integers(0, n_clusters, m)]
        block += rng.standard_normal((m, d), dtype=np.float32) * scale
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + m] = block
    return out


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(label: str, fn, *args, **kwargs):
    """Run ``fn`` and print its wall and CPU time (CPU time counts both threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label:<48s} {seconds:8.1f} s wall {time.process_time() - cpu:8.1f} s CPU")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--threads", type=int, default=2, help="FAISS and BLAS threads")
    parser.add_argument("--skip-numpy", action="store_true", help="skip the numpy reference")
    parser.add_argument("--skip-large", action="store_true", help="skip the 1M-vector pool")
    parser.add_argument("--numpy-picks", type=int, default=0,
                        help="time the numpy reference on this many picks and extrapolate")
    args = parser.parse_args()
    n_pool, n_select, d = (50_000, 2_000, 512) if args.quick else (200_000, 10_000, 512)
    n_large = 200_000 if args.quick else 1_000_000

    faiss.omp_set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        blas = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
        print(f"faiss {faiss.__version__}, OpenMP threads {faiss.omp_get_max_threads()}; "
              f"BLAS {blas}; numpy {np.__version__}")
        print(f"\n[1] select {n_select:,} of {n_pool:,} x {d} unit vectors")
        pool, _ = timed("generate pool", make_pool, n_pool, d)
        cpu0 = time.process_time()
        sel_result, t_sel = timed("batched k-center (stimulus_design)", select_kcenter, pool,
                             n_select)
        c_sel = time.process_time() - cpu0
        if not args.skip_numpy:
            n_ref = min(args.numpy_picks or n_select, n_select)
            cpu0 = time.process_time()
            ref, t_ref = timed(f"plain numpy k-center, {n_ref:,} picks", select_kcenter_numpy,
                               pool, n_ref)
            c_ref = time.process_time() - cpu0
            same = float(np.mean(sel_result.order[:n_ref] == ref.order))
            print(f"  same picks in the same order (first {n_ref:,}): {same:.4f}")
            if n_ref == n_select:
                print(f"  radius batched {sel_result.nearest.max():.4f} vs numpy "
                      f"{ref.nearest.max():.4f}")
            else:
                scale = n_select / n_ref
                t_ref, c_ref = t_ref * scale, c_ref * scale
                print(f"  plain numpy k-center, {n_select:,} picks EXTRAPOLATED (x{scale:g}): "
                      f"{t_ref:.1f} s wall {c_ref:.1f} s CPU")
            print(f"  speed-up (numpy / batched): {t_ref / t_sel:.1f}x wall, "
                  f"{c_ref / c_sel:.1f}x CPU")
        report, _ = timed("coverage vs random (1 exact FAISS search)", compare_with_random,
                          pool, sel_result.nearest, sel_result.order, rng=np.random.default_rng(0))
        sel, rnd = report["selected"], report["random"]
        print(f"  radius {sel['radius']:.4f} vs random {rnd['radius']:.4f} (ratio "
              f"{report['ratio_radius']}); p99 {sel['p99']:.4f} vs {rnd['p99']:.4f}; mean "
              f"{sel['mean']:.4f} vs {rnd['mean']:.4f}; Vendi {sel['vendi']:.1f} vs "
              f"{rnd['vendi']:.1f}")
        del pool, sel_result
        if not args.skip_large:
            print(f"\n[2] select {n_select:,} of {n_large:,} x {d} (memory: pool float32 "
                  f"{n_large * d * 4 / 2**30:.2f} GiB)")
            big, _ = timed("generate pool", make_pool, n_large, d)
            result, _ = timed("batched k-center", select_kcenter, big, n_select)
            check, _ = timed("exact coverage check (FAISS search)", nearest_selected, big,
                             result.order)
            print(f"  selector distances vs FAISS search: max |diff| "
                  f"{np.abs(check - result.nearest).max():.1e}")
            print(f"  radius {result.nearest.max():.4f}; peak RSS {peak_rss_gib():.2f} GiB "
                  f"(pool itself {big.nbytes / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
