"""Cross-subject alignment: held-out people scored by `conform fit`, and fmralign side by side.

Part 1 (ground truth, every run): two simulated studies scored by `conform fit`'s own
leave-one-subject-out alignment scoring (the template never sees the held-out subject; the
held-out subject is added from its training images only; its test responses are predicted
from the other subjects' responses and scored against its raw test averages):

- a *paired* study: subjects share a core of images, their unit sheets are misregistered (a
  smooth shift, so `identity` is imperfect) and they have different numbers of units;
  aligners identity, procrustes, ridge, srm, optimal-transport;
- an *unpaired* study: no image is seen by two subjects (stimulus_overlap = 0); aligners
  identity and ridge both work through per-subject ridge encoders and a probe set of image
  embeddings (`via_encoder = "ridge"`), so the comparison isolates the functional map.

Part 2 (where fmralign is importable): the same held-out-subject prediction by fmralign's
GroupAlignment (template, piecewise by parcel) and by ours, on one simulated study whose
subjects all have the same units (fmralign aligns voxel to voxel), with time and peak
traced memory (tracemalloc, which counts numpy's buffers) of fit + add + predict. Ours runs
twice: with its default ``n_components="auto"`` (each parcel's dimension chosen by
cross-validation) and with the largest dimension (``conform-largest-k``), which, like
fmralign's fixed settings, chooses nothing.

    python benchmarks/alignment.py --quick --seed 0   # minutes; part 2 at 8 x 1,000 x 300, 20 parcels
    python benchmarks/alignment.py                    # part 2 at 8 x 5,000 x 1,000, 100 parcels

The last line is always ``held-out nc_r2: identity=<v> procrustes=<v> ridge=<v> srm=<v>
unpaired=<v>`` (mean over held-out subjects of the median over units; unpaired = ridge via
an encoder on the unpaired study). fmralign is a benchmark-only dependency: install it by
hand (``pip install fmralign``); nothing in conform-fmri needs it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine
from conform_synthetic import simulate_study
from threadpoolctl import threadpool_info, threadpool_limits

from conform_core.analysis import make_plan, run_plan
from conform_core.data import ConditionData
from conform_core.plugins import default_registry, get_component
from conform_core.spec import parse_spec

PAIRED_ALIGNERS = ("identity", "procrustes", "ridge", "srm", "optimal-transport")
LAST_LINE = ("identity", "procrustes", "ridge", "srm", "unpaired")
FMRALIGN_METHODS = ("identity", "procrustes", "ridge", "srm", "optimal-transport")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="The last line printed is always 'held-out nc_r2: identity=... procrustes=... "
               "ridge=... srm=... unpaired=...'.")
    parser.add_argument("--quick", action="store_true",
                        help="smaller studies and a smaller fmralign comparison (minutes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated studies (0)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (1)")
    parser.add_argument("--skip-fmralign", action="store_true",
                        help="do not run part 2 even if fmralign is importable")
    parser.add_argument("--out", type=str, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be an integer >= 0; got {args.seed}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    return args


def describe_threads() -> str:
    """Thread count of every BLAS/OpenMP pool."""
    return "; ".join(f"{d['internal_api']}={d['num_threads']}" for d in threadpool_info()) or "none"


# ----------------------------------------------------------------------------- part 1
def study_params(quick: bool, seed: int, *, unpaired: bool) -> dict[str, Any]:
    """Simulator settings of the paired or unpaired study."""
    params: dict[str, Any] = {
        "n_subjects": 5 if quick else 8, "n_units": 300 if quick else 600,
        "n_stimuli": 300 if quick else 600, "n_repeats": 3, "snr": 0.5,
        "tuning_length_scale": 3.0, "misregistration": 1.5, "unit_dropout": 0.2,
        "random_state": seed,
    }
    if unpaired:
        # no image is seen twice, so each subject needs enough images of its own for an encoder
        params["stimulus_overlap"] = 0.0
        params["n_stimuli"] = params["n_subjects"] * (200 if quick else 300)
    else:
        params["n_shared"] = params["n_stimuli"] // 2
    return params


def aligner_entries(unpaired: bool) -> list[dict[str, Any]]:
    """The aligner stage of each study's spec."""
    if not unpaired:
        return [{"plugin": name} for name in PAIRED_ALIGNERS]
    via = {"via_encoder": "ridge"}
    return [{"plugin": "identity", "params": via, "label": "identity-unpaired"},
            {"plugin": "ridge", "params": via, "label": "unpaired"}]


