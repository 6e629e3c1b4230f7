"""Benchmark the native GLMsingle against the official package (issue 6, point 7).

Runs the shared reference cases (../shared/refdata/glmsingle) and a large synthetic session,
each in a fresh child process (so the peak RSS is per case), with BLAS threads pinned by
threadpoolctl. Prints wall time (minimum over repeats), peak RSS, the BLAS threads used,
the agreement of type-D betas with the official ones, and the speed ratio to the official
package: measured when ``glmsingle`` is importable, else the fastest official time recorded
in the reference JSON (an idle 2-core machine, glmsingle.md section 9).

    python benchmarks/glmsingle.py              # reference cases + 20,000-unit session
    python benchmarks/glmsingle.py --quick      # reference cases + a 2,000-unit session
    python benchmarks/glmsingle.py --threads 1 --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REFDIR = REPO.parent / "shared" / "refdata" / "glmsingle"
CASES = ("c1_1d_tr1_sd3", "c3_1d_options")


def _case_inputs(name: str) -> tuple[list, list, float, float, dict[str, Any], Any]:
    ref = np.load(REFDIR / f"{name}.npz")
    params: dict[str, Any] = {"verbose": False}
    if name.startswith("c3"):
        params.update(sessionindicator=[1, 1, 1, 2, 2, 2], xvalscheme=[[0, 3], [1, 4], [2, 5]],
                      n_pcs=6, pcstop=1.0, fracs=np.linspace(0.95, 0.15, 9), maxpolydeg=2,
                      chunklen=300, extra_regressors=list(ref["extra_regressors"]))
    design = [d.astype(np.float64) for d in ref["design"]]
    runs = [r.astype(np.float32) for r in ref["data"]]
    return design, runs, float(ref["stimdur"]), float(ref["tr"]), params, ref


def synthetic_session(n_units: int, n_runs: int, n_time: int, n_trials: int, seed: int = 0):
    """A session with random onsets, per-unit library HRFs, shared and white noise, drift."""
    from conform_core.hrf import hrf_library

    rng = np.random.default_rng(seed)
    tr, stimdur = 1.0, 3.0
    lib = hrf_library(stimdur, tr)
    n_cond = n_trials // 3
    per_run = n_trials // n_runs
    cond = rng.permutation(np.tile(np.arange(n_cond), 3))[: per_run * n_runs].reshape(n_runs, per_run)
    hidx = rng.integers(0, 20, n_units)
    gain = rng.lognormal(0.2, 0.4, n_units).astype(np.float32)
    resp = (rng.normal(1, 0.6, (n_units, n_cond)) * gain[:, None]).astype(np.float32)
    design, runs = [], []
    slots = np.linspace(6, n_time - 16, per_run).astype(int)
    for r in range(n_runs):
        d = np.zeros((n_time, n_cond))
        d[slots, cond[r]] = 1
        amp = resp[:, cond[r]] + rng.normal(0, 0.35, (n_units, per_run)).astype(np.float32) * gain[:, None]
        data = rng.normal(0, 1.0, (n_units, n_time)).astype(np.float32)
        latent = np.cumsum(rng.normal(0, 0.3, (4, n_time)), axis=1).astype(np.float32)
        data += rng.normal(0, 0.5, (n_units, 4)).astype(np.float32) @ latent
        for h in range(20):
            units = np.flatnonzero(hidx == h)
            x = np.zeros((n_time, per_run), np.float32)
            for j, t0 in enumerate(slots):
                seg = lib[: n_time - t0, h]
                x[t0:t0 + seg.size, j] = seg
            data[units] += amp[units] @ x.T
        runs.append(1000 + 10 * data)
        design.append(d)
    return design, runs, stimdur, tr


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one benchmark in this process and return its measurements."""
    from conform_glmsingle import GLM_single
    from threadpoolctl import threadpool_info, threadpool_limits

    out: dict[str, Any] = {"name": spec["name"]}
    if spec["kind"] == "case":
        design, runs, stimdur, tr, params, ref = _case_inputs(spec["name"])
    else:
        design, runs, stimdur, tr = synthetic_session(*spec["size"])
        params, ref = {"verbose": False, "wantmemoryoutputs": [0, 0, 0, 1]}, None
    out["shape"] = {"units": int(runs[0].shape[0]), "runs": len(runs),
                    "timepoints": int(sum(r.shape[1] for r in runs)),
                    "trials": int(sum(d.sum() for d in design))}
    times, timings, res = [], {}, None
    params["blas_threads"] = spec["threads"]  # the fit pins BLAS to this many threads
    with threadpool_limits(limits=spec["threads"], user_api="blas"):
        out["blas"] = [{"api": i["internal_api"], "threads": i["num_threads"]}
                       for i in threadpool_info() if i["user_api"] == "blas"]
        for _ in range(spec["repeats"]):
            glm = GLM_single(dict(params))
            t0 = time.perf_counter()
            res = glm.fit(design, runs, stimdur, tr)
            times.append(time.perf_counter() - t0)
            timings = glm.timings_
    out["wall_s"] = min(times)
    out["wall_all_s"] = [round(t, 3) for t in times]
    out["stages_s"] = {k: round(v, 3) for k, v in timings.items()}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if ref is not None and res is not None:
        ours = np.asarray(res["typed"]["betasmd"], np.float64).reshape(ref["out_D_betasmd"].shape[0], -1)
        theirs = ref["out_D_betasmd"].reshape(ours.shape[0], -1).astype(np.float64)
        scale = np.abs(theirs).max(axis=1)
        out["typeD_max_unit_rel_err"] = float((np.abs(ours - theirs).max(axis=1) / scale).max())
        out["hrf_index_agreement"] = float(np.mean(res["typeb"]["HRFindex"].ravel()
                                                   == ref["out_B_HRFindex"].ravel()))
        meta = json.loads((REFDIR / f"{spec['name']}.json").read_text())
        out["official_s"] = float(meta.get("runtime_main_min_s", meta["runtime"]["main"]["runtime_s"]))
        out["official_rss_mb"] = float(meta["runtime"]["main"]["peak_rss_mb"])
        out["official_source"] = "refdata JSON (min of 3 runs, idle 2-core machine)"
        out["ratio"] = out["official_s"] / out["wall_s"]
    return out


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {spec['name']} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic session, 1 repeat")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads during the fit (default 1, the library default)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case (min is reported)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    specs = []
    if REFDIR.is_dir():
        specs += [{"kind": "case", "name": c, "threads": args.threads, "repeats": repeats} for c in CASES]
    else:
        print(f"reference data not found at {REFDIR}: skipping the reference cases")
    size = (2000, 4, 300, 240) if args.quick else (20000, 12, 300, 750)
    specs.append({"kind": "synthetic", "name": f"synthetic {size[0]} units, {size[1]} runs x {size[2]} TRs, {size[3]} trials",
                  "size": size, "threads": args.threads, "repeats": 1})
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
          f"BLAS threads pinned to {args.threads}, repeats {repeats}")
    results = []
    for spec in specs:
        r = _run_child(spec)
        results.append(r)
        line = f"{r['name']}: {r['wall_s']:.2f} s (all {r['wall_all_s']}), peak RSS {r['peak_rss_mb']:.0f} MB"
        if "ratio" in r:
            line += (f", official {r['official_s']:.1f} s -> {r['ratio']:.0f}x faster; type-D betas max "
                     f"rel. err {r['typeD_max_unit_rel_err']:.1e}, HRFindex agreement {r['hrf_index_agreement']:.3f}")
        print(line)
        print(f"    stages: {r['stages_s']}; BLAS: {r['blas']}")
    if args.json:
        from conform_core.io import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
