"""Which denoiser recovers the true signal? The 54-setting grid of issue 13, with its oracle.

Every setting is a study simulated by ``conform_synthetic`` (2 subjects, 250 stimuli of
which the simulator holds out 20 % for testing, the simulator's other defaults):

- SNR 0.1 / 0.3 / 1.0 (median single-trial signal sd / noise sd);
- 2 / 3 / 4 trials per stimulus;
- 100 / 300 / 1,000 units;
- structured noise (the simulator's defaults: 5 shared sources carrying 30 % of the
  noise variance, 30 % spatially smooth) or independent noise (none of either).

Per setting and subject, each denoiser is fitted on the training trials and applied to the
test trials through ``conform fit``'s own cell (``prepare_subject`` and
``run_denoiser_cell``), which scores:

- ``denoise_truth_nmse``: per unit, the mean squared error to the true signal over the test
  stimuli divided by the true signal's variance, median over units (1.0 = predicting every
  unit's training mean; lower is better);
- ``pearson_r``: the held-out encoding score (ridge on the denoised training responses,
  Pearson r with the raw test averages, median over units);
- ``heldout_trial_nmse``: the truth-free error, when ``conform fit`` reports it.

The oracle is the Wiener filter with the true covariances, applied to the test averages
and centred on the training mean: ``mu + Cs (Cs + Cn / n)^-1 (y - mu)``, with ``Cs`` the
covariance of the true signal over the subject's stimuli and ``Cn`` the simulator's exact
noise covariance (rebuilt from its noise model: low-rank loadings, spatial kernel,
per-unit noise sd; checked against the realised noise of the trials).

A setting's value is the mean over its 2 subjects of the per-subject medians.

    python benchmarks/denoisers.py --jobs 2 --out denoisers.json   # the 54 settings
    python benchmarks/denoisers.py --quick                         # 8 small settings (CI)
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# scipy and scikit-learn load their thread pools on import: import them before the limit
# below, as a pool loaded later keeps its own thread count
import scipy.linalg
import scipy.stats
import sklearn  # noqa: F401
from conform_synthetic import noise_covariance
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

N_SUBJECTS = 2
N_STIMULI = 250
SNRS = (0.1, 0.3, 1.0)
REPEATS = (2, 3, 4)
UNITS = (100, 300, 1000)
NOISES = ("structured", "independent")
INDEPENDENT = {"noise_rank": 0, "lowrank_fraction": 0.0, "spatial_fraction": 0.0}
PRESETS = ("standard", "conservative", "aggressive", "compare", "wiener", "cv")
OFFICIAL = tuple(f"psn-{p}" for p in PRESETS)
OWN = ("pca", "psn-auto")  # conform's own; the psn presets reproduce the official package
EXEMPT = ("trial-average",)  # the unsmoothed reference: its NMSE is the noise (~50 at SNR 0.1)
ORACLE = "oracle"
MEAN = "train-mean"  # the reference line: every unit's training mean, whatever the stimulus


@dataclass(frozen=True)
class Setting:
    """One cell of the grid."""

    snr: float
    n_repeats: int
    n_units: int
    noise: str

    @property
    def name(self) -> str:
        return f"snr={self.snr} trials={self.n_repeats} units={self.n_units} {self.noise}"

    def params(self, n_stimuli: int) -> dict[str, Any]:
        """The ``synthetic`` dataset's parameters."""
        out: dict[str, Any] = {"n_subjects": N_SUBJECTS, "n_units": self.n_units,
                               "n_stimuli": n_stimuli, "n_repeats": self.n_repeats,
                               "snr": self.snr}
        if self.noise == "independent":
            out.update(INDEPENDENT)
        return out


def grid(quick: bool) -> list[Setting]:
    """The 54 settings, or the 8 of ``--quick`` (100 units; SNR 0.1 and 1.0; 2 and 4 trials)."""
    if quick:
        return [Setting(s, r, 100, n) for s, r, n in itertools.product((0.1, 1.0), (2, 4), NOISES)]
    return [Setting(s, r, u, n) for s, r, u, n in itertools.product(SNRS, REPEATS, UNITS, NOISES)]


