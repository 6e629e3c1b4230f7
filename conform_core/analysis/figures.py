"""The figures of report.md (matplotlib, written as PNG beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .context import is_few_shot
from .runner import AnalysisResult

__all__ = ["write_figures"]

_AXIS = {"nc_r2": "held-out R² / noise ceiling", "pearson_r": "held-out r", "r2": "held-out R²"}


def _metric(result: AnalysisResult) -> str | None:
    """nc_r2 when it was computed, else pearson_r, else r2 (None: no per-unit prediction score)."""
    present = {m for u in result.unit_scores for m in u["values"]}
    return next((m for m in ("nc_r2", "pearson_r", "r2") if m in present), None)


def _per_unit(result: AnalysisResult, metric: str, kind: str) -> dict[str, dict[str, Any]]:
    """Per-unit values (finite, pooled over subjects) and per-subject medians by "denoiser → kind".

    Encoders count with their fit on all training stimuli (not the few-shot fits).
    """
    groups: dict[str, dict[str, Any]] = {}
    for u in result.unit_scores:
        name = u[kind]
        if (
            name == "none"
            or metric not in u["values"]
            or (kind == "encoder") != (u["aligner"] == "none")
            or is_few_shot(u, result.context)
        ):
            continue
        v = np.asarray(u["values"][metric], dtype=float)
        v = v[np.isfinite(v)]
        group = groups.setdefault(f"{u['denoiser']} → {name}", {"units": [], "subjects": []})
        group["units"].extend(v.tolist())
        if v.size:
            group["subjects"].append(float(np.median(v)))
    return groups


def _boxplot(
    plt: Any, groups: dict[str, dict[str, Any]], metric: str, title: str, path: Path, subjects: bool
) -> None:
    labels = sorted(groups)
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(labels)), 4))
    ax.boxplot([groups[k]["units"] for k in labels], showfliers=False)
    if subjects:
        for i, k in enumerate(labels, start=1):
            medians = groups[k]["subjects"]
            ax.scatter(
                np.full(len(medians), i) + np.linspace(-0.12, 0.12, len(medians)),
                medians,
                s=14,
                color="tab:red",
                zorder=3,
                label="held-out subject's median" if i == 1 else None,
            )
        ax.legend(fontsize=8, loc="best")
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, ha="right")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel(_AXIS[metric])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _heatmap(plt: Any, result: AnalysisResult, metric: str, path: Path) -> bool:
    from .report import summary_table

    _, body = summary_table(result, (metric,))
    plain = [row for row in body if row[1] == "none" and row[2] != "none" and row[3:] and row[3]]
    if not plain:
        return False
    dens = sorted({r[0] for r in plain})
    encs = sorted({r[2] for r in plain})
    grid = np.full((len(dens), len(encs)), np.nan)
    for r in plain:
        grid[dens.index(r[0]), encs.index(r[2])] = float(r[3])
    fig, ax = plt.subplots(figsize=(2 + 1.4 * len(encs), 1.5 + 0.6 * len(dens)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(encs)), encs)
    ax.set_yticks(range(len(dens)), dens)
    low, high = np.nanmin(grid), np.nanmax(grid)
    for i in range(len(dens)):
        for j in range(len(encs)):
            if np.isfinite(grid[i, j]):
                bright = high > low and (grid[i, j] - low) / (high - low) > 0.6
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.3f}",
                    ha="center",
                    va="center",
                    color="black" if bright else "white",
                )
    fig.colorbar(image, ax=ax, label=f"median {metric}")
    ax.set_title("Denoiser × encoder")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


_NMSE = {
    "heldout_trial_nmse": ("held-out trials (no truth needed)", "tab:blue"),
    "denoise_truth_nmse": ("error to the true signal (simulated)", "tab:orange"),
}


def _truth(plt: Any, result: AnalysisResult, path: Path) -> bool:
    """Denoisers' NMSE (held-out-trial estimate and, when simulated, to the truth), line at 1."""
    values: dict[str, dict[str, list[float]]] = {}
    for row in result.rows:
        if row["metric"] in _NMSE and row["roi"] == "all" and row["status"] == "ok":
            values.setdefault(row["metric"], {}).setdefault(row["denoiser"], []).append(
                row["value"])
    if not values:
        return False
    labels = sorted({d for per in values.values() for d in per})
    metrics = [m for m in _NMSE if m in values]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(labels)), 3.8))
    x = np.arange(len(labels))
    for i, metric in enumerate(metrics):
        name, color = _NMSE[metric]
        heights = [np.nanmedian(values[metric][d]) if values[metric].get(d) else np.nan
                   for d in labels]
        ax.bar(x + (i - (len(metrics) - 1) / 2) * width, heights, width, color=color,
               label=f"{metric}: {name}")
    ax.axhline(1.0, color="black", ls="--", lw=1,
               label="1 = predicting each unit's mean (reference)")
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylabel("NMSE (median over subjects)")
    ax.set_title("Denoised held-out responses: error (lower is better;\n"
                 "above the dashed line is worse than each unit's mean)", fontsize=10)
    # below the axes: bars of any height stay visible
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=1, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _few_shot(plt: Any, result: AnalysisResult, path: Path) -> bool:
    """Score vs number of training stimuli per denoiser → encoder, with the noise ceiling."""
    from .context import few_shot_curves, few_shot_metric, mean_and_sem
    from .report import few_shot_ceiling

    metric = few_shot_metric(result.rows)
    if metric is None or not result.context:
        return False
    curves = few_shot_curves(result.rows, result.context, metric)
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ticks: set[float] = set()
    for curve in curves:
        xs = [float(n) for n in curve.by_size]
        stats = [mean_and_sem(v) for v in curve.by_size.values()]
        if curve.full:  # the fit on all training stimuli, at the subjects' mean count
            xs.append(float(np.mean(curve.n_train)))
            stats.append(mean_and_sem(curve.full))
        ticks.update(xs)
        means = np.array([m for m, _ in stats])
        sems = np.nan_to_num(np.array([e for _, e in stats]))  # no bar with one subject
        line = ax.errorbar(xs, means, yerr=sems, marker="o", ms=4, capsize=3, lw=1.3,
                           label=f"{curve.denoiser} → {curve.encoder}")
        if curve.full:
            ax.plot(xs[-1:], means[-1:], marker="s", ms=8, mfc="none",
                    color=line.lines[0].get_color())
    ceiling = few_shot_ceiling(result, metric)
    if ceiling is not None:
        ax.axhline(ceiling, color="grey", ls="--", lw=1,
                   label=f"noise ceiling ({ceiling:.2f})")
    ax.set_xscale("log")
    shown = sorted(ticks)
    ax.set_xticks(shown, [f"{x:g}" for x in shown])
    ax.minorticks_off()
    ax.set_xlabel("training stimuli N (log scale; squares: all of them)")
    ax.set_ylabel(f"{_AXIS[metric]}\n(mean over subjects ± s.e.m.)")
    ax.set_title("Few-shot curve: held-out score vs training stimuli", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _alignment_budget(plt: Any, result: AnalysisResult, path: Path) -> bool:
    """Score vs the held-out subject's images N: each aligner, and the within-subject encoders."""
    from .align import budget_curves, budget_metric
    from .context import mean_and_sem

    metric = budget_metric(result.rows)
    if metric is None:
        return False
    curves = budget_curves(result.rows, result.context, result.aligner_context, metric)
    if not any(c.kind == "aligner" for c in curves):
        return False
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    ticks: set[float] = set()
    several = len({c.denoiser for c in curves}) > 1  # else the denoiser goes in the title
    markers = iter(("o", "D", "v", "P", "X", "*", "h", "<", ">", "p") * 10)
    for curve in curves:
        xs = [float(n) for n in curve.by_size]
        stats = [mean_and_sem(v) for v in curve.by_size.values()]
        if curve.full:  # all the images it had, at the subjects' mean count
            xs.append(float(np.mean(curve.n_used)))
            stats.append(mean_and_sem(curve.full))
        if not xs:
            continue
        order = np.argsort(xs)
        xs = [xs[i] for i in order]
        stats = [stats[i] for i in order]
        ticks.update(xs)
        means = np.array([m for m, _ in stats])
        sems = np.nan_to_num(np.array([e for _, e in stats]))  # no band with one subject
        aligner = curve.kind == "aligner"
        label = (f"aligner {curve.method}" if aligner
                 else f"encoder {curve.method} (within subject)")
        label = f"{curve.denoiser} → {label}" if several else label
        (line,) = ax.plot(xs, means, marker=next(markers) if aligner else "^", ms=4,
                          lw=1.5 if aligner else 1.2, ls="-" if aligner else "--", label=label)
        ax.fill_between(xs, means - sems, means + sems, color=line.get_color(), alpha=0.15,
                        lw=0)
        if curve.full:
            x_full = float(np.mean(curve.n_used))
            ax.plot([x_full], means[xs.index(x_full)], marker="s", ms=8, mfc="none",
                    color=line.get_color())
    ax.set_xscale("log")
    shown = sorted(ticks)
    ax.set_xticks(shown, [f"{x:g}" for x in shown])
    ax.minorticks_off()
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("images of the held-out subject N (log scale; squares: all it had)")
    ax.set_ylabel(f"{_AXIS[metric]}\n(mean over held-out subjects ± s.e.m.)")
    denoised = "" if several else f" ({curves[0].denoiser})"
    ax.set_title(f"Alignment data budget{denoised}: a new subject predicted from the others "
                 "(solid)\nvs its own encoder fitted on the same N (dashed)", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_figures(result: AnalysisResult, folder: Path) -> list[tuple[str, str]]:
    """Write the report's figures into ``folder``; return (title, file name) of each one written.

    ``scores_distribution.png``: per-unit held-out encoding score per denoiser → encoder;
    ``aligner_scores.png``: per-unit score of each held-out subject predicted from the other
    subjects, per denoiser → aligner, with each held-out subject's median;
    ``denoiser_encoder_heatmap.png``: median score per denoiser × encoder;
    ``denoiser_truth_error.png``: each denoiser's NMSE, ``heldout_trial_nmse`` (any data) and
    ``denoise_truth_nmse`` (simulated data), with a dashed reference line at 1 (predicting each
    unit's mean);
    ``few_shot_curve.png`` (with ``[evaluation] context_sizes``): score vs number of training
    stimuli per denoiser → encoder, with the noise ceiling in the same units;
    ``alignment_budget.png`` (with ``context_sizes`` and aligners): each aligner's held-out
    subject score vs the number N of its images it was added from (mean over held-out
    subjects, s.e.m. band), with the within-subject encoders fitted on N images on the same
    axis (log N); its score is the first of ``nc_r2``, ``r2``, ``pearson_r`` computed.
    The score is ``nc_r2`` when computed, else ``pearson_r``; the few-shot curve's is
    ``pearson_r`` when computed (see :func:`~conform_core.analysis.report.few_shot_table`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    metric = _metric(result)
    if metric is not None:
        encoders = _per_unit(result, metric, "encoder")
        if encoders:
            _boxplot(
                plt,
                encoders,
                metric,
                "Held-out encoding score per unit (all subjects)",
                folder / "scores_distribution.png",
                subjects=False,
            )
            written.append(("Per-unit score distributions", "scores_distribution.png"))
        aligners = _per_unit(result, metric, "aligner")
        if aligners:
            _boxplot(
                plt,
                aligners,
                metric,
                "Held-out subject predicted from the other subjects\n"
                "(per unit, leave one subject out)",
                folder / "aligner_scores.png",
                subjects=True,
            )
            written.append(
                ("Aligners: each subject predicted from the others", "aligner_scores.png")
            )
        if _heatmap(plt, result, metric, folder / "denoiser_encoder_heatmap.png"):
            written.append(
                ("Denoiser × encoder (median over subjects)", "denoiser_encoder_heatmap.png")
            )
    if _truth(plt, result, folder / "denoiser_truth_error.png"):
        written.append(
            ("Denoiser error (NMSE; dashed line at 1 = each unit's mean)",
             "denoiser_truth_error.png")
        )
    if _few_shot(plt, result, folder / "few_shot_curve.png"):
        written.append(("Few-shot curve: score vs training stimuli", "few_shot_curve.png"))
    if _alignment_budget(plt, result, folder / "alignment_budget.png"):
        written.append(("Alignment data budget: aligners vs within-subject encoders",
                        "alignment_budget.png"))
    return written
