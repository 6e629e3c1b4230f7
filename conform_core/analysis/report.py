"""The results folder: results.csv, unit_scores.parquet, report.md with figures, lock, provenance."""

from __future__ import annotations

import csv
import io
import math
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_directory, write_json, write_text
from .runner import AnalysisResult
from .scores import COLUMNS

__all__ = ["write_results", "summary_table", "provenance", "noise_ceiling_summary"]

_PACKAGES = ("conform-fmri", "numpy", "scipy", "scikit-learn", "dask", "distributed", "pluggy",
             "torch", "faiss-cpu", "h5py", "nibabel")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def results_csv(rows: list[dict[str, Any]]) -> str:
    """Render rows as CSV (full float precision, so re-runs compare byte for byte)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_format(row[c]) for c in COLUMNS])
    return buffer.getvalue()


def summary_table(result: AnalysisResult, metric_order: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """Median over subjects of each subject's median (ROI "all"), per denoiser x aligner x encoder."""
    cells: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for r in result.rows:
        if r["roi"] != "all" or r["status"] != "ok" or r["denoiser"] == "none":
            continue
        key = (r["denoiser"], r["aligner"], r["encoder"])
        cells.setdefault(key, {}).setdefault(r["metric"], []).append(r["value"])
    metrics = [m for m in metric_order if any(m in v for v in cells.values())]
    header = ["denoiser", "aligner", "encoder", *metrics]
    body = []
    for key in sorted(cells):
        values = cells[key]
        body.append([*key, *[f"{np.nanmedian(values[m]):.3f}" if m in values else "" for m in metrics]])
    return header, body


def noise_ceiling_summary(result: AnalysisResult) -> float | None:
    """Median over subjects of the per-subject median noise ceiling (percent), or None."""
    values = [r["value"] for r in result.rows
              if r["metric"] == "noise_ceiling" and r["roi"] == "all" and r["status"] == "ok"]
    return float(np.nanmedian(values)) if values else None


def provenance(plan_seed: int, started: float, ended: float, argv: list[str]) -> dict[str, Any]:
    """Package versions, platform, seed, start and end times, command line."""
    import datetime as dt

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "seed": plan_seed,
        "started": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(),
        "ended": dt.datetime.fromtimestamp(ended, dt.timezone.utc).isoformat(),
        "seconds": round(ended - started, 3),
        "argv": argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
    }


def _figures(result: AnalysisResult, folder: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    metric = "nc_r2" if any("nc_r2" in u["values"] for u in result.unit_scores) else "pearson_r"
    groups: dict[str, list[float]] = {}
    for u in result.unit_scores:
        if metric in u["values"]:
            label = f"{u['denoiser']} → {u['encoder']}"
            v = np.asarray(u["values"][metric], dtype=float)
            groups.setdefault(label, []).extend(v[np.isfinite(v)].tolist())
    if groups:
        labels = sorted(groups)
        fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(labels)), 4))
        ax.boxplot([groups[k] for k in labels], showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, ha="right")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel({"nc_r2": "held-out R² / noise ceiling", "pearson_r": "held-out r"}[metric])
        ax.set_title("Held-out encoding score per unit (all subjects)", fontsize=10)
        fig.tight_layout()
        fig.savefig(folder / "scores_distribution.png", dpi=110)
        plt.close(fig)
        written.append(("Per-unit score distributions", "scores_distribution.png"))
    header, body = summary_table(result, (metric,))
    plain = [row for row in body if row[1] == "none" and row[2] != "none" and row[3:] and row[3]]
    if plain:
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
                    ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                            color="black" if bright else "white")
        fig.colorbar(image, ax=ax, label=f"median {metric}")
        ax.set_title("Denoiser × encoder")
        fig.tight_layout()
        fig.savefig(folder / "denoiser_encoder_heatmap.png", dpi=110)
        plt.close(fig)
        written.append(("Denoiser × encoder (median over subjects)", "denoiser_encoder_heatmap.png"))
    truth: dict[str, list[float]] = {}
    for row in result.rows:
        if row["metric"] == "denoise_truth_nmse" and row["roi"] == "all" and row["status"] == "ok":
            truth.setdefault(row["denoiser"], []).append(row["value"])
    if truth:
        labels = sorted(truth)
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels)), 3.5))
        ax.bar(labels, [np.nanmedian(truth[k]) for k in labels], color="tab:orange")
        ax.set_ylabel("error to true signal (NMSE)")
        ax.set_title("Denoised held-out responses vs truth\n(lower is better)", fontsize=10)
        fig.tight_layout()
        fig.savefig(folder / "denoiser_truth_error.png", dpi=110)
        plt.close(fig)
        written.append(("Denoiser error to the simulator's true signal", "denoiser_truth_error.png"))
    return written


def _markdown(result: AnalysisResult, name: str, figures: list[tuple[str, str]],
              metric_order: tuple[str, ...]) -> str:
    header, body = summary_table(result, metric_order)
    lines = [f"# conform fit: {name}", "",
             "Scores on held-out test stimuli against raw test-trial averages; each value is the "
             "median over subjects of the median over units (ROI \"all\").", ""]
    ceiling = noise_ceiling_summary(result)
    if ceiling is not None:
        lines += [f"Noise ceiling of the held-out test averages: {ceiling:.1f} % of variance "
                  "(median over subjects and units); `nc_r2` is R² divided by it.", ""]
    if body:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
    failures = result.failures
    if failures:
        lines += ["", "## Failed cells", ""]
        lines += [f"- {r['subject']} / {r['denoiser']} / {r['aligner']} / {r['encoder']}: {r['status']}"
                  for r in failures]
    for title, file in figures:
        lines += ["", f"## {title}", "", f"![{title}]({file})"]
    lines += ["", "Files: `results.csv` (long format), `unit_scores.parquet` (per unit), "
              "`spec.lock.toml` (re-run or swap a stage), `provenance.json`, `timings.csv`.", ""]
    return "\n".join(lines)


def write_results(out: Path, result: AnalysisResult, *, name: str, lock: str,
                  prov: dict[str, Any], metric_order: tuple[str, ...], overwrite: bool = False) -> Path:
    """Write the results folder atomically (built under a temporary name, then renamed)."""
    import pandas as pd

    with atomic_directory(out, overwrite=overwrite) as tmp:
        write_text(tmp / "results.csv", results_csv(result.rows))
        write_text(tmp / "spec.lock.toml", lock)
        write_json(tmp / "provenance.json", prov)
        timing = io.StringIO()
        csv.writer(timing, lineterminator="\n").writerows(
            [("subject", "stage", "seconds")] + [(t["subject"], t["stage"], f"{t['seconds']:.4f}")
                                                 for t in result.timings])
        write_text(tmp / "timings.csv", timing.getvalue())
        records = [{"subject": u["subject"], "denoiser": u["denoiser"], "aligner": u["aligner"],
                    "encoder": u["encoder"], "metric": m, "unit": i, "value": float(v)}
                   for u in result.unit_scores for m, arr in u["values"].items()
                   for i, v in enumerate(np.asarray(arr))]
        pd.DataFrame.from_records(records, columns=["subject", "denoiser", "aligner", "encoder",
                                                    "metric", "unit", "value"]).to_parquet(
            tmp / "unit_scores.parquet", index=False)
        figures = _figures(result, tmp)
        write_text(tmp / "report.md", _markdown(result, name, figures, metric_order))
    return out