def run_study(quick: bool, seed: int, threads: int, *, unpaired: bool) -> dict[str, Any]:
    """Run `conform fit`'s alignment scoring on one study; per aligner label its scores."""
    raw = {"denoiser": ["trial-average"], "aligner": aligner_entries(unpaired),
           "encoder": ["ridge"], "features": "precomputed",
           "analysis": {"name": "bench-align", "seed": seed},
           "evaluation": {"metrics": ["pearson_r", "r2", "nc_r2"]},
           "dataset": {"plugin": "synthetic",
                       "params": study_params(quick, seed, unpaired=unpaired)}}
    plan = make_plan(parse_spec(raw), default_registry())
    t0 = time.perf_counter()
    result = run_plan(plan, threads=threads)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": seconds, "aligners": {}}
    for entry in plan.stages["aligner"]:
        per_metric: dict[str, list[float]] = {}
        for row in result.rows:
            if (row["aligner"] == entry.label and row["roi"] == "all" and row["status"] == "ok"
                    and row.get("n_context") in (None, "")):
                per_metric.setdefault(row["metric"], []).append(float(row["value"]))
        failed = [f for f in result.failures if f.get("aligner") == entry.label]
        out["aligners"][entry.label] = {
            "metrics": {m: float(np.mean(v)) for m, v in per_metric.items()},
            "subjects": len(per_metric.get("nc_r2", [])), "failed": len(failed),
            "errors": sorted({str(f.get("error", ""))[:200] for f in failed})}
    encoder = [float(r["value"]) for r in result.rows
               if r["aligner"] == "none" and r["encoder"] == "ridge" and r["roi"] == "all"
               and r["metric"] == "nc_r2" and r["status"] == "ok"
               and r.get("n_context") in (None, "")]
    out["within_subject_ridge_nc_r2"] = float(np.mean(encoder)) if encoder else float("nan")
    return out


# ----------------------------------------------------------------------------- part 2
def fmralign_available() -> bool:
    """Whether fmralign (and its OT backend) can be imported."""
    try:
        import fmralign  # noqa: F401
    except ImportError:
        return False
    return True


def comparison_data(quick: bool, seed: int) -> dict[str, Any]:
    """One study with the same units for every subject, its parcels and raw condition means."""
    n_units, n_stimuli = (1000, 300) if quick else (5000, 1000)
    n_parcels = 20 if quick else 100
    study = simulate_study(n_subjects=8, n_units=n_units, n_stimuli=n_stimuli, n_repeats=2,
                           snr=0.5, n_shared=n_stimuli, tuning_length_scale=3.0,
                           misregistration=1.5, random_state=seed)
    from sklearn.cluster import KMeans

    from conform_core.metrics import noise_ceiling_from_trials

    positions = study.subjects[0].truth.unit_positions
    grid = positions if positions is not None else np.arange(n_units)[:, None].astype(float)
    labels = KMeans(n_clusters=n_parcels, n_init=1, random_state=seed).fit_predict(grid)
    train, test, ceilings = {}, {}, {}
    for s in study.subjects:
        means = s.trials.mean()
        train[s.name] = means.select(s.train_ids)
        test[s.name] = means.select(s.test_ids)
        ceilings[s.name] = noise_ceiling_from_trials(s.trials.by_condition(s.test_ids))
    return {"train": train, "test": test, "ceiling": ceilings, "labels": labels,
            "shape": (8, n_units, n_stimuli, n_parcels)}


