"""Benchmark: does BraInCoRL infer a new person's voxels from few images? (issue 12, point 5)

Simulates one linear study (``nonlinearity=0``, so every voxel's tuning is exactly linear in
the stimulus features and the Gaussian oracle is exact), meta-trains a small BraInCoRL model
on the training subjects (curriculum prior-fixed -> prior-variable -> subjects, context
sizes <= 100, every test stimulus excluded), then on held-out subjects (not used in training,
validation or the oracle's prior) fits, for N = 10 ... 1000 context images drawn from each
subject's non-test stimuli (several disjoint draws, the same images for every method):

* ``braincorl``: the meta-trained model, through the ``braincorl`` encoder;
* ``ridge``: ``RidgeEncoder()`` (per-voxel alpha by 5-fold CV, refit on all N), the anchor;
* ``ridge-avg``: ``RidgeEncoder(refit=False)``, the official fold-averaged baseline;
* ``oracle``: the Gaussian posterior mean under the simulator's population prior
  (``population_prior`` from fresh subjects) with each voxel's true noise variance of a
  condition mean (single-trial variance / repeats): the best linear estimator from N images.

Each is scored on the study's held-out test stimuli (condition means of the noisy trials,
the same images for all methods): per-voxel Pearson r and explained variance
``1 - Var(y - yhat) / Var(y)`` (the paper's), averaged over draws per voxel, then mean over
the voxels of the held-out subjects with its standard error across voxels. Prints PASS/FAIL
per target, inference throughput (tiny trained model; clip preset with untrained random
weights) and training time, and as its last line
``N=20 braincorl=<mean r> ridge=<mean r> oracle=<mean r>``.

Usage::

    python benchmarks/braincorl.py --quick --seed 3   # one seed (minutes on 2 cores)
    python benchmarks/braincorl.py                    # seeds 0, 1, 2 (the table)
    python benchmarks/braincorl.py --seeds 0,1,2,3 --threads 1 --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Import everything that loads a BLAS or OpenMP library now: threadpool_limits only limits
# the libraries loaded when it is entered (scipy's own OpenBLAS and scikit-learn's OpenMP,
# loaded later at 2 threads, made a ridge fit ~170x slower on this 2-core machine).
import scipy.linalg  # noqa: F401
import sklearn.linear_model  # noqa: F401
import torch
from _machine import machine
from conform_baselines.ridge import RidgeEncoder
from conform_braincorl.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from conform_braincorl.encoder import BraInCoRLEncoder
from conform_braincorl.network import BraInCoRLNetwork, preset_config
from conform_braincorl.tasks import (
    PriorTaskSampler,
    SubjectPool,
    SubjectTaskSampler,
    draw_validation,
)
from conform_braincorl.training import Stage, TrainSettings, meta_train
from conform_synthetic import (
    linear_tuning,
    population_prior,
    posterior_mean_readout,
    simulate_study,
)
from threadpoolctl import threadpool_info, threadpool_limits

CONTEXT_SIZES = (10, 20, 50, 100, 200, 500, 1000)
METHODS = ("braincorl", "ridge", "ridge-avg", "oracle")

#: The simulated study (see docs/benchmarks.md, "BraInCoRL", for why these values).
STUDY = dict(n_units=300, n_stimuli=2800, n_features=32, n_latent=4, n_repeats=3, snr=0.5,
             nonlinearity=0.0, test_fraction=0.2)


# ----------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Without --quick: seeds 0,1,2 (or --seeds). The last line printed is always "
               "'N=20 braincorl=<r> ridge=<r> oracle=<r>' (mean over the seeds run).")
    parser.add_argument("--quick", action="store_true",
                        help="one seed (--seed), the same study and training: minutes")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the --quick run: study, training, draws (0)")
    parser.add_argument("--seeds", type=str, default="0,1,2",
                        help="comma-separated seeds of a full run (0,1,2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS threads for everything (1)")
    parser.add_argument("--out", type=str, default=None,
                        help="also write the results as JSON: per seed, N and method the mean and SE of "
                             "r and EV, draws, fit times, targets, training and throughput")
    parser.add_argument("--preset", choices=("tiny", "small"), default="tiny",
                        help="model size to meta-train (tiny)")
    parser.add_argument("--train-subjects", type=int, default=8,
                        help="simulated subjects meta-trained on (8)")
    parser.add_argument("--test-subjects", type=int, default=2,
                        help="held-out subjects scored (2)")
    parser.add_argument("--steps", type=str, default="150,150,600",
                        help="steps of the stages prior-fixed, prior-variable, subjects "
                             "(150,150,600)")
    parser.add_argument("--context", type=str, default="8,100",
                        help="context range lo,hi of the variable stages (8,100)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (1e-3)")
    parser.add_argument("--batch", type=int, default=64, help="voxels per step (64)")
    parser.add_argument("--draws", type=int, default=5,
                        help="disjoint context draws per N and subject, fewer where the "
                             "subject's non-test stimuli run out (5)")
    parser.add_argument("--snr", type=float, default=STUDY["snr"],
                        help=f"median single-trial SNR of the study ({STUDY['snr']})")
    parser.add_argument("--units", type=int, default=STUDY["n_units"],
                        help=f"voxels per subject ({STUDY['n_units']})")
    parser.add_argument("--skip-throughput", action="store_true",
                        help="do not time the clip preset")
    args = parser.parse_args(argv)
    args.seed_list = [args.seed] if args.quick else [int(s) for s in args.seeds.split(",")]
    args.stage_steps = [int(s) for s in args.steps.split(",")]
    lo, hi = (int(s) for s in args.context.split(","))
    args.context_range = (lo, hi)
    if min(args.seed_list) < 0:
        parser.error(f"seeds must be integers >= 0; got {args.seed_list}")
    if len(args.stage_steps) != 3:
        parser.error("--steps needs three numbers: prior-fixed,prior-variable,subjects")
    return args


# ----------------------------------------------------------------------------- helpers


def describe_threads() -> str:
    """Thread count of torch and of every BLAS/OpenMP pool."""
    pools = "; ".join(f"{d['internal_api']}={d['num_threads']}" for d in threadpool_info())
    return f"torch={torch.get_num_threads()}; {pools}"


def scores(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-voxel Pearson r and explained variance over stimuli (rows); y, pred (M, V)."""
    y = y.astype(np.float64)
    pred = pred.astype(np.float64)
    yc, pc = y - y.mean(axis=0), pred - pred.mean(axis=0)
    denom = np.sqrt((yc**2).sum(axis=0) * (pc**2).sum(axis=0))
    r = np.where(denom > 0, (yc * pc).sum(axis=0) / np.where(denom > 0, denom, 1.0), 0.0)
    ev = 1.0 - (y - pred).var(axis=0) / y.var(axis=0)
    return r, ev


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error across voxels."""
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


@dataclass
class SeedResult:
    """Everything measured for one seed."""

    seed: int
    train_seconds: float = 0.0
    train_steps: int = 0
    validation: list[dict[str, Any]] = field(default_factory=list)
    #: per N and method: per-voxel r and EV (averaged over draws), voxels of all test subjects
    r: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    ev: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    draws: dict[int, int] = field(default_factory=dict)
    fit_seconds: dict[int, dict[str, float]] = field(default_factory=dict)
    n_voxels_fitted: dict[int, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- the study
def make_study(seed: int, args: argparse.Namespace) -> Any:
    """Simulate the study: training + 1 validation + test subjects."""
    n_subjects = args.train_subjects + 1 + args.test_subjects
    params = {**STUDY, "n_units": args.units, "snr": args.snr}
    return simulate_study(n_subjects=n_subjects, random_state=seed, **params)


def image_split(study: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the study's non-test stimuli in two halves: meta-training images, context images.

    Meta-training uses only the first half (and never a test stimulus); the held-out
    subjects' context images come from the second, so the model is scored on a new person
    looking at images it never saw in meta-training (as NSD's subject-unique images).
    """
    ids = np.sort(np.asarray(study.stimuli.ids).astype(str))
    rest = ids[~np.isin(ids, np.asarray(study.test_ids).astype(str))]
    order = np.random.default_rng([seed, 5]).permutation(rest)
    half = order.size // 2
    return np.sort(order[:half]), np.sort(order[half:])


