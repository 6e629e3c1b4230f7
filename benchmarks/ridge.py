"""Benchmark: the ``ridge`` encoder against himalaya's and scikit-learn's RidgeCV (issue 2).

Fits n_stimuli x n_features -> n_units with one alpha per unit chosen by cross-validation,
and prints, from the same run on the same data and under the same BLAS thread limit:

* the raw linear algebra (XᵀX, XᵀY, eigh of XᵀX) in float32 and float64, as an anchor;
* conform's ``RidgeEncoder`` (5-fold, the shared grid; the default grid; leave-one-out);
* himalaya's ``RidgeCV`` (numpy backend, 5-fold, same grid);
* scikit-learn's ``RidgeCV(alpha_per_target=True)`` (leave-one-out/GCV; it has no K-fold
  mode with one alpha per target), same grid;

then the ratios and the mean held-out R² of each model on extra test stimuli.

Usage::

    python benchmarks/ridge.py                 # full size: 10,000 x 512 x 20,000 (~10 min)
    python benchmarks/ridge.py --quick         # 2,000 x 256 x 2,000 (seconds)
    python benchmarks/ridge.py --skip-himalaya --skip-sklearn --threads 2

Target (issue 2): conform's fit under 60 s on 2 cores. Anchors measured earlier on this
machine with 1 BLAS thread: himalaya 361 s, scikit-learn 129 s, raw algebra ~4 s.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _machine import machine
from conform_baselines.ridge import DEFAULT_ALPHAS, RidgeEncoder
from threadpoolctl import threadpool_info, threadpool_limits

from conform_core.metrics import r2_score

TARGET_S = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (2,000 x 256 x 2,000) for a smoke run")
    parser.add_argument("--n-stimuli", type=int, default=None, help="training stimuli (10,000)")
    parser.add_argument("--n-features", type=int, default=None, help="features (512)")
    parser.add_argument("--n-units", type=int, default=None, help="units (20,000)")
    parser.add_argument("--n-test", type=int, default=None, help="held-out stimuli (1,000)")
    parser.add_argument("--n-alphas", type=int, default=10,
                        help="size of the grid logspace(-2, 6, N) shared by all models (10)")
    parser.add_argument("--cv", type=int, default=5, help="folds for conform and himalaya (5)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for every timing (1; see design.md 3.7)")
    parser.add_argument("--skip-himalaya", action="store_true", help="do not run himalaya")
    parser.add_argument("--skip-sklearn", action="store_true", help="do not run scikit-learn")
    parser.add_argument("--skip-loo", action="store_true",
                        help="do not run conform's leave-one-out mode")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    args = parser.parse_args(argv)
    quick = dict(n_stimuli=2000, n_features=256, n_units=2000, n_test=500)
    full = dict(n_stimuli=10_000, n_features=512, n_units=20_000, n_test=1000)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def make_data(n: int, n_test: int, p: int, t: int, seed: int) -> tuple[np.ndarray, ...]:
    """float32 features and responses whose signal-to-noise ratio varies across units.

    Responses are ``X W g + noise`` with per-unit gains ``g`` log-uniform over two decades
    (signal variance 1e-3 to 10 times the noise's),
    so the best alpha differs between units.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + n_test, p), dtype=np.float32)
    Y = np.empty((n + n_test, t), dtype=np.float32)
    gain = (10.0 ** rng.uniform(-1.5, 0.5, t) / np.sqrt(p)).astype(np.float32)
    step = 2000
    for j in range(0, t, step):
        k = slice(j, min(j + step, t))
        W = rng.standard_normal((p, k.stop - k.start), dtype=np.float32) * gain[k]
        Y[:, k] = X @ W + rng.standard_normal((n + n_test, k.stop - k.start), dtype=np.float32)
    return X[:n], Y[:n], X[n:], Y[n:]