def measured(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    """Run ``fn`` twice: timed alone, then under tracemalloc; return output, seconds, peak MiB.

    tracemalloc slows Python-heavy code (about 2.5x for the cross-validation of "auto"), so the
    time comes from a run without it; the peak of traced memory (numpy's buffers included)
    from a second run.
    """
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, seconds, peak


def ours(method: str, data: dict[str, Any], held_out: str,
         n_components: int | str | None = "auto") -> np.ndarray:
    """Fit on the others, add the held-out subject, predict its test responses (units x test).

    ``n_components="auto"`` (the default of every aligner) chooses each parcel's dimension by
    cross-validation; None takes the largest (what a voxel-to-voxel map keeps), for a
    like-for-like time against fmralign's fixed settings.
    """
    params: dict[str, Any] = {"labels": data["labels"]}
    if method != "identity":
        params["n_components"] = n_components
    if method == "srm":
        params["probabilistic"] = False  # fmralign's SRM is the deterministic one
    aligner = get_component("aligner", method)(**params)
    others = [s for s in data["train"] if s != held_out]
    aligner.fit([data["train"][s] for s in others])
    aligner.add_subject(data["train"][held_out])
    shared = np.mean([np.asarray(aligner.transform(data["test"][s]).data, dtype=np.float64)
                      for s in others], axis=0)
    ids = data["test"][held_out].stimulus_ids
    back = aligner.inverse_transform(ConditionData(shared, ids), held_out)
    return np.asarray(back.data, dtype=np.float64)


def theirs(method: str, data: dict[str, Any], held_out: str) -> np.ndarray:
    """The same prediction with fmralign's GroupAlignment (stimuli x units inside)."""
    from fmralign import GroupAlignment

    name = {"optimal-transport": "ot"}.get(method, method)
    if method == "srm":
        from fmralign.methods import DetSRM

        name = DetSRM(n_components=20)
    others = [s for s in data["train"] if s != held_out]
    group = GroupAlignment(method=name, labels=data["labels"], n_iter=2)
    group.fit({s: data["train"][s].data.T.astype(np.float64) for s in others})
    pred = group.predict_subject({s: data["test"][s].data.T.astype(np.float64) for s in others},
                                 data["train"][held_out].data.T.astype(np.float64))
    return np.asarray(pred, dtype=np.float64).T


def held_out_scores(pred: np.ndarray, data: dict[str, Any], held_out: str) -> dict[str, float]:
    """Median over units of R² and noise-ceiling-normalised R² against the raw test averages."""
    from conform_core.metrics import normalized_r2, r2_score

    y = np.asarray(data["test"][held_out].data, dtype=np.float64).T
    r2 = r2_score(y, pred.T)
    nc = normalized_r2(r2, data["ceiling"][held_out])
    return {"r2": float(np.nanmedian(r2)), "nc_r2": float(np.nanmedian(nc))}


def compare_fmralign(quick: bool, seed: int) -> list[dict[str, Any]]:
    """Both libraries on the same data: held-out scores, seconds, peak MiB per method."""
    data = comparison_data(quick, seed)
    held_out = sorted(data["train"])[0]
    rows = []
    runs: dict[str, Callable[..., np.ndarray]] = {
        "conform": ours,
        "conform-largest-k": lambda m, d, h: ours(m, d, h, n_components=None),
        "fmralign": theirs}
    for method in FMRALIGN_METHODS:
        row: dict[str, Any] = {"method": method}
        for who, fn in runs.items():
            if who == "conform-largest-k" and method == "identity":
                continue  # identity has no dimension to choose
            try:
                pred, seconds, peak = measured(lambda fn=fn, m=method: fn(m, data, held_out))
                row[who] = {**held_out_scores(pred, data, held_out), "seconds": seconds,
                            "peak_mib": peak}
            except Exception as exc:  # one library failing a method must not hide the rest
                row[who] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        rows.append(row)
        print(format_comparison_row(row), flush=True)
    return rows


def format_comparison_row(row: dict[str, Any]) -> str:
    """One printed line of the side-by-side table."""
    parts = [f"{row['method']:<18}"]
    for who in ("conform", "conform-largest-k", "fmralign"):
        if who not in row:
            continue
        r = row[who]
        if "error" in r:
            parts.append(f"{who}: FAILED ({r['error']})")
        else:
            parts.append(f"{who}: nc_r2 {r['nc_r2']:6.3f} r2 {r['r2']:6.3f} "
                         f"{r['seconds']:6.2f} s {r['peak_mib']:6.1f} MiB")
    return " | ".join(parts)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    args = parse_args(argv)
    with threadpool_limits(args.threads):
        print(f"machine: {machine()}; threads: {describe_threads()}", flush=True)
        results: dict[str, Any] = {"seed": args.seed, "quick": args.quick}
        for unpaired in (False, True):
            kind = "unpaired" if unpaired else "paired"
            params = study_params(args.quick, args.seed, unpaired=unpaired)
            print(f"\n{kind} study: {params}", flush=True)
            res = run_study(args.quick, args.seed, args.threads, unpaired=unpaired)
            results[kind] = res
            print(f"  conform fit: {res['seconds']:.1f} s; within-subject ridge nc_r2 "
                  f"{res['within_subject_ridge_nc_r2']:.3f}")
            for label, r in res["aligners"].items():
                m = r["metrics"]
                print(f"  {label:<18} nc_r2 {m.get('nc_r2', float('nan')):6.3f}  r2 "
                      f"{m.get('r2', float('nan')):6.3f}  r {m.get('pearson_r', float('nan')):6.3f}"
                      f"  ({r['subjects']} held-out subjects, {r['failed']} failed)"
                      + (f"  {r['errors'][0]}" if r["errors"] else ""), flush=True)
        if args.skip_fmralign:
            print("\nfmralign comparison skipped (--skip-fmralign).")
        elif not fmralign_available():
            print("\nfmralign comparison skipped: fmralign is not importable "
                  "(pip install fmralign into this environment to run it).")
        else:
            n = "8 x 1,000 units x 300 images, 20 parcels" if args.quick else \
                "8 x 5,000 units x 1,000 images, 100 parcels"
            print(f"\nfmralign side by side ({n}; held-out sub-01; fit + add + predict):",
                  flush=True)
            results["fmralign"] = compare_fmralign(args.quick, args.seed)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=str))
        paired, unpaired_res = results["paired"]["aligners"], results["unpaired"]["aligners"]
        values = {name: paired.get(name, {}).get("metrics", {}).get("nc_r2", float("nan"))
                  for name in LAST_LINE[:-1]}
        values["unpaired"] = unpaired_res.get("unpaired", {}).get("metrics", {}).get(
            "nc_r2", float("nan"))
        print("held-out nc_r2: " + " ".join(f"{k}={v:.4f}" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
