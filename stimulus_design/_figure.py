"""Coverage figures: a design's selection (coverage.png) and a running study's images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError
from conform_core.io import atomic_write

from ._study import StudyState

__all__ = ["plot_coverage", "study_coverage_figure"]


def _pca2(sample: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and top two principal axes of ``sample`` (each axis's largest entry positive)."""
    data = sample.astype(np.float64)
    mean = data.mean(axis=0)
    _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
    axes = vt[:2].copy()
    axes *= np.sign(axes[np.arange(axes.shape[0]), np.abs(axes).argmax(axis=1)])[:, None]
    return mean, axes


def plot_coverage(path: str | Path, pool: NDArray[np.float32], core: NDArray[np.int64],
                  overlap: NDArray[np.int64], nearest: NDArray[np.float32],
                  random_nearest: NDArray[np.float32], *, seed: int,
                  max_points: int = 20000) -> Path:
    """Write the coverage figure to ``path`` (PNG, atomically, deterministic bytes).

    Parameters
    ----------
    path : path-like
        Destination PNG.
    pool : ndarray of shape (n_pool, n_features)
        Unit-norm pool embeddings.
    core, overlap : ndarray of int
        Pool rows of the core and of the non-core selection.
    nearest, random_nearest : ndarray of shape (n_pool,)
        Distance of each pool image to the selection and to a random selection of equal size.
    seed : int
        Seeds the subsample of pool points drawn.
    max_points : int, default=20000
        Most pool points drawn (and used to fit the 2-D projection).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rng = np.random.default_rng([seed, 7])
    n = pool.shape[0]
    shown = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    selected = np.concatenate([core, overlap])
    mean, axes = _pca2(pool[shown])
    xy_pool = (pool[shown].astype(np.float64) - mean) @ axes.T
    xy_sel = (pool[selected].astype(np.float64) - mean) @ axes.T

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100)
    ax1.scatter(xy_pool[:, 0], xy_pool[:, 1], s=2, c="0.8", label=f"pool ({n})", rasterized=True)
    n_core = core.size
    if overlap.size:
        ax1.scatter(xy_sel[n_core:, 0], xy_sel[n_core:, 1], s=4, c="tab:blue",
                    label=f"non-core ({overlap.size})")
    if n_core:
        ax1.scatter(xy_sel[:n_core, 0], xy_sel[:n_core, 1], s=8, c="tab:red",
                    label=f"core ({n_core})")
    ax1.set(title="Pool and selection (first two principal components)", xlabel="PC 1",
            ylabel="PC 2")
    ax1.legend(loc="best", fontsize=8, markerscale=3)

    top = float(max(nearest.max(), random_nearest.max()))
    bins = np.linspace(0, top * 1.02 if top > 0 else 1, 60)
    for values, label, colour in ((random_nearest, "random", "tab:orange"),
                                  (nearest, "k-center", "tab:blue")):
        ax2.hist(values, bins=bins, histtype="step", color=colour, lw=1.5,
                 label=f"{label}: radius {values.max():.3f}, p95 {np.percentile(values, 95):.3f}")
        ax2.axvline(float(values.max()), color=colour, ls="--", lw=1)
    ax2.set(title="Pool image to nearest selected image",
            xlabel="distance between unit embeddings", ylabel="pool images")
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def study_coverage_figure(state: StudyState, embeddings: NDArray[np.floating], *,
                          fmt: str = "svg", max_points: int = 20000) -> bytes:
    """Draw a running study's coverage: where its images lie, and how far the pool is from them.

    Left: the pool in its first two principal components, with the images allocated to
    active participants and the images collected so far (marker size grows with the number
    of participants who saw each). Right: each pool image's distance to its nearest
    allocated and nearest collected image, with the covering radius of each (dashed).

    Parameters
    ----------
    state : StudyState
        The study.
    embeddings : ndarray of shape (n_pool, n_features)
        The pool's features, as given to :func:`create_study`.
    fmt : {"svg", "png"}, default="svg"
        Image format of the bytes returned.
    max_points : int, default=20000
        Most pool points drawn (a deterministic subsample beyond it).

    Returns
    -------
    bytes
        The figure, byte-identical for the same study and embeddings.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ._coverage import Which, participant_counts
    from ._metrics import nearest_selected
    from ._study import check_embeddings

    if fmt not in ("svg", "png"):
        raise ParameterError(param="fmt", value=fmt, owner="study_coverage_figure",
                             allowed="one of 'svg', 'png'")
    pool = check_embeddings(state, embeddings)
    n = pool.shape[0]
    rng = np.random.default_rng([state.params.seed, 11])
    shown = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    mean, axes = _pca2(pool[shown])
    xy = (pool.astype(np.float64) - mean) @ axes.T

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100)
    ax1.scatter(xy[shown, 0], xy[shown, 1], s=2, c="0.82", label=f"pool ({n})", rasterized=True)
    top = 0.0
    layers = []
    styles: tuple[tuple[Which, str, str], ...] = (("allocated", "tab:blue", "o"),
                                                  ("collected", "tab:orange", "s"))
    for which, colour, marker in styles:
        people = participant_counts(state, which)
        rows = np.flatnonzero(people > 0)
        if rows.size:
            ax1.scatter(xy[rows, 0], xy[rows, 1], s=6 + 6 * np.sqrt(people[rows]), c=colour,
                        marker=marker, alpha=0.7, linewidths=0,
                        label=f"{which} ({rows.size} images)")
            near = nearest_selected(pool, rows.astype(np.int64))
            top = max(top, float(near.max()))
            layers.append((which, colour, near))
    ax1.set(title="Pool, allocated and collected images (first two PCs)", xlabel="PC 1",
            ylabel="PC 2")
    ax1.legend(loc="best", fontsize=8, markerscale=2)
    if layers:
        bins = np.linspace(0, top * 1.02 if top > 0 else 1, 50)
        for which, colour, near in layers:
            ax2.hist(near, bins=bins, histtype="step", color=colour, lw=1.5,
                     label=f"{which}: radius {near.max():.3f}")
            ax2.axvline(float(near.max()), color=colour, ls="--", lw=1)
        ax2.legend(loc="upper right", fontsize=8)
    else:
        ax2.text(0.5, 0.5, "nothing allocated yet", ha="center", va="center",
                 transform=ax2.transAxes, color="0.4")
    ax2.set(title="Pool image to its nearest allocated / collected image",
            xlabel="distance between unit embeddings", ylabel="pool images")
    fig.tight_layout()
    buffer = io.BytesIO()
    metadata = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
    # fixed ids (hash salt) for byte-identical SVGs; text kept as text, searchable in a page
    with matplotlib.rc_context({"svg.hashsalt": "conform-study", "svg.fonttype": "none"}):
        fig.savefig(buffer, format=fmt, metadata=metadata)
    plt.close(fig)
    return buffer.getvalue()
