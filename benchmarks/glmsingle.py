"""Benchmark the native GLMsingle against the official package (issue 6, point 7).

Runs the shared reference cases (../shared/refdata/glmsingle) and a synthetic session, each in
a fresh child process (so the peak RSS is per case and engine), with every thread pool (BLAS,
OpenMP) pinned by threadpoolctl. Prints wall time (minimum over repeats), peak RSS, the threads
used and the machine load.

When the official ``glmsingle`` package is importable (it is never a conform dependency:
install it in a scratch virtualenv and run this script with that venv's python), each case is
also fitted once by the official package through ``GLM_single(engine="official")`` in its own
child process, with the same data, options and thread limit (after a fracridge JIT warm-up,
without figures or files), and the script prints the measured speed ratio and the agreement of
the betas: per unit, max |native - official| over trials divided by the unit's max |official|,
summarised by the median and the max over units (types B, C, D), plus the agreement of
HRFindex, pcnum and FRACvalue. Otherwise (or with ``--official no``) the ratio uses the fastest
official time recorded in the reference JSON (an idle 2-core machine, glmsingle.md section 9).
For the reference cases the native betas are also compared with the recorded official outputs.

    python benchmarks/glmsingle.py              # reference cases + 20,000-unit session
    python benchmarks/glmsingle.py --quick      # reference cases + a 2,000-unit session
    python benchmarks/glmsingle.py --threads 1 --repeats 5 --json out.json
    python benchmarks/glmsingle.py --scale --cases ''   # 15,000 and 100,000 units
    /tmp/venv-glmsingle/bin/python benchmarks/glmsingle.py --synthetic 5000,6,300,360
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# this script is named glmsingle.py: keep its folder off sys.path so that ``import glmsingle``
# finds the official package, not this file
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

REPO = Path(__file__).resolve().parents[1]
REFDIR = REPO.parent / "shared" / "refdata" / "glmsingle"
CASES = ("c1_1d_tr1_sd3", "c3_1d_options")
#: --scale: whole-brain sessions (units), each 8 runs x 300 TRs with 504 trials
SCALE = (15000, 100000)
SCALE_DESIGN = (8, 300, 504)


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
    cond = rng.permutation(np.tile(np.arange(n_cond), 3))[: per_run * n_runs].reshape(
        n_runs, per_run
    )
    hidx = rng.integers(0, 20, n_units)
    gain = rng.lognormal(0.2, 0.4, n_units).astype(np.float32)
    resp = (rng.normal(1, 0.6, (n_units, n_cond)) * gain[:, None]).astype(np.float32)
    design, runs = [], []
    slots = np.linspace(6, n_time - 16, per_run).astype(int)
    for r in range(n_runs):
        d = np.zeros((n_time, n_cond))
        d[slots, cond[r]] = 1
        amp = (
            resp[:, cond[r]]
            + rng.normal(0, 0.35, (n_units, per_run)).astype(np.float32) * gain[:, None]
        )
        data = rng.normal(0, 1.0, (n_units, n_time)).astype(np.float32)
        latent = np.cumsum(rng.normal(0, 0.3, (4, n_time)), axis=1).astype(np.float32)
        data += rng.normal(0, 0.5, (n_units, 4)).astype(np.float32) @ latent
        for h in range(20):
            units = np.flatnonzero(hidx == h)
            x = np.zeros((n_time, per_run), np.float32)
            for j, t0 in enumerate(slots):
                seg = lib[: n_time - t0, h]
                x[t0 : t0 + seg.size, j] = seg
            data[units] += amp[units] @ x.T
        runs.append(1000 + 10 * data)
        design.append(d)
    return design, runs, stimdur, tr


def _official_available() -> bool:
    from conform_glmsingle._official import official_available

    return official_available()


def _unit_agreement(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    """Median and max over units of max_trials |ours - theirs| / max_trials |theirs|."""
    b = np.asarray(theirs, np.float64).reshape(np.shape(theirs)[0], -1)
    a = np.asarray(ours, np.float64).reshape(b.shape)
    scale = np.abs(b).max(axis=1)
    keep = scale > 0
    rel = np.abs(a - b).max(axis=1)[keep] / scale[keep]
    return {"median": float(np.median(rel)), "max": float(rel.max())}


def _fracridge_warmup() -> None:
    """Compile fracridge's numba kernels before timing (glmsingle.md section 9 does the same)."""
    try:
        from fracridge import fracridge
    except ImportError:
        return
    rng = np.random.default_rng(0)
    fracridge(rng.normal(size=(20, 4)), rng.normal(size=(20, 3)), fracs=np.array([0.5, 1.0]))