def condition_means(subject: Any, ids: np.ndarray) -> np.ndarray:
    """(len(ids), n_units) condition means of the noisy trials, rows in the order of ``ids``."""
    means = subject.trials.mean()
    return np.ascontiguousarray(means.select(ids).data.T, dtype=np.float32)


def train(study: Any, seed: int, args: argparse.Namespace, folder: str,
          result: SeedResult) -> None:
    """Meta-train on the training subjects (test stimuli excluded) and save a checkpoint."""
    test_ids = np.asarray(study.test_ids).astype(str)
    embeddings = {sid: row for sid, row in zip(study.stimuli.ids, study.stimuli.embeddings)}
    train_images, context_images = image_split(study, seed)

    def pool(subject: Any, images: np.ndarray) -> Any:
        ids = np.sort(np.intersect1d(subject.train_ids, images))
        assert not np.isin(ids, test_ids).any()  # no test stimulus enters meta-training
        x = np.stack([embeddings[i] for i in ids])
        return SubjectPool.from_arrays(subject.name, x, condition_means(subject, ids),
                                       stimulus_ids=ids)

    subjects = study.subjects
    train_pools = [pool(s, train_images) for s in subjects[:args.train_subjects]]
    validation_pool = pool(subjects[args.train_subjects], context_images)
    samplers = {"prior": PriorTaskSampler.from_pools(train_pools),
                "subjects": SubjectTaskSampler(train_pools)}
    validation = draw_validation(SubjectTaskSampler([validation_pool]), seed=seed,
                                 n_tasks=128, n_context=20, n_query=32)
    fixed, variable, real = args.stage_steps
    lo, hi = args.context_range
    stages = [Stage("prior-fixed", "prior", fixed, (64, 64)),
              Stage("prior-variable", "prior", variable, (lo, hi)),
              Stage("subjects", "subjects", real, (lo, hi))]
    settings = TrainSettings(seed=seed, batch_voxels=args.batch, n_query=32, lr=args.lr,
                             min_lr=args.lr / 100, validate_every=100, threads=args.threads)
    config = preset_config(args.preset, embed_dim=train_pools[0].embed_dim)
    started = time.perf_counter()
    network, history = meta_train(config, stages, samplers, settings=settings,
                                  validation=validation)
    result.train_seconds = time.perf_counter() - started
    result.train_steps = history.step
    result.validation = history.validation
    save_checkpoint(Checkpoint(network=network, info={
        "excluded_stimuli": test_ids.tolist(),
        "training": {"benchmark": "benchmarks/braincorl.py", "seed": seed}}), folder)
    n_params = sum(p.numel() for p in network.parameters())
    last = history.validation[-1]
    print(f"  trained {args.preset} ({n_params:,} parameters), {history.step} steps in "
          f"{result.train_seconds:.1f} s ({result.train_seconds / history.step * 1e3:.0f} ms/"
          f"step); validation subject at N=20: r {history.validation[0]['pearson_r']:.3f} -> "
          f"{last['pearson_r']:.3f}", flush=True)


