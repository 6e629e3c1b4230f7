"""The model card and the loss-curve figure of a meta-training run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from conform_core.io import atomic_path

__all__ = ["model_card", "official_card", "plot_loss_curve"]

_MAX_ROWS = 25  # rows of the validation table in the card


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _n_parameters(model: Mapping[str, Any]) -> str:
    from .network import BraInCoRLConfig

    try:
        return f"{BraInCoRLConfig.from_dict(dict(model)).n_parameters():,}"
    except Exception:  # a card is still written for sizes this version cannot build
        return "?"


def model_card(described: Mapping[str, Any], folder: str | Path) -> str:
    """Return ``model_card.md`` for a checkpoint's configuration (``Checkpoint.describe()``).

    It says what the model is, the feature space it reads, the datasets, subjects and
    stimulus counts it was trained on, the curriculum, the validation curve, and how to use
    it in ``conform fit``.
    """
    training = described.get("training", {})
    model = described.get("model", {})
    space = described.get("feature_space") or "unrecorded (checked by dimension only)"
    lines = [
        f"# BraInCoRL model: {Path(folder).name}", "",
        "An in-context encoder (BraInCoRL, Yu et al. 2025): given one voxel's responses to a "
        "few images (their embeddings and the measured responses), it emits a linear readout "
        "`(w, b)` that predicts the voxel's response to any other image as `x · w + b`, "
        "without fine-tuning. It was meta-trained by `conform braincorl train`.", "",
        *_table(["", ""], [
            ["feature space", f"`{space}`"],
            ["embedding dimension", described.get("embed_dim", "?")],
            ["model", f"{training.get('preset', 'custom')}: width "
                      f"{model.get('internal_emb_dim', '?')}, {model.get('num_tsfm_layers', '?')} "
                      f"layers, {model.get('num_heads', '?')} heads, "
                      f"{_n_parameters(model)} parameters"],
            ["steps", f"{training.get('steps', '?')} of {training.get('total_steps', '?')}"],
            ["training time", f"{training.get('seconds', 0):.0f} s on "
                              f"{training.get('settings', {}).get('device', '?')}"],
            ["conform-fmri", training.get("conform_version", "?")],
        ]), "",
        "The model must only read embeddings of the feature space above: conform refuses "
        "features of another backbone or dimension.", "",
        "## Training data", ""]
    datasets = training.get("datasets", [])
    for dataset in datasets:
        shown = dataset.get("set", dataset.get("params", {}))
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items()))
        lines.append(f"- dataset `{dataset.get('plugin', '?')}`"
                     + (f" ({params}; every parameter is in `config.json`)" if params else ""))
    if not datasets:
        lines.append("- tasks given in memory (the Python API); see `config.json`")
    counts = training.get("stimulus_counts", {})
    roles = {**{s: "validation" for s in training.get("validation_subjects", [])},
             **{s: "training" for s in training.get("subjects", [])}}
    if counts:
        lines += ["", *_table(["subject", "role", "stimuli used", "voxels", "voxels left out (NaN)"],
                              [[s, roles.get(s, "?"), c.get("stimuli", "?"), c.get("voxels", "?"),
                                c.get("dropped_voxels", 0)] for s, c in counts.items()])]
    excluded = described.get("excluded_stimuli", [])
    rule = training.get("exclude_test_stimuli", "all")
    lines += ["", f"{len(excluded)} stimuli were left out of meta-training "
                  + ("(every stimulus of any subject's test split)" if rule == "all"
                     else "(each subject's own test stimuli)")
              + "; their ids are in `config.json` (`excluded_stimuli`). Embeddings were "
                "unit-normalised.", "", "## Curriculum", ""]
    stages = training.get("stages", [])
    lines += _table(["stage", "source", "steps", "context size"],
                    [[s["name"], s["source"], s["steps"],
                      s["context"][0] if s["context"][0] == s["context"][1]
                      else f"{s['context'][0]}-{s['context'][1]}"] for s in stages])
    settings = training.get("settings", {})
    if settings:
        lines += ["", f"AdamW, learning rate {settings.get('lr')} decayed along a cosine to "
                      f"{settings.get('min_lr')}, weight decay {settings.get('weight_decay')}, "
                      f"{settings.get('batch_voxels')} voxels per step, "
                      f"{settings.get('n_query')} query images per voxel, seed "
                      f"{settings.get('seed')}; loss: query MSE."]
    curve = described.get("validation", [])
    lines += ["", "## Validation curve", ""]
    if curve:
        val = training.get("validation", {})
        if val:
            lines += [f"Fixed tasks: {val.get('voxels')} voxels of "
                      f"{', '.join(training.get('validation_subjects', [])) or 'held-out data'}, "
                      f"{val.get('context')} context and {val.get('query')} query images each.",
                      ""]
        every = max(1, -(-len(curve) // _MAX_ROWS))  # the whole curve is in config.json
        shown_rows = [v for i, v in enumerate(curve) if i % every == 0 or i == len(curve) - 1]
        lines += _table(["step", "stage", "query MSE", "mean Pearson r", "mean EV"],
                        [[v["step"], v.get("stage", ""), f"{v['mse']:.4g}",
                          f"{v['pearson_r']:.3f}", f"{v['ev']:.3f}"] for v in shown_rows])
        lines += ["", "![loss curve](loss_curve.png)"]
    else:
        lines.append("No validation tasks were given.")
    lines += ["", "## Use", "", "In a `conform fit` spec:", "", "```toml",
              f'encoder = {{plugin = "braincorl", params = {{checkpoint = "{folder}"}}}}',
              "```", "", "with the features this model was trained on. In Python: "
              "`conform_braincorl.load_checkpoint(FOLDER)`.", ""]
    return "\n".join(lines)


def plot_loss_curve(history: Any, stages: Sequence[Any], path: str | Path) -> Path:
    """Write the training loss (raw and smoothed) and the validation curve as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.4))
    ax, ax_r = fig.subplots(1, 2)
    train = np.asarray(history.train, dtype=float).reshape(-1, 2)
    if len(train):
        steps, loss = train[:, 0], train[:, 1]
        smooth = np.empty_like(loss)
        acc = loss[0]
        for i, v in enumerate(loss):  # exponential moving average
            acc = 0.95 * acc + 0.05 * v if i else v
            smooth[i] = acc
        ax.plot(steps, loss, color="0.8", lw=0.6, label="training (per step)")
        ax.plot(steps, smooth, color="C0", lw=1.5, label="training (smoothed)")
    val = history.validation
    if val:
        ax.plot([v["step"] for v in val], [v["mse"] for v in val], "o-", color="C1", ms=3,
                label="validation")
        ax_r.plot([v["step"] for v in val], [v["pearson_r"] for v in val], "o-", color="C2",
                  ms=3, label="mean Pearson r")
        ax_r.plot([v["step"] for v in val], [v["ev"] for v in val], "s-", color="C3", ms=3,
                  label="mean EV")
        ax_r.legend(fontsize=8)
    bound = 0
    for stage in stages[:-1]:
        bound += stage.steps
        for a in (ax, ax_r):
            a.axvline(bound, color="0.5", ls=":", lw=0.8)
    if len(train) and np.all(train[:, 1] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("query MSE")
    ax.legend(fontsize=8)
    ax.set_title("Loss", fontsize=10)
    ax_r.set_xlabel("step")
    ax_r.set_title("Validation (held-out subjects)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def official_card(described: Mapping[str, Any], folder: str | Path) -> str:
    """Return ``model_card.md`` for weights imported from the official implementation."""
    source = described.get("source", {})
    model = described.get("model", {})
    space = described.get("feature_space") or "unrecorded (checked by dimension only)"
    return "\n".join([
        f"# BraInCoRL model: {Path(folder).name}", "",
        "Weights of the official BraInCoRL implementation (Yu et al. 2025), imported by "
        "`conform braincorl import-official`. Given one voxel's responses to a few images, the "
        "model emits a linear readout `(w, b)`: a new image `x` is predicted as `x · w + b`.", "",
        *_table(["", ""], [
            ["source file", f"`{source.get('official', '?')}`"],
            ["preset", source.get("preset", "?")],
            ["feature space", f"`{space}`"],
            ["embedding dimension", described.get("embed_dim", "?")],
            ["parameters", _n_parameters(model)],
        ]), "",
        "What it was trained on is documented by its authors (NSD subjects; each subject's "
        "shared test images were excluded from meta-training). Features must come from the "
        "backbone above, unit-normalised (conform normalises them).", "",
        "## Use", "", "```toml",
        f'encoder = {{plugin = "braincorl", params = {{checkpoint = "{folder}"}}}}', "```", ""])
