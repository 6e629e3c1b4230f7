"""How much does `conform fit` add to the cost of its stages?

Runs the quickstart grid (trial-average, pca, psn -> ridge) on a large synthetic study,
first by calling every stage directly (load, split, features, each denoiser, each encoder)
and summing their times, then through the pipeline serially and with 2 Dask workers.
Prints the ratio pipeline / direct (target < 1.2 serially) and the 2-worker speed-up.

    python benchmarks/fit.py            # 8 subjects x 5,000 units x 2,000 stimuli x 3 trials
    python benchmarks/fit.py --quick    # 4 x 1,000 x 600
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from conform_core.analysis import make_plan, run_plan
from conform_core.plugins import default_registry
from conform_core.spec import parse_spec


def build_spec(subjects: int, units: int, stimuli: int, denoisers: list[str]):
    raw = {"denoiser": denoisers, "encoder": ["ridge"], "features": "precomputed",
           "analysis": {"name": "bench", "seed": 0},
           "dataset": {"plugin": "synthetic", "params": {
               "n_subjects": subjects, "n_units": units, "n_stimuli": stimuli, "n_repeats": 3,
               "snr": 0.4, "n_shared": stimuli // 4}}}
    return parse_spec(raw)


def direct(plan) -> float:
    """Seconds of the stages called directly, summed (dataset simulated once, as the pipeline does)."""
    total = 0.0
    t0 = time.perf_counter()
    dataset = plan.dataset()
    subjects = [dataset.load_subject(s) for s in plan.subjects]
    total += time.perf_counter() - t0
    for subject in subjects:
        t0 = time.perf_counter()
        trials = subject.trials
        shown = trials.unique_stimulus_ids()
        train_ids = shown[np.isin(shown, subject.train_ids)]
        test_ids = shown[np.isin(shown, subject.test_ids)]
        train, test = trials.by_condition(train_ids), trials.by_condition(test_ids)
        features = plan.build("features", plan.stages["features"][0])
        stimuli = subject.stimuli.select(np.concatenate([train_ids, test_ids]))
        x = features.fit(stimuli).transform(stimuli)
        x_train, x_test = x[: train_ids.size], x[train_ids.size:]
        total += time.perf_counter() - t0
        for entry in plan.stages["denoiser"]:
            t0 = time.perf_counter()
            den = plan.build("denoiser", entry).fit(train)
            y = den.transform(train).as_targets()
            den.transform(test)
            for enc_entry in plan.stages["encoder"]:
                plan.build("encoder", enc_entry).fit(x_train, y).predict(x_test)
            total += time.perf_counter() - t0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="4 subjects x 1,000 units x 600 stimuli"
    )
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--stimuli", type=int, default=2000)
    parser.add_argument("--denoisers", default="trial-average,pca,psn")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.units, args.stimuli = 4, 1000, 600
    denoisers = [d for d in args.denoisers.split(",") if d]
    registry = default_registry()
    denoisers = [d for d in denoisers if d in registry.names("denoiser")]
    plan = make_plan(build_spec(args.subjects, args.units, args.stimuli, denoisers), registry)
    print(
        f"study: {args.subjects} subjects x {args.units} units x {args.stimuli} stimuli x 3 trials; "
        f"denoisers {denoisers}; encoder ridge"
    )
    with threadpool_limits(1):
        blas = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
        print(f"BLAS threads per task: {blas}")
        t_direct = direct(plan)
    print(f"stages called directly (summed): {t_direct:8.1f} s")
    t0 = time.perf_counter()
    run_plan(plan, workers=1, threads=1)
    t_serial = time.perf_counter() - t0
    print(
        f"conform fit pipeline, serial:    {t_serial:8.1f} s   ratio to direct {t_serial / t_direct:.2f} (target < 1.2)"
    )
    if not args.skip_dask:
        t0 = time.perf_counter()
        run_plan(plan, workers=2, threads=1)
        t_dask = time.perf_counter() - t0
        print(
            f"conform fit pipeline, 2 workers: {t_dask:8.1f} s   speed-up over serial {t_serial / t_dask:.2f}x"
        )


if __name__ == "__main__":
    main()