def evaluate(study: Any, seed: int, args: argparse.Namespace, folder: str,
             result: SeedResult) -> None:
    """Score every method on the held-out subjects for every context size."""
    prior = population_prior(study, n_subjects=16, seed=seed)
    n_repeats = study.params["n_repeats"]
    test_ids = np.sort(np.asarray(study.test_ids).astype(str))
    embeddings = {sid: row for sid, row in zip(study.stimuli.ids, study.stimuli.embeddings)}
    X_test = np.stack([embeddings[i] for i in test_ids])
    first_test = args.train_subjects + 1
    per_subject: list[dict[int, dict[str, list[np.ndarray]]]] = []
    for k, subject in enumerate(study.subjects[first_test:]):
        tuning = linear_tuning(study, subject.name)
        noise = tuning.noise_variance / n_repeats  # of a condition mean
        Y_test = condition_means(subject, test_ids)
        pool_ids = np.intersect1d(subject.train_ids, image_split(study, seed)[1])
        order = np.random.default_rng([seed, first_test + k, 12]).permutation(pool_ids)
        Y_pool = dict(zip(order, condition_means(subject, order)))
        got: dict[int, dict[str, list[np.ndarray]]] = {}
        for n in CONTEXT_SIZES:
            n_draws = min(args.draws, order.size // n)
            if n_draws < 1:
                raise SystemExit(f"Subject {subject.name} has {order.size} non-test stimuli, "
                                 f"fewer than N={n}.")
            result.draws[n] = n_draws
            times = result.fit_seconds.setdefault(n, dict.fromkeys(METHODS, 0.0))
            result.n_voxels_fitted[n] = result.n_voxels_fitted.get(n, 0) + n_draws * \
                Y_test.shape[1]
            cells = got.setdefault(n, {m: [] for m in METHODS})
            for d in range(n_draws):
                ids = order[d * n:(d + 1) * n]  # disjoint chunks of one permutation
                X = np.stack([embeddings[i] for i in ids])
                Y = np.stack([Y_pool[i] for i in ids])
                for method in METHODS:
                    start = time.perf_counter()
                    if method == "braincorl":
                        pred = BraInCoRLEncoder(checkpoint=folder, threads=args.threads,
                                                chunk_voxels=64).fit(X, Y).predict(X_test)
                    elif method == "ridge":
                        pred = RidgeEncoder().fit(X, Y).predict(X_test)
                    elif method == "ridge-avg":
                        pred = RidgeEncoder(refit=False).fit(X, Y).predict(X_test)
                    else:
                        w, b = posterior_mean_readout(prior, X, Y, noise)
                        pred = X_test @ w.T + b
                    times[method] += time.perf_counter() - start
                    cells[method].append(np.stack(scores(Y_test, pred)))
        per_subject.append(got)
    for n in CONTEXT_SIZES:
        result.r[n], result.ev[n] = {}, {}
        for method in METHODS:
            # mean over draws per voxel, then the voxels of all test subjects side by side
            both = np.concatenate([np.mean(s[n][method], axis=0) for s in per_subject], axis=1)
            result.r[n][method], result.ev[n][method] = both[0], both[1]


# ----------------------------------------------------------------------------- targets
def check_targets(result: SeedResult) -> list[tuple[str, bool, str]]:
    """The targets of issue 12, point 5, for one seed: (name, passed, detail)."""
    r = result.r
    out = []
    for n in (10, 20, 50, 100):
        for baseline in ("ridge", "ridge-avg"):
            diff = r[n]["braincorl"] - r[n][baseline]
            m, se = mean_se(diff)
            out.append((f"N={n}: braincorl beats {baseline} by > 2 SE", m > 2 * se,
                        f"diff {m:+.4f}, SE {se:.4f} ({m / se:+.1f} SE)"))
    mean = {n: {k: float(v.mean()) for k, v in r[n].items()} for n in r}
    gap = mean[20]["oracle"] - mean[20]["ridge"]
    closed = (mean[20]["braincorl"] - mean[20]["ridge"]) / gap if gap > 0 else float("nan")
    out.append(("N=20: closes >= 1/2 of the ridge-to-oracle gap", closed >= 0.5,
                f"{closed:.2f} of the gap"))
    # "rises": strictly higher at each step up to N=500; from 500 to 1000 (2 draws -> 1,
    # near the noise ceiling) not lower by more than 2 SE of the paired per-voxel difference
    for method in METHODS:
        curve = [mean[n][method] for n in CONTEXT_SIZES]
        steps = list(zip(CONTEXT_SIZES, CONTEXT_SIZES[1:]))
        ok = all(mean[b][method] > mean[a][method] for a, b in steps if b <= 500)
        m, se = mean_se(r[1000][method] - r[500][method])
        ok &= m > -2 * se
        out.append((f"{method} r rises with N", ok,
                    " < ".join(f"{v:.3f}" for v in curve[:-1]) +
                    f"; 500->1000 {m:+.4f} ({m / se:+.1f} SE)"))
    m, se = mean_se(r[500]["braincorl"] - r[500]["ridge"])
    works = mean[500]["braincorl"] > mean[100]["braincorl"] and m > -2 * se
    out.append(("works at N=500 (trained on N<=100): r(500) > r(100), not below ridge(500) "
                "by 2 SE", works,
                f"{mean[500]['braincorl']:.3f} > {mean[100]['braincorl']:.3f}; vs ridge "
                f"{m:+.4f} ({m / se:+.1f} SE)"))
    return out


# ----------------------------------------------------------------------------- throughput
def throughput(folder: str, args: argparse.Namespace, embed_dim: int) -> dict[str, float]:
    """Voxels per second of one forward pass at N = 100: the trained model, clip (untrained)."""
    out = {}
    rng = np.random.default_rng(0)
    cases = [(args.preset, load_checkpoint(folder).network, embed_dim, 600)]
    if not args.skip_throughput:
        torch.manual_seed(0)
        cases.append(("clip", BraInCoRLNetwork(preset_config("clip")).eval(), 512, 8))
    for name, network, e, voxels in cases:
        x = rng.standard_normal((100, e)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        cx = torch.from_numpy(x).expand(voxels, -1, -1)
        cy = torch.from_numpy(rng.standard_normal((voxels, 100)).astype(np.float32))
        with torch.inference_mode():
            network(cx[:2], cy[:2])  # warm-up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for i in range(0, voxels, 64):
                    network(cx[i:i + 64], cy[i:i + 64])
                best = min(best, time.perf_counter() - start)
        out[name] = voxels / best
        n_params = sum(p.numel() for p in network.parameters())
        note = "UNTRAINED random weights" if name == "clip" else "meta-trained above"
        print(f"  {name:<5s} ({n_params / 1e6:.2f} M parameters, {e}-d, {note}): "
              f"{out[name]:,.0f} voxels/s at N=100 ({voxels} voxels, best of 3)", flush=True)
    return out


# ----------------------------------------------------------------------------- report
def print_table(results: list[SeedResult]) -> None:
    """Mean r (and EV) over voxels ± SE per N and method, for every seed."""
    for res in results:
        print(f"\n# seed {res.seed}: mean over {res.r[10]['ridge'].size} held-out voxels "
              "(SE across voxels); Pearson r | EV")
        head = "   N draws " + "".join(f"{m:>22s}" for m in METHODS)
        print(head)
        for n in CONTEXT_SIZES:
            cells = []
            for m in METHODS:
                r, se = mean_se(res.r[n][m])
                ev = float(res.ev[n][m].mean())
                cells.append(f"{r:.3f}±{se:.3f} | {ev:+.3f}")
            print(f"{n:>4d} {res.draws[n]:>5d} " + "".join(f"{c:>22s}" for c in cells))


def to_json(results: list[SeedResult], args: argparse.Namespace,
            speed: dict[str, float]) -> dict[str, Any]:
    """A JSON-ready record of the run."""
    return {
        "study": {**STUDY, "n_units": args.units, "snr": args.snr,
                  "train_subjects": args.train_subjects, "test_subjects": args.test_subjects},
        "training": {"preset": args.preset, "steps": args.stage_steps,
                     "context": list(args.context_range), "lr": args.lr, "batch": args.batch},
        "threads": args.threads, "throughput_voxels_per_s": speed,
        "seeds": [{
            "seed": res.seed, "train_seconds": res.train_seconds, "train_steps": res.train_steps,
            "validation": res.validation,
            "scores": {str(n): {m: {"r": mean_se(res.r[n][m]), "ev": mean_se(res.ev[n][m])}
                                for m in METHODS} for n in CONTEXT_SIZES},
            "draws": {str(n): d for n, d in res.draws.items()},
            "fit_seconds": {str(n): t for n, t in res.fit_seconds.items()},
            "targets": [{"target": t, "passed": ok, "detail": d}
                        for t, ok, d in check_targets(res)],
        } for res in results]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit status."""
    args = parse_args(argv)

    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    print(f"# BraInCoRL few-shot benchmark: seeds {args.seed_list}, {args.preset} preset, "
          f"steps {args.stage_steps}, context {args.context_range}, lr {args.lr}, "
          f"batch {args.batch}")
    print(f"# study: {args.train_subjects} training + 1 validation + {args.test_subjects} "
          f"held-out subjects; {dict(STUDY, n_units=args.units, snr=args.snr)}")
    print(f"# machine: {machine()}; python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"numpy {np.__version__}; load average {os.getloadavg()[0]:.2f} (1 min)")
    results: list[SeedResult] = []
    speed: dict[str, float] = {}
    with threadpool_limits(limits=args.threads), tempfile.TemporaryDirectory() as tmp:
        print(f"# threads: {describe_threads()}", flush=True)
        for seed in args.seed_list:
            res = SeedResult(seed)
            start = time.perf_counter()
            study = make_study(seed, args)
            print(f"seed {seed}: simulated {len(study.subjects)} subjects in "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
            folder = os.path.join(tmp, f"model-{seed}")
            train(study, seed, args, folder, res)
            start = time.perf_counter()
            evaluate(study, seed, args, folder, res)
            print(f"  evaluated in {time.perf_counter() - start:.1f} s", flush=True)
            results.append(res)
            del study
        print("# inference throughput (1 forward pass per voxel, N = 100, "
              f"{args.threads} thread(s)):", flush=True)
        speed = throughput(os.path.join(tmp, f"model-{args.seed_list[0]}"), args,
                           STUDY["n_features"])

    print_table(results)
    print("\n# time per voxel fit, all N (same voxels, same context images; anchor: ridge)")
    for n in CONTEXT_SIZES:
        t = {m: sum(r.fit_seconds[n][m] for r in results) /
             sum(r.n_voxels_fitted[n] for r in results) for m in METHODS}
        print(f"  N={n:<5d}" + "  ".join(f"{m} {t[m] * 1e6:8.1f} us" for m in METHODS) +
              f"   braincorl / ridge = {t['braincorl'] / t['ridge']:.2f}x")
    mean_train = np.mean([r.train_seconds for r in results])
    print(f"# training: {mean_train:.1f} s per seed ({results[0].train_steps} steps, "
          f"{args.threads} thread(s))")
    print("\n# targets (issue 12, point 5)")
    all_ok = True
    for res in results:
        for name, ok, detail in check_targets(res):
            all_ok &= ok
            print(f"  seed {res.seed}  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    for res in results:
        m20 = {m: float(res.r[20][m].mean()) for m in METHODS}
        print(f"# ratio to the anchor (ridge), seed {res.seed}, mean r at N=20: braincorl / "
              f"ridge = {m20['braincorl'] / m20['ridge']:.2f}; at N=100: "
              f"{res.r[100]['braincorl'].mean() / res.r[100]['ridge'].mean():.2f}")
    print(f"# all targets: {'PASS' if all_ok else 'FAIL'}; wall time "
          f"{time.perf_counter() - wall:.0f} s; load average {os.getloadavg()[0]:.2f} (1 min)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(to_json(results, args, speed), fh, indent=1)
        print(f"# wrote {args.out}")
    m = {k: np.mean([float(r.r[20][k].mean()) for r in results]) for k in METHODS}
    print(f"N=20 braincorl={m['braincorl']:.4f} ridge={m['ridge']:.4f} oracle={m['oracle']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