def _inputs(spec: dict[str, Any]) -> tuple[list, list, float, float, dict[str, Any], Any]:
    if spec["kind"] == "case":
        return _case_inputs(spec["name"])
    design, runs, stimdur, tr = synthetic_session(*spec["size"])
    if spec.get("units"):  # the first units of the session (the official's timing subset)
        runs = [np.ascontiguousarray(r[: spec["units"]]) for r in runs]
    return design, runs, stimdur, tr, {"verbose": False}, None


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one benchmark (one engine) in this process and return its measurements."""
    from conform_glmsingle import GLM_single
    from threadpoolctl import threadpool_info, threadpool_limits

    out: dict[str, Any] = {"name": spec["name"], "engine": spec["engine"]}
    design, runs, stimdur, tr, params, ref = _inputs(spec)
    params["wantmemoryoutputs"] = spec["types"]
    out["shape"] = {
        "units": int(runs[0].shape[0]),
        "runs": len(runs),
        "timepoints": int(sum(r.shape[1] for r in runs)),
        "trials": int(sum(d.sum() for d in design)),
    }
    params["blas_threads"] = spec["threads"]  # the fit pins BLAS to this many threads
    params["engine"] = spec["engine"]
    times, timings, res = [], {}, None
    with threadpool_limits(limits=spec["threads"]):  # BLAS and OpenMP alike
        out["threadpools"] = [
            {"api": i["internal_api"], "threads": i["num_threads"]} for i in threadpool_info()
        ]
        if spec["engine"] == "official":
            _fracridge_warmup()
            from conform_glmsingle._official import official_version

            out["official_version"] = official_version()
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
    assert res is not None
    if spec.get("save"):
        keep: dict[str, np.ndarray] = {}
        for key in ("typeb", "typec", "typed"):
            if key in res:
                keep[f"{key}_betasmd"] = np.asarray(res[key]["betasmd"], np.float32)
        last = res.get("typed", res.get("typec", res.get("typeb", {})))
        for name in ("HRFindex", "FRACvalue", "pcnum"):
            if name in last:
                keep[name] = np.asarray(last[name])
        np.savez(spec["save"], **keep)
    if ref is not None and "typed" in res:
        out["vs_refdata_typeD"] = _unit_agreement(res["typed"]["betasmd"], ref["out_D_betasmd"])
        out["vs_refdata_HRFindex"] = float(
            np.mean(np.ravel(res["typed"]["HRFindex"]) == ref["out_B_HRFindex"].ravel())
        )
        meta = json.loads((REFDIR / f"{spec['name']}.json").read_text())
        out["refdata_official_s"] = float(
            meta.get("runtime_main_min_s", meta["runtime"]["main"]["runtime_s"])
        )
        out["refdata_official_rss_mb"] = float(meta["runtime"]["main"]["peak_rss_mb"])
    return out


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {spec['name']} ({spec['engine']}) failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load_avg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return out


def _compare(native_npz: Path, official_npz: Path) -> dict[str, Any]:
    a, b = np.load(native_npz), np.load(official_npz)
    out: dict[str, Any] = {}
    for key in ("typeb", "typec", "typed"):
        if f"{key}_betasmd" in a.files and f"{key}_betasmd" in b.files:
            out[f"{key}_betas"] = _unit_agreement(a[f"{key}_betasmd"], b[f"{key}_betasmd"])
    for name in ("HRFindex", "FRACvalue"):
        if name in a.files and name in b.files:
            out[name] = float(np.mean(a[name].ravel() == b[name].ravel()))
    if "pcnum" in a.files and "pcnum" in b.files:
        out["pcnum"] = [int(a["pcnum"]), int(b["pcnum"])]
    return out


def _fmt_agree(agree: dict[str, Any]) -> str:
    parts = [
        f"{k[4]} betas median {v['median']:.1e} / max {v['max']:.1e}"
        for k, v in agree.items()
        if k.endswith("_betas")
    ]
    if "HRFindex" in agree:
        parts.append(f"HRFindex {agree['HRFindex']:.3f}")
    if "pcnum" in agree:
        parts.append(f"pcnum {agree['pcnum'][0]} vs {agree['pcnum'][1]}")
    if "FRACvalue" in agree:
        parts.append(f"FRACvalue {agree['FRACvalue']:.3f}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic session, 1 repeat")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads during the fit (default 1, the library default)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="native repeats per case (min is reported); official runs once",
    )
    parser.add_argument(
        "--official",
        choices=("auto", "no"),
        default="auto",
        help="time the official package side by side when importable (default)",
    )
    parser.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated reference cases ('' for none)"
    )
    parser.add_argument(
        "--synthetic",
        action="append",
        default=None,
        help="synthetic session as UNITS,RUNS,TRS,TRIALS (repeatable; 'none' to skip)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help=f"the whole-brain sizes of issue 19: {', '.join(map(str, SCALE))} units, "
        f"{SCALE_DESIGN[0]} runs x {SCALE_DESIGN[1]} TRs, {SCALE_DESIGN[2]} trials",
    )
    parser.add_argument(
        "--official-limit-s",
        type=float,
        default=3600.0,
        help="time the official on the whole session only when it should finish within this "
        "(predicted from the native time and the slowest ratio so far); else on its first "
        "--official-subset units, extrapolated linearly in units and labelled so",
    )
    parser.add_argument("--official-subset", type=int, default=15000, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    official = args.official == "auto" and _official_available()
    specs = []
    cases = [c for c in args.cases.split(",") if c]
    if REFDIR.is_dir():
        specs += [{"kind": "case", "name": c, "types": [1, 1, 1, 1]} for c in cases]
    elif cases:
        print(f"reference data not found at {REFDIR}: skipping the reference cases")
    sizes: list[tuple[int, ...]] = []
    if args.synthetic and args.synthetic != ["none"]:
        sizes = [tuple(int(x) for x in text.split(",")) for text in args.synthetic]
    elif args.scale:
        sizes = [(n, *SCALE_DESIGN) for n in SCALE]
    elif not args.synthetic:
        sizes = [(2000, 4, 300, 240) if args.quick else (20000, 12, 300, 750)]
    for size in sizes:
        specs.append(
            {
                "kind": "synthetic",
                "size": size,
                "types": [0, 1, 1, 1] if official else [0, 0, 0, 1],
                "name": f"synthetic {size[0]} units, {size[1]} runs x {size[2]} TRs, {size[3]} trials",
            }
        )
    from threadpoolctl import threadpool_info

    blas = sorted(
        {
            f"{i['internal_api']} {i['version']}"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        }
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {', '.join(blas)}, "
        f"{platform.machine()}, {os.cpu_count()} cores, threads pinned to {args.threads}, "
        f"native repeats {repeats}, official: "
        + ("measured in this run, 1 repeat" if official else "refdata JSON anchors")
    )
    results = []
    ratios: list[float] = []  # official / native, measured in this run
    with tempfile.TemporaryDirectory(prefix="glmsingle-bench-") as tmp:
        for spec in specs:
            spec.update(threads=args.threads)
            nat_npz, off_npz = Path(tmp, "native.npz"), Path(tmp, "official.npz")
            r = _run_child(
                {
                    **spec,
                    "engine": "native",
                    "repeats": 1 if spec["kind"] == "synthetic" else repeats,
                    "save": str(nat_npz) if official else None,
                }
            )
            line = (
                f"{r['name']}: native {r['wall_s']:.2f} s (all {r['wall_all_s']}), peak RSS "
                f"{r['peak_rss_mb']:.0f} MB, load {r['load_avg_1min']}"
            )
            subset = None
            if official and spec["kind"] == "synthetic":
                predicted = r["wall_s"] * max(ratios, default=40.0)
                if predicted > args.official_limit_s and spec["size"][0] > args.official_subset:
                    subset = args.official_subset
            if official and subset is not None:
                o = _run_child({**spec, "engine": "official", "repeats": 1, "save": None,
                                "units": subset})
                scale = spec["size"][0] / subset
                r["official"] = {"wall_s": o["wall_s"] * scale, "extrapolated_from_units": subset,
                                 "measured_wall_s": o["wall_s"], "peak_rss_mb": o["peak_rss_mb"],
                                 "official_version": o["official_version"]}
                r["ratio"] = r["official"]["wall_s"] / r["wall_s"]
                line += (
                    f"\n    official (GLMsingle {o['official_version']}) EXTRAPOLATED: "
                    f"{o['wall_s']:.1f} s on its first {subset} units x {scale:.2f} = "
                    f"{r['official']['wall_s']:.0f} s -> {r['ratio']:.0f}x faster (linear in units)"
                )
            elif official:
                o = _run_child({**spec, "engine": "official", "repeats": 1, "save": str(off_npz)})
                r["official"] = {
                    k: o[k]
                    for k in (
                        "wall_s",
                        "peak_rss_mb",
                        "load_avg_1min",
                        "official_version",
                        "threadpools",
                    )
                }
                r["ratio"] = o["wall_s"] / r["wall_s"]
                ratios.append(r["ratio"])
                r["agreement"] = _compare(nat_npz, off_npz)
                line += (
                    f"\n    official (measured, GLMsingle {o['official_version']}) {o['wall_s']:.1f} s, "
                    f"peak RSS {o['peak_rss_mb']:.0f} MB, load {o['load_avg_1min']} -> "
                    f"{r['ratio']:.0f}x faster\n    native vs official: {_fmt_agree(r['agreement'])}"
                )
            if "refdata_official_s" in r:
                r["ratio_refdata"] = r["refdata_official_s"] / r["wall_s"]
                line += (
                    f"\n    refdata anchor: official {r['refdata_official_s']:.1f} s (min of 3, idle "
                    f"machine) -> {r['ratio_refdata']:.0f}x; native vs refdata type D median "
                    f"{r['vs_refdata_typeD']['median']:.1e} / max {r['vs_refdata_typeD']['max']:.1e}, "
                    f"HRFindex {r['vs_refdata_HRFindex']:.3f}"
                )
            results.append(r)
            print(line)
            print(
                f"    native stages: {r['stages_s']}; thread pools: {r['threadpools']}", flush=True
            )
    if args.json:
        from conform_core.io import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