def auto_available() -> tuple[bool, str]:
    """Whether ``PSNDenoiser(preset="auto")`` fits (another change of issue 13 adds it)."""
    from conform_psn import PSNDenoiser

    from conform_core.testing.fakes import make_condition_trials

    try:
        PSNDenoiser(preset="auto").fit(make_condition_trials(n_units=12, n_conditions=40))
    except Exception as exc:  # any failure means: not there (yet)
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return True, ""


def denoiser_entries(with_auto: bool) -> list[Any]:
    """Spec entries of every denoiser: trial-average, pca, each PSN preset (and auto)."""
    entries: list[Any] = ["trial-average", "pca"]
    presets = (*PRESETS, "auto") if with_auto else PRESETS
    entries += [{"plugin": "psn", "label": f"psn-{p}", "params": {"preset": p}} for p in presets]
    return entries


# ------------------------------------------------------------------------------ oracle
def true_noise_covariance(dataset: Any, index: int) -> np.ndarray:
    """The simulator's exact single-trial noise covariance of subject ``index`` (units x units)."""
    return noise_covariance(dataset.simulation_params(), index)


def realised_noise_check(subject: Any, cov: np.ndarray) -> float:
    """Median over units of realised / model noise variance (about 1 when the model is right)."""
    signal = subject.truth.signal
    column = {sid: i for i, sid in enumerate(signal.stimulus_ids)}
    idx = np.array([column[s] for s in subject.trials.stimulus_ids])
    noise = np.asarray(subject.truth.trial_amplitudes, np.float64)
    noise = noise - np.asarray(signal.data, np.float64)[:, idx].T
    return float(np.median(noise.var(axis=0) / np.diag(cov)))


