"""Make docs/figures/psn_ground_truth.png: error to the true signal, PSN vs baselines.

Simulated study (conform_synthetic), 80 units x 300 stimuli x 3 repeats, at
several signal-to-noise ratios; for each: the trial average, the ``pca`` baseline
(rank by leave-one-trial-out CV) and PSN (default 'standard', prediction criterion,
Wiener, cross-validated). MSE to the true signal, relative to the trial average.

Usage: ``python docs/figures/make_psn_figure.py`` (about half a minute).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from conform_psn import PSNDenoiser  # noqa: E402
from conform_synthetic import simulate_study  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from conform_core.plugins import default_registry  # noqa: E402

OUT = Path(__file__).with_name("psn_ground_truth.png")
SNRS = (0.15, 0.3, 0.5, 1.0)
SEEDS = (1, 2, 3)


def methods() -> dict[str, object]:
    pca = default_registry().get("denoiser", "pca")
    return {
        "PCA baseline (CV rank)": pca(),
        "PSN standard (default)": PSNDenoiser(),
        "PSN prediction": PSNDenoiser(criterion="prediction"),
        "PSN cross-validated": PSNDenoiser(preset="cv",
                                           options={"cv_threshold_per": "population"}),
        "PSN wiener": PSNDenoiser(preset="wiener"),
    }


def main() -> None:
    results: dict[str, list[list[float]]] = {name: [] for name in methods()}
    for snr in SNRS:
        per: dict[str, list[float]] = {name: [] for name in results}
        for seed in SEEDS:
            sub = simulate_study(n_subjects=1, n_units=80, n_stimuli=300, n_repeats=3,
                                 snr=snr, random_state=seed).subjects[0]
            trials = sub.trials.by_condition()
            truth = sub.truth.signal.select(trials.stimulus_ids).data.astype(float)
            base = np.mean((trials.mean().data - truth) ** 2)
            with threadpool_limits(1):
                for name, den in methods().items():
                    est = den.fit_transform(trials).data
                    per[name].append(float(np.mean((est - truth) ** 2) / base))
        for name in results:
            results[name].append(per[name])
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.axhline(1.0, color="0.4", lw=1, ls="--", label="trial average")
    for name, vals in results.items():
        arr = np.array(vals)
        ax.errorbar(SNRS, arr.mean(1), yerr=arr.std(1), marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xticks(SNRS, [str(s) for s in SNRS])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("simulated SNR (signal sd / noise sd per trial)")
    ax.set_ylabel("MSE to true signal / trial-average MSE")
    ax.set_ylim(0, 1.1)
    ax.set_title("Denoising 80 units x 300 stimuli x 3 repeats (mean ± sd, 3 seeds)",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=OUT.parent)
    os.close(fd)
    fig.savefig(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, OUT)
    for name, vals in results.items():
        print(f"{name:28s}", " ".join(f"{np.mean(v):.3f}" for v in vals))


if __name__ == "__main__":
    main()