CPU_SECONDS: list[float] = []


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (wall seconds, result) and append its CPU seconds.

    CPU time (all threads of this process) is printed beside wall time because this machine
    is shared: under load, wall time grows while CPU time stays close to the work done.
    """
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    CPU_SECONDS.append(time.process_time() - cpu)
    return time.perf_counter() - start, out


def raw_algebra(X: np.ndarray, Y: np.ndarray) -> None:
    """XᵀX, XᵀY and eigh(XᵀX), in the dtype of the arrays given."""
    xtx = X.T @ X
    X.T @ Y
    np.linalg.eigh(xtx)


def describe_threads() -> str:
    """One line per thread pool: library, API and thread count."""
    rows = [f"{d['internal_api']}({d['prefix']}, {d['user_api']})={d['num_threads']}"
            for d in threadpool_info()]
    return "; ".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit status."""
    args = parse_args(argv)
    n, p, t = args.n_stimuli, args.n_features, args.n_units
    alphas = np.logspace(-2, 6, args.n_alphas)
    import sklearn

    print(f"# ridge benchmark: {n} stimuli x {p} features x {t} units, {args.cv}-fold, "
          f"{args.n_alphas} alphas logspace(-2, 6), float32 data, {args.n_test} test stimuli")
    print(f"# load average before: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"# machine: {machine()}; python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"scikit-learn {sklearn.__version__}")
    X, Y, X_test, Y_test = make_data(n, args.n_test, p, t, args.seed)
    rows: list[tuple[str, float, float | None]] = []

    def report(name: str, seconds: float, model: Any = None) -> None:
        score = None
        if model is not None:
            pred = np.asarray(model.predict(X_test))
            score = float(np.mean(r2_score(Y_test, pred)))
        rows.append((name, seconds, score))
        extra = "" if score is None else f"   held-out mean R2 {score:.5f}"
        print(f"{name:<52s} {seconds:8.2f} s wall {CPU_SECONDS[-1]:8.2f} s cpu{extra}",
              flush=True)

    with threadpool_limits(limits=args.threads):
        print(f"# threads (threadpoolctl): {describe_threads()}", flush=True)
        secs, ours = timed(lambda: RidgeEncoder(alphas=alphas, cv=args.cv).fit(X, Y))
        report(f"conform RidgeEncoder cv={args.cv} ({ours.solver_}, float32)", secs, ours)
        ours_time, ours_cpu = secs, CPU_SECONDS[-1]
        secs, dflt = timed(lambda: RidgeEncoder(cv=args.cv).fit(X, Y))
        report(f"conform RidgeEncoder cv={args.cv}, default {len(DEFAULT_ALPHAS)} alphas",
               secs, dflt)
        del dflt
        loo = None
        if not args.skip_loo:
            secs, loo = timed(lambda: RidgeEncoder(alphas=alphas, cv="loo").fit(X, Y))
            report("conform RidgeEncoder cv='loo' (float32)", secs, loo)
            loo_time, loo_cpu = secs, CPU_SECONDS[-1]
        secs, _ = timed(lambda: raw_algebra(X, Y))
        report("raw algebra float32 (XtX, XtY, eigh)", secs)
        raw32, raw32_cpu = secs, CPU_SECONDS[-1]
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        secs, _ = timed(functools.partial(raw_algebra, X64, Y64))
        del X64, Y64
        report("raw algebra float64 (XtX, XtY, eigh)", secs)

        hima_time = skl_time = None
        if not args.skip_himalaya:
            from himalaya.backend import set_backend
            from himalaya.ridge import RidgeCV as HimalayaRidgeCV

            set_backend("numpy", on_error="raise")
            secs, hima = timed(lambda: HimalayaRidgeCV(alphas=alphas, cv=args.cv,
                                                       fit_intercept=True).fit(X, Y))
            report(f"himalaya RidgeCV cv={args.cv} (numpy backend)", secs, hima)
            hima_time, hima_cpu = secs, CPU_SECONDS[-1]
            same = np.mean(np.isclose(np.asarray(hima.best_alphas_), ours.alpha_))
            print(f"  same alpha as conform cv={args.cv}: {same:.1%} of units "
                  "(himalaya ranks alphas by mean R2 over folds, conform by pooled error)")
            del hima
        if not args.skip_sklearn:
            from sklearn.linear_model import RidgeCV

            secs, skl = timed(lambda: RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y))
            report("scikit-learn RidgeCV(alpha_per_target=True) GCV", secs, skl)
            skl_time, skl_cpu = secs, CPU_SECONDS[-1]
            if loo is not None:
                same = np.mean(np.isclose(skl.alpha_, loo.alpha_))
                diff = np.max(np.abs(r2_score(Y_test, skl.predict(X_test))
                                     - r2_score(Y_test, loo.predict(X_test))))
                print(f"  same alpha as conform cv='loo': {same:.1%} of units; "
                      f"max |delta held-out R2| = {diff:.2e}")
            del skl

    print(f"# load average after: {os.getloadavg()[0]:.2f} (1 min)")
    print("# ratios (wall; cpu), same run, same threads")

    def ratio(label: str, a: tuple[float, float], b: tuple[float, float]) -> None:
        print(f"  {label} = {a[0] / b[0]:.1f}x wall; {a[1] / b[1]:.1f}x cpu")

    ratio("conform / raw algebra float32", (ours_time, ours_cpu), (raw32, raw32_cpu))
    if hima_time is not None:
        ratio("himalaya / conform", (hima_time, hima_cpu), (ours_time, ours_cpu))
    if skl_time is not None:
        ratio("scikit-learn / conform", (skl_time, skl_cpu), (ours_time, ours_cpu))
        if not args.skip_loo:
            ratio("scikit-learn / conform-loo (same criterion)", (skl_time, skl_cpu),
                  (loo_time, loo_cpu))
    verdict = "PASS" if ours_time < TARGET_S else "FAIL"
    print(f"# target: conform cv={args.cv} under {TARGET_S:.0f} s at full size: "
          f"{ours_time:.1f} s ({verdict}{', quick sizes' if args.quick else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