def oracle_nmse(prepared: Any, subject: Any, noise_cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit NMSE of the Wiener filter with the true covariances, and of the training mean.

    The training mean is the rank-0 prediction. Its NMSE is 1 plus its squared bias (the
    noise in the mean of the training averages, and the difference between the true
    signal's mean over training and test stimuli) over the true variance: about 1.2 at
    SNR 0.1 with 2 trials.
    """
    from conform_core.analysis.scores import _nmse

    signal = np.asarray(subject.truth.signal.data, np.float64)  # units x stimuli
    cs = np.cov(signal)
    test = prepared.test
    counts = test.trial_counts()
    if not np.all(counts == counts.flat[0]):
        raise ValueError("the oracle assumes every test stimulus has the same trials")
    n_trials = float(counts.flat[0])
    mu = np.asarray(prepared.train.mean().data, np.float64).mean(axis=1, keepdims=True)
    y = np.asarray(test.mean().data, np.float64) - mu
    a = cs + noise_cov / n_trials
    est = mu + cs @ scipy.linalg.solve(a, y, assume_a="pos")
    truth = np.asarray(prepared.truth_test.data, np.float64)
    return _nmse(est, truth), _nmse(np.broadcast_to(mu, truth.shape), truth)


# ------------------------------------------------------------------------------ one setting
def _fitted_summary(component: Any) -> dict[str, Any]:
    """The scalar fitted attributes of a denoiser (rank, chosen preset, shrinkage...)."""
    out: dict[str, Any] = {}
    for key, value in vars(component).items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
            out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def run_setting(setting: Setting, n_stimuli: int, with_auto: bool) -> dict[str, Any]:
    """Fit and score every denoiser and the oracle on both subjects of ``setting``."""
    from conform_core.analysis import make_plan
    from conform_core.analysis.subject import prepare_subject, run_denoiser_cell
    from conform_core.plugins import default_registry
    from conform_core.spec import parse_spec

    started = time.perf_counter()
    spec = parse_spec({
        "denoiser": denoiser_entries(with_auto), "encoder": ["ridge"], "features": "precomputed",
        "analysis": {"name": "denoisers", "seed": 0},
        "dataset": {"plugin": "synthetic", "params": setting.params(n_stimuli)},
    })
    plan = make_plan(spec, default_registry())
    built: list[Any] = []
    build = plan.build

    def capture(stage: str, entry: Any) -> Any:  # keep each fitted denoiser for its attributes
        component = build(stage, entry)
        if stage == "denoiser":
            built.append(component)
        return component

    object.__setattr__(plan, "build", capture)  # the plan is frozen; this shadows one method
    labels = [e.label for e in plan.stages["denoiser"]]
    subjects: list[dict[str, Any]] = []
    for index, name in enumerate(plan.subjects):
        prepared = prepare_subject(plan, name)
        subject = plan.dataset().load_subject(name)
        cov = true_noise_covariance(plan.dataset(), index)
        oracle, mean = oracle_nmse(prepared, subject, cov)
        record: dict[str, Any] = {
            "subject": name, "n_train": prepared.train.n_conditions,
            "n_test": prepared.test.n_conditions,
            "noise_model_check": realised_noise_check(subject, cov),
            "oracle_nmse": float(np.nanmedian(oracle)),
            "train_mean_nmse": float(np.nanmedian(mean)),
            "denoisers": {},
        }
        for i, label in enumerate(labels):
            built.clear()
            t0 = time.perf_counter()
            cell = run_denoiser_cell(plan, prepared, i)
            values: dict[str, Any] = {"seconds": time.perf_counter() - t0}
            for row in cell.rows:
                if row["status"] != "ok":
                    values["error"] = row["status"]
                elif row["roi"] == "all" and row["encoder"] in ("none", "ridge"):
                    values[row["metric"]] = row["value"]
            if built:
                values["fitted"] = _fitted_summary(built[0])
            if hasattr(cell, "rank_zero"):  # conform fit's flag of a constant output
                values["rank_zero"] = bool(cell.rank_zero)
            record["denoisers"][label] = values
        subjects.append(record)
    return {"setting": asdict(setting), "name": setting.name, "labels": labels,
            "subjects": subjects, "seconds": time.perf_counter() - started,
            "threads": {i["internal_api"]: i["num_threads"] for i in threadpool_info()}}


def _progress(result: dict[str, Any], total: int, started: float) -> dict[str, Any]:
    _progress.count = getattr(_progress, "count", 0) + 1  # type: ignore[attr-defined]
    print(f"  [{_progress.count:2d}/{total}] {result['name']}: {result['seconds']:.1f} s "  # type: ignore[attr-defined]
          f"(elapsed {time.perf_counter() - started:.0f} s)", flush=True)
    return result


def _worker_init() -> None:
    global _LIMIT
    _LIMIT = threadpool_limits(1)  # kept for the worker's life


_LIMIT: Any = None


def _run(args: tuple[Setting, int, bool]) -> dict[str, Any]:
    return run_setting(*args)


# ------------------------------------------------------------------------------ summary
def setting_values(result: dict[str, Any], metric: str) -> dict[str, float]:
    """Per denoiser: the mean over subjects of ``metric`` (NaN when absent)."""
    out = {}
    for label in result["labels"]:
        vals = [s["denoisers"][label].get(metric, math.nan) for s in result["subjects"]]
        out[label] = float(np.mean(vals))
    if metric == "denoise_truth_nmse":
        out[ORACLE] = float(np.mean([s["oracle_nmse"] for s in result["subjects"]]))
        out[MEAN] = float(np.mean([s["train_mean_nmse"] for s in result["subjects"]]))
    return out


def _tau(a: dict[str, float], b: dict[str, float], labels: list[str]) -> float:
    x = np.array([a[k] for k in labels])
    y = np.array([b[k] for k in labels])
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    return float(scipy.stats.kendalltau(x[ok], y[ok]).statistic)


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-setting tables and the summary of the grid (see the module docstring)."""
    labels = results[0]["labels"]
    rows = []
    for res in results:
        nmse = setting_values(res, "denoise_truth_nmse")
        # a constant (rank-0) output has no correlation: its undefined r counts as 0
        enc = {k: 0.0 if math.isnan(v) else v for k, v in setting_values(res, "pearson_r").items()}
        enc_truth = {k: 0.0 if math.isnan(v) else v
                     for k, v in setting_values(res, "truth_r").items()}
        held = setting_values(res, "heldout_trial_nmse")
        neg_enc = {k: -v for k, v in enc.items()}
        official = [nmse[k] for k in OFFICIAL if k in nmse and np.isfinite(nmse[k])]
        ranks = [s["denoisers"].get("pca", {}).get("fitted", {}).get("n_components_")
                 for s in res["subjects"]]
        rows.append({
            "name": res["name"], "setting": res["setting"], "nmse": nmse, "pearson_r": enc,
            "heldout_trial_nmse": held,
            "ratio": {k: v / nmse[ORACLE] for k, v in nmse.items()},
            "best_official": min(official) if official else math.nan,
            "tau_encoding_vs_truth": _tau(neg_enc, nmse, labels),
            "tau_heldout_vs_truth": _tau(held, nmse, labels),
            "tau_encoding_vs_encoding_truth": _tau(enc, enc_truth, labels),
            "same_winner_encoding": (max(labels, key=lambda k: enc[k])
                                     == min(labels, key=lambda k: nmse[k])),
            "pca_ranks": ranks, "seconds": res["seconds"],
        })
    per = {}
    r_labels = set(labels)
    for label in [*labels, ORACLE, MEAN]:
        ratios = np.array([r["ratio"][label] for r in rows])
        values = np.array([r["nmse"][label] for r in rows])
        structured = np.array([r["setting"]["noise"] == "structured" for r in rows])
        per[label] = {
            "median_ratio": float(np.median(ratios)),
            "median_ratio_structured": float(np.median(ratios[structured])) if structured.any()
            else math.nan,
            "median_ratio_independent": float(np.median(ratios[~structured]))
            if (~structured).any() else math.nan,
            "n_above_1": int((values > 1.0).sum()),
            "n_above_1_05": int((values > 1.05).sum()),
            "n_above_1_05_mean": int(sum(r["nmse"][label] > 1.05 * r["nmse"][MEAN] for r in rows)),
            "max_nmse": float(np.max(values)),
            "rank_zero": "-" if label not in r_labels else
            f"{sum(s['denoisers'][label].get('rank_zero') is True for res in results for s in res['subjects'])}"
            f"/{sum(len(res['subjects']) for res in results)}",
            "mean_pearson_r": float(np.mean([r["pearson_r"].get(label, math.nan) for r in rows]))
            if label in r_labels else math.nan,
        }
    summary: dict[str, Any] = {
        "n_settings": len(rows), "per_denoiser": per,
        "pca_rank0_fits": sum(rk == 0 for r in rows for rk in r["pca_ranks"]),
        "pca_rank0_settings": sum(any(rk == 0 for rk in r["pca_ranks"]) for r in rows),
        "n_fits": sum(len(r["pca_ranks"]) for r in rows),
        "mean_tau_encoding_vs_truth": float(np.nanmean([r["tau_encoding_vs_truth"] for r in rows])),
        "mean_tau_encoding_vs_encoding_truth": float(
            np.nanmean([r["tau_encoding_vs_encoding_truth"] for r in rows])),
        "same_winner_encoding": int(sum(r["same_winner_encoding"] for r in rows)),
        "has_heldout": any(np.isfinite(r["tau_heldout_vs_truth"]) for r in rows),
    }
    summary["mean_tau_heldout_vs_truth"] = (
        float(np.nanmean([r["tau_heldout_vs_truth"] for r in rows]))
        if summary["has_heldout"] else math.nan)
    if "psn-auto" in labels:
        excess = np.array([r["nmse"]["psn-auto"] / r["best_official"] - 1 for r in rows])
        summary["auto_max_excess_over_best_official"] = float(np.max(excess))
        summary["auto_n_over_10pct"] = int((excess > 0.10).sum())
        for r, e in zip(rows, excess):
            r["auto_excess"] = float(e)
    return {"rows": rows, "summary": summary}


def targets(table: dict[str, Any], labels: list[str]) -> list[tuple[str, str, str]]:
    """(target, PASS/FAIL/SKIP, figure) for the issue's targets on this grid."""
    s, per, rows = table["summary"], table["summary"]["per_denoiser"], table["rows"]
    out = []
    if "psn-auto" in labels:
        med = per["psn-auto"]["median_ratio"]
        out.append(("auto: median NMSE within 2x the oracle", "PASS" if med <= 2 else "FAIL",
                    f"{med:.2f}x"))
        worst = s["auto_max_excess_over_best_official"]
        out.append(("auto: every setting <= 1.1x the best official preset",
                    "PASS" if worst <= 0.10 else "FAIL",
                    f"max {1 + worst:.3f}x; {s['auto_n_over_10pct']} settings over"))
    else:
        out += [("auto: median NMSE within 2x the oracle", "SKIP", "psn preset 'auto' absent"),
                ("auto: every setting <= 1.1x the best official preset", "SKIP",
                 "psn preset 'auto' absent")]
    groups = (("every denoiser but trial-average (exempt: the raw average)",
               [k for k in labels if k not in EXEMPT]),
              ("conform's own denoisers (" + ", ".join(k for k in OWN if k in labels) + ")",
               [k for k in OWN if k in labels]))
    for (who, checked), (key, name) in itertools.product(
            groups, (("n_above_1_05", "NMSE <= 1.05"),
                     ("n_above_1_05_mean", "NMSE <= 1.05 x the training mean's NMSE"))):
        bad = [k for k in checked if per[k][key]]
        out.append((f"{who}: {name}",
                    "PASS" if not bad else "FAIL",
                    "all within" if not bad else
                    "; ".join(f"{k} {per[k][key]}/{len(rows)}" for k in bad)))
    if s["has_heldout"]:
        tau = s["mean_tau_heldout_vs_truth"]
        out.append(("heldout_trial_nmse ranks as the truth: mean Kendall tau >= 0.8",
                    "PASS" if tau >= 0.8 else "FAIL", f"{tau:.3f}"))
    else:
        out.append(("heldout_trial_nmse ranks as the truth: mean Kendall tau >= 0.8", "SKIP",
                    "conform fit reports no heldout_trial_nmse"))
    return out


# ------------------------------------------------------------------------------ printing
def _short(label: str) -> str:
    return label.replace("psn-", "").replace("trial-average", "avg").replace("conservative", "cons")\
        .replace("aggressive", "aggr").replace("standard", "std").replace("compare", "cmp")


def print_report(table: dict[str, Any], labels: list[str]) -> None:
    cols = [*labels, ORACLE, MEAN]
    head = "| setting | " + " | ".join(_short(c) for c in cols) + " |"
    rule = "|---|" + "---|" * len(cols)
    print("\nNMSE to the true signal (mean of the subjects' medians over units; 1 = the mean)\n")
    print(head)
    print(rule)
    for r in table["rows"]:
        print(f"| {r['name']} | " + " | ".join(f"{r['nmse'][c]:.3g}" for c in cols) + " |")
    print("\nRatio to the oracle\n")
    print("| setting | " + " | ".join(_short(c) for c in labels) + " | tau enc | tau held |")
    print("|---|" + "---|" * (len(labels) + 2))
    for r in table["rows"]:
        print(f"| {r['name']} | " + " | ".join(f"{r['ratio'][c]:.3g}" for c in labels)
              + f" | {r['tau_encoding_vs_truth']:.2f} | {r['tau_heldout_vs_truth']:.2f} |")
    s, per = table["summary"], table["summary"]["per_denoiser"]
    n = s["n_settings"]
    print(f"\nSummary over {n} settings\n")
    print("| denoiser | median ratio to oracle | structured | independent | NMSE > 1.0 "
          "| NMSE > 1.05 | > 1.05 x mean | max NMSE | rank 0 | mean pearson_r |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cols:
        p = per[c]
        print(f"| {c} | {p['median_ratio']:.2f} | {p['median_ratio_structured']:.2f} | "
              f"{p['median_ratio_independent']:.2f} | {p['n_above_1']}/{n} | "
              f"{p['n_above_1_05']}/{n} | {p['n_above_1_05_mean']}/{n} | {p['max_nmse']:.3g} | "
              f"{p['rank_zero']} | {p['mean_pearson_r']:.3f} |")
    print(f"\npca at rank 0: {s['pca_rank0_fits']} of {s['n_fits']} fits, in "
          f"{s['pca_rank0_settings']} of {n} settings")
    print(f"Kendall tau, held-out encoding score vs NMSE to truth (mean over settings): "
          f"{s['mean_tau_encoding_vs_truth']:.3f}; same winner in {s['same_winner_encoding']}/{n}")
    print(f"Kendall tau, held-out encoding score vs the encoder's r with the truth (truth_r): "
          f"{s['mean_tau_encoding_vs_encoding_truth']:.3f}")
    if s["has_heldout"]:
        print(f"Kendall tau, heldout_trial_nmse vs NMSE to truth (mean over settings): "
              f"{s['mean_tau_heldout_vs_truth']:.3f}")
    if "auto_max_excess_over_best_official" in s:
        print(f"auto vs the best official preset per setting: max relative excess "
              f"{s['auto_max_excess_over_best_official']:+.3f}; over 10 % in "
              f"{s['auto_n_over_10pct']}/{n}")
    print("\nTargets (issue 13)")
    for name, verdict, figure in targets(table, labels):
        print(f"{verdict:4s}  {name}: {figure}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="8 settings of 100 units (SNR 0.1 and 1.0, 2 and 4 trials)")
    parser.add_argument("--stimuli", type=int, default=N_STIMULI,
                        help=f"stimuli per study, 20 %% held out (default {N_STIMULI})")
    parser.add_argument("--jobs", type=int, default=1, help="processes (1 BLAS thread each)")
    parser.add_argument("--out", type=Path, help="write every figure to this JSON file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with_auto, why = auto_available()
    if not with_auto:
        print(f"note: psn preset 'auto' left out: PSNDenoiser(preset='auto') failed ({why})")
    settings = grid(args.quick)
    # largest first, so the processes finish together
    order = sorted(settings, key=lambda s: (-s.n_units, -s.n_repeats))
    names = [e if isinstance(e, str) else e["label"] for e in denoiser_entries(with_auto)]
    print(f"{len(settings)} settings x {N_SUBJECTS} subjects, {args.stimuli} stimuli; "
          f"denoisers: {', '.join(names)}, oracle")
    print(f"machine: {machine()}; python {platform.python_version()}; jobs {args.jobs}")
    with threadpool_limits(1):
        pools = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
        print(f"threads per process (threadpoolctl): {pools}")
        tasks = [(s, args.stimuli, with_auto) for s in order]
        done = []
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs, initializer=_worker_init) as pool:
                for res in pool.map(_run, tasks):
                    done.append(_progress(res, len(tasks), started))
        else:
            done = [_progress(_run(t), len(tasks), started) for t in tasks]
    workers = sorted({json.dumps(r["threads"], sort_keys=True) for r in done})
    print(f"threads in the processes that ran the settings: {', '.join(workers)}")
    by_name = {d["name"]: d for d in done}
    results = [by_name[s.name] for s in settings]
    labels = results[0]["labels"]
    checks = [s["noise_model_check"] for r in results for s in r["subjects"]]
    print(f"noise model check (realised / model noise variance, median per subject): "
          f"{min(checks):.3f} to {max(checks):.3f}")
    table = summarise(results)
    print_report(table, labels)
    wall = time.perf_counter() - started
    print(f"\nwall time {wall:.1f} s ({wall / 60:.1f} min); sum of per-setting times "
          f"{sum(r['seconds'] for r in results):.1f} s")
    if args.out:
        payload = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "argv": sys.argv, "jobs": args.jobs, "threads": pools,
            "n_stimuli": args.stimuli, "auto": with_auto, "auto_note": why,
            "wall_seconds": wall, "results": results, "table": table,
            "targets": targets(table, labels),
        }
        args.out.write_text(json.dumps(payload, indent=1, default=float))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
