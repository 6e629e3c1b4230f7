"""Few-shot fits: which N training stimuli of a subject every encoder is also fitted on.

With ``[evaluation] context_sizes = [N1, N2, ...]`` each encoder of ``conform fit`` is
fitted, besides on all of a subject's training stimuli, on ``context_draws`` draws of N of
them per size N, and scored on the same held-out test stimuli. The draws depend only on
the analysis seed, the subject and N, so every denoiser and encoder sees the same ones.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ContextDraw",
    "SubjectContext",
    "context_seed",
    "draw_contexts",
    "make_subject_context",
    "context_draws_csv",
    "mean_over_draws",
    "is_few_shot",
    "CONTEXT_COLUMN",
    "CONTEXT_DRAW_COLUMNS",
    "FEW_SHOT_METRICS",
    "FewShotCurve",
    "few_shot_metric",
    "few_shot_curves",
    "mean_and_sem",
    "ceiling_in_metric",
    "skipped_sizes_note",
]

CONTEXT_COLUMN = "n_context"
"""Column of results.csv (after ``encoder``) when ``context_sizes`` is configured."""

CONTEXT_DRAW_COLUMNS = ("subject", "n_context", "draw", "seed", "stimulus_id")
"""Columns of context_draws.csv: one row per stimulus of each draw."""

_SALT = 0xC0E7  # keeps these draws apart from the other seeded choices of an analysis


@dataclass(frozen=True)
class ContextDraw:
    """One draw of ``n_context`` training stimuli.

    Attributes
    ----------
    n_context : int
        Number of training stimuli drawn (N).
    draw : int
        Index of the draw, from 0.
    seed : int
        Seed of the draws of this subject and N (see :func:`context_seed`).
    indices : ndarray of shape (n_context,), dtype int
        Positions of the drawn stimuli among the subject's training stimuli (rows of its
        training features and responses), ascending.
    """

    n_context: int
    draw: int
    seed: int
    indices: NDArray[np.intp]


@dataclass(frozen=True)
class SubjectContext:
    """The few-shot draws of one subject, and the sizes it has too few training stimuli for.

    Attributes
    ----------
    subject : str
        Subject name.
    n_train : int
        Number of training stimuli: the ``n_context`` of the fit on all of them.
    stimulus_ids : ndarray of shape (n_train,), dtype str
        The training stimuli, in the order of the rows of the training features.
    draws : tuple of ContextDraw
        Every draw, by size then draw index.
    skipped : tuple of int
        Sizes N not fitted for this subject because N is not smaller than ``n_train``
        (the fit on all training stimuli stands for them).
    """

    subject: str
    n_train: int
    stimulus_ids: NDArray[np.str_]
    draws: tuple[ContextDraw, ...]
    skipped: tuple[int, ...] = ()

    @property
    def sizes(self) -> tuple[int, ...]:
        """The sizes N fitted for this subject, ascending."""
        return tuple(sorted({d.n_context for d in self.draws}))

    def draws_of(self, n_context: int) -> list[ContextDraw]:
        """Return the draws of size ``n_context``, by draw index."""
        return [d for d in self.draws if d.n_context == n_context]

    def rows(self) -> list[dict[str, Any]]:
        """Rows of context_draws.csv (:data:`CONTEXT_DRAW_COLUMNS`): one per drawn stimulus."""
        return [
            {"subject": self.subject, "n_context": d.n_context, "draw": d.draw, "seed": d.seed,
             "stimulus_id": str(self.stimulus_ids[i])}
            for d in self.draws
            for i in d.indices
        ]


def context_seed(analysis_seed: int, subject: str, n_context: int) -> int:
    """Return the seed of the draws of ``n_context`` stimuli for ``subject``.

    ``numpy.random.SeedSequence([analysis_seed, 0xC0E7, crc32(subject), n_context])``'s
    first 32-bit word: it depends on nothing else (not the denoiser, the encoder, the
    other sizes or the order of the tasks), so it is the same on every run and worker.

    Examples
    --------
    >>> context_seed(0, "sub-01", 10) == context_seed(0, "sub-01", 10)
    True
    """
    entropy = [int(analysis_seed), _SALT, zlib.crc32(subject.encode("utf-8")), int(n_context)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def draw_contexts(n_train: int, n_context: int, n_draws: int, seed: int) -> list[NDArray[np.intp]]:
    """Return ``n_draws`` draws of ``n_context`` of ``n_train`` positions (each sorted).

    The draws are disjoint while ``n_context * n_draws <= n_train``: consecutive blocks of
    one permutation ``default_rng(seed).permutation(n_train)``. Beyond that they cannot
    all be, and each draw is the first ``n_context`` of its own permutation of the same
    generator (independent draws without replacement, which may overlap).

    Parameters
    ----------
    n_train : int
        Number of training stimuli to draw from.
    n_context : int
        Stimuli per draw, at most ``n_train``.
    n_draws : int
        Number of draws.
    seed : int
        Seed of the generator (see :func:`context_seed`).

    Returns
    -------
    list of ndarray of shape (n_context,)
        Positions among the training stimuli, ascending within each draw.

    Examples
    --------
    >>> [d.tolist() for d in draw_contexts(6, 2, 3, seed=0)]
    [[2, 3], [4, 5], [0, 1]]
    """
    assert 1 <= n_context <= n_train, (n_context, n_train)
    rng = np.random.default_rng(seed)
    if n_context * n_draws <= n_train:
        order = rng.permutation(n_train)
        blocks = [order[i * n_context:(i + 1) * n_context] for i in range(n_draws)]
    else:
        blocks = [rng.permutation(n_train)[:n_context] for _ in range(n_draws)]
    return [np.sort(b).astype(np.intp) for b in blocks]


def make_subject_context(
    subject: str,
    stimulus_ids: Sequence[str] | NDArray[np.str_],
    sizes: Sequence[int],
    n_draws: int,
    analysis_seed: int,
) -> SubjectContext:
    """Draw every few-shot context of one subject.

    Parameters
    ----------
    subject : str
        Subject name.
    stimulus_ids : sequence of str
        The subject's training stimuli, in the order of the rows of its training features.
    sizes : sequence of int
        The ``context_sizes`` of the analysis; those not smaller than the number of training
        stimuli are skipped (recorded in :attr:`SubjectContext.skipped`).
    n_draws : int
        Draws per size (``context_draws``).
    analysis_seed : int
        The analysis seed.

    Returns
    -------
    SubjectContext
    """
    ids = np.asarray(stimulus_ids).astype(str)
    n_train = int(ids.size)
    draws: list[ContextDraw] = []
    skipped: list[int] = []
    for n in sorted(sizes):
        if n >= n_train:
            skipped.append(int(n))
            continue
        seed = context_seed(analysis_seed, subject, n)
        for i, indices in enumerate(draw_contexts(n_train, n, n_draws, seed)):
            draws.append(ContextDraw(int(n), i, seed, indices))
    return SubjectContext(subject, n_train, ids, tuple(draws), tuple(skipped))


def context_draws_csv(contexts: Iterable[SubjectContext]) -> str:
    """Render every subject's draws as CSV (columns :data:`CONTEXT_DRAW_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CONTEXT_DRAW_COLUMNS)
    for context in contexts:
        writer.writerows([r[c] for c in CONTEXT_DRAW_COLUMNS] for r in context.rows())
    return buffer.getvalue()


def mean_over_draws(
    draws: Sequence[Mapping[str, NDArray[np.floating]]],
) -> dict[str, NDArray[np.float64]]:
    """Per unit and metric, the mean over draws of the finite scores (NaN where none is)."""
    out: dict[str, NDArray[np.float64]] = {}
    for metric in draws[0]:
        stacked = np.stack([np.asarray(d[metric], dtype=np.float64) for d in draws])
        finite = np.isfinite(stacked)
        count = finite.sum(axis=0)
        total = np.where(finite, stacked, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[metric] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def is_few_shot(record: Mapping[str, Any], contexts: Mapping[str, SubjectContext]) -> bool:
    """Whether a row of results.csv (or a per-unit score) is a fit on N < all training stimuli.

    Rows without ``n_context`` (no ``context_sizes``; or not an encoder's score) and fits on
    all training stimuli (``n_context`` equal to the subject's ``n_train``) are not.
    """
    n = record.get(CONTEXT_COLUMN, "")
    if n in ("", None):
        return False
    context = contexts.get(str(record["subject"]))
    return context is None or int(n) != context.n_train


# ----------------------------------------------------------------------------- summaries
FEW_SHOT_METRICS = ("pearson_r", "nc_r2", "r2")
"""Metric of the few-shot table and curve: the first of these that was computed."""


@dataclass(frozen=True)
class FewShotCurve:
    """One denoiser → encoder's few-shot scores: per size, each subject's median over units.

    Attributes
    ----------
    denoiser, encoder : str
        Labels of the cell.
    by_size : dict of int to list of float
        N -> the value (ROI "all", median over units of the per-unit mean over draws) of
        each subject fitted on N training stimuli.
    full : list of float
        The value of each subject's fit on all its training stimuli.
    n_train : list of int
        The number of training stimuli of each subject in ``full``.
    """

    denoiser: str
    encoder: str
    by_size: dict[int, list[float]]
    full: list[float]
    n_train: list[int]


def few_shot_metric(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """Return the metric of the few-shot summaries (see :data:`FEW_SHOT_METRICS`), or None."""
    present = {
        r["metric"] for r in rows if r.get(CONTEXT_COLUMN, "") not in ("", None)
    }
    return next((m for m in FEW_SHOT_METRICS if m in present), None)


def few_shot_curves(
    rows: Iterable[Mapping[str, Any]], contexts: Mapping[str, SubjectContext], metric: str
) -> list[FewShotCurve]:
    """Gather ``metric``'s few-shot rows of results.csv into one curve per denoiser → encoder.

    Only ROI "all", status ``ok`` and encoder rows (not aligner ones) count.
    """
    by_size: dict[tuple[str, str], dict[int, list[float]]] = {}
    full: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for r in rows:
        n = r.get(CONTEXT_COLUMN, "")
        if (n in ("", None) or r["metric"] != metric or r["roi"] != "all"
                or r["status"] != "ok" or r["encoder"] == "none"):
            continue
        key = (str(r["denoiser"]), str(r["encoder"]))
        by_size.setdefault(key, {})
        if is_few_shot(r, contexts):
            by_size[key].setdefault(int(n), []).append(float(r["value"]))
        else:
            full.setdefault(key, []).append((float(r["value"]), int(n)))
    return [
        FewShotCurve(den, enc, dict(sorted(by_size[den, enc].items())),
                     [v for v, _ in full.get((den, enc), [])],
                     [n for _, n in full.get((den, enc), [])])
        for den, enc in sorted(by_size)
    ]


def mean_and_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean over subjects and its standard error (NaN with fewer than 2 finite values)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), sem


def ceiling_in_metric(noise_ceiling: NDArray[np.floating], metric: str) -> float:
    """One subject's noise ceiling in the units of ``metric``: the median over units.

    The noise ceiling (percent of the test averages' variance) bounds the R² of any
    prediction, so ``r2``'s ceiling is ``nc / 100``, ``pearson_r``'s ``sqrt(nc / 100)`` and
    ``nc_r2``'s 1.
    """
    nc = np.asarray(noise_ceiling, dtype=np.float64)
    nc = nc[np.isfinite(nc)]
    if metric == "nc_r2":
        return 1.0
    if nc.size == 0:
        return float("nan")
    share = np.clip(nc, 0.0, None) / 100.0
    return float(np.median(np.sqrt(share) if metric == "pearson_r" else share))


def skipped_sizes_note(contexts: Mapping[str, SubjectContext]) -> str | None:
    """One sentence naming the context sizes skipped and for which subjects, or None."""
    skipped: dict[int, list[str]] = {}
    for name in sorted(contexts):
        for n in contexts[name].skipped:
            skipped.setdefault(n, []).append(name)
    if not skipped:
        return None
    parts = []
    for n, names in sorted(skipped.items()):
        shown = ", ".join(f"{s} ({contexts[s].n_train})" for s in names[:8])
        more = f" and {len(names) - 8} more" if len(names) > 8 else ""
        parts.append(f"N={n} for {shown}{more}")
    return (
        "Few-shot: context sizes not smaller than a subject's number of training stimuli "
        "(in brackets) were skipped for that subject: " + "; ".join(parts) + ". Their fit on "
        "all training stimuli is the curve's last point."
    )
