"""GLMsingle stage by stage: setup, type A (ON-OFF), thresholds, type B (HRF library).

Types C and D live in :mod:`._denoise`. Every stage works on blocks of units ("chunks", of
``chunklen`` units); all computations are unit-wise except the threshold, the noise pool
PCs and the PC count, which are global, so results do not depend on the chunking.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.progress import Progress, progress

from ._crossval import TrialPairs, check_xvalscheme, findtailthreshold
from ._design import TrialLayout, build_layout, convolve_runs
from ._glm import (
    ChunkData,
    RunBlock,
    bhat_all_hrfs,
    ols_inverse,
    r2_percent,
    rss_terms,
    run_blocks,
    single_threaded,
)
from ._nuisance import RunNuisance, extra_coefficients, extra_projector
from ._options import Options
from ._quirks import apply_no_repeats, lss_nuisance_sources
from ._timing import EventTables, FineHRFs, fine_impulse_responses

__all__ = [
    "Context",
    "ExtraBetas",
    "assemble",
    "fit_type_a",
    "fit_type_b",
    "group_bhat",
    "make_context",
    "nan_argmax",
]

#: Largest block of units processed at once, whatever ``chunklen`` (results do not depend on it).
MAX_BLOCK = 4096


@dataclass
class Context:
    """Everything the stages share (inputs, design, nuisance, options, stage timings)."""

    runs: list[NDArray[np.float32]]
    layout: TrialLayout
    opts: Options
    folds: list[NDArray[np.int64]]
    extras: list[NDArray[np.float64] | None]
    nz_ab: list[RunNuisance]
    extras_ab: bool
    #: official LSS quirk: per run the nuisance the LSS fit uses (run 0's), or None
    nz_lss: list[RunNuisance] | None
    lss_runs: list[int]  # the runs whose own nuisance differs from nz_lss
    chunks: list[slice]
    force: dict[str, Any]
    meanvol: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    conv_lib: list[NDArray[np.float64]] = field(default_factory=list)
    #: event-table designs: the library and the assumed HRF on the fine grid (else None)
    fine_lib: FineHRFs | None = None
    fine_assumed: FineHRFs | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Progress]:
        """Run a stage of ``total`` steps and add its wall time to ``timings``.

        Shows one bar (or, off a terminal, one log line) when ``verbose``; yields the core
        progress ``tick``.
        """
        with progress(f"GLMsingle {name}", total=max(total, 1), quiet=not self.opts["verbose"],
                      transient=False, log_steps=False) as tick:
            try:
                yield tick
            finally:
                self.timings[name] = self.timings.get(name, 0.0) + tick.elapsed

    @property
    def n_units(self) -> int:
        return int(self.runs[0].shape[0])

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def official(self) -> bool:
        return self.opts["quirks"] == "official"

    @functools.cached_property
    def trial_pairs(self) -> TrialPairs:
        """The cross-validation's trial pairs: built once, they depend on the design only."""
        return TrialPairs.build(self.folds, self.layout.trial_run, self.layout.stimorder,
                                self.opts.sessionindicator)


def _empty(x: Any) -> bool:
    return x is None or x is False or np.size(x) == 0 or not np.any(np.asarray(x))


def make_context(runs: list[NDArray[np.float32]],
                 design: list[NDArray[np.float64]] | EventTables, tr: float,
                 opts: Options, force: dict[str, Any] | None = None,
                 stimdur: float | None = None) -> Context:
    """Build the trial layout, nuisance bases and chunks; validate what depends on the design.

    ``design`` is a list of validated onset matrices, or event tables (then ``stimdur``, the
    duration the HRFs are scaled for, is required; see :mod:`._timing`).
    """
    layout = build_layout(design, tr, [int(y.shape[1]) for y in runs])
    fine_lib = fine_assumed = None
    if layout.timed:
        if stimdur is None:
            raise TypeError("make_context needs stimdur with event tables")
        lib01, assumed01 = fine_impulse_responses(opts.raw)
        fine_lib = FineHRFs.build(lib01, stimdur, tr)
        fine_assumed = FineHRFs.build(assumed01, stimdur, tr)
    n_runs = len(runs)
    folds = check_xvalscheme(opts["xvalscheme"], n_runs)
    # no condition in two runs: official switches GLMdenoise/ridge off (warning), fixed refuses
    apply_no_repeats(layout, opts, skip_xval=bool((force or {}).get("skip_xval")))
    extras: list[NDArray[np.float64] | None] = [None] * n_runs
    er = opts["extra_regressors"]
    if not (er is False or er is None):
        lst = er if isinstance(er, (list, tuple)) else [er]
        from conform_core.exceptions import ShapeError

        if len(lst) != n_runs:
            raise ShapeError(
                f"extra_regressors has {len(lst)} entries but there are {n_runs} runs. "
                "Pass one time x k array per run (None or an empty array for none)."
            )
        for r, e in enumerate(lst):
            if _empty(e):
                continue
            arr = np.asarray(e, np.float64)
            arr = arr[:, None] if arr.ndim == 1 else arr
            if arr.ndim != 2 or arr.shape[0] != layout.n_times[r] or not np.all(np.isfinite(arr)):
                raise ShapeError(
                    f"extra_regressors[{r}] must be a finite {layout.n_times[r]} x k "
                    f"array (run {r} has {layout.n_times[r]} time points); got shape "
                    f"{np.shape(e)}."
                )
            extras[r] = arr
    # official: types A and B drop every run's extra regressors when run 0 has none (pitfall 9a)
    drop_ab = opts["quirks"] == "official" and extras[0] is None
    extras_ab = [None if drop_ab else e for e in extras]
    nz_ab = [
        RunNuisance.build(t, d, e) for t, d, e in zip(layout.n_times, opts.maxpolydeg, extras_ab)
    ]
    nz_lss: list[RunNuisance] | None = None
    lss_runs: list[int] = []
    if opts["wantlss"] and opts["quirks"] == "official":  # run 0's nuisance in every run
        sources, lss_runs = lss_nuisance_sources(layout.n_times, opts.maxpolydeg, extras_ab)
        if lss_runs:
            nz_lss = [RunNuisance.build(t, d, e) for t, (d, e) in zip(layout.n_times, sources)]
    # chunklen bounds memory; blocks of at most MAX_BLOCK units also keep the working set in cache
    chunk = min(int(opts["chunklen"]), MAX_BLOCK)
    n_units = runs[0].shape[0]
    chunks = [slice(s, min(s + chunk, n_units)) for s in range(0, n_units, chunk)]
    return Context(
        runs=runs,
        layout=layout,
        opts=opts,
        folds=folds,
        extras=extras,
        nz_ab=nz_ab,
        extras_ab=any(e is not None for e in extras_ab),
        nz_lss=nz_lss,
        lss_runs=lss_runs,
        chunks=chunks,
        force=dict(force or {}),
        fine_lib=fine_lib,
        fine_assumed=fine_assumed,
    )


class ExtraBetas:
    """Coefficients of the extra regressors in one type's final model, per run (units x k).

    Runs without extra regressors get ``(n_units, 0)``; runs whose model left them out (the
    official quirks) stay NaN. The trial part of the fit is removed from the data and the
    rest regressed on polynomials and extra regressors (the model's PCs are orthogonal to
    both, so they do not change these coefficients; see :func:`._nuisance.extra_projector`).
    """

    def __init__(self, ctx: Context, in_model: bool) -> None:
        self.ctx = ctx
        self.projs: list[NDArray[np.float64] | None] = []
        self.values: list[NDArray[np.float64]] = []
        for r, e in enumerate(ctx.extras):
            k = 0 if e is None else e.shape[1]
            self.values.append(np.full((ctx.n_units, k), 0.0 if in_model else np.nan))
            if e is None or not in_model:
                self.projs.append(None)
                continue
            self.projs.append(extra_projector(ctx.nz_ab[r].poly, e))

    def blank(self, runs: list[int]) -> None:
        """Set the coefficients of ``runs`` to NaN (their regressors were not in the model)."""
        for r in runs:
            self.values[r][:] = np.nan

    @property
    def active(self) -> bool:
        return any(p is not None for p in self.projs)

    def add(self, rows: NDArray[np.int64] | slice, cd: ChunkData,
            xhat: list[NDArray[np.float64]], beta: list[NDArray[np.float64]]) -> None:
        """Fill ``rows`` from a chunk's projected data, per run trial regressors and betas."""
        for r, proj in enumerate(self.projs):
            if proj is not None:
                self.values[r][rows] = extra_coefficients(cd.d[r], xhat[r], beta[r], proj)

    def result(self, psc: bool, run_means: bool = False) -> list[NDArray[np.float32]]:
        """Per run float32 arrays, in percent signal change per regressor unit if ``psc``."""
        out = []
        for r, v in enumerate(self.values):
            if psc:
                mean = (np.asarray(self.ctx.runs[r], np.float64).mean(axis=1) if run_means
                        else self.ctx.meanvol)
                v = _psc(v, mean)
            out.append(v.astype(np.float32))
        return out


def _r2_without_extras(ctx: Context) -> bool:
    """Whether types A and B compute R² on data with the extra regressors removed.

    The official R² keeps the extra regressors' variance in the data and leaves their fit out
    of the prediction, so strong confounds add noise to the HRF choice and the ON-OFF R²
    (noise pool, thresholds). ``quirks="fixed"`` removes them from both.
    """
    return ctx.extras_ab and not ctx.official


def _ssq_without_extras(cd: ChunkData) -> NDArray[np.float64]:
    """Per unit and run, the sum of squares of the data after polynomials and extras."""
    return cd.ssq - np.stack([np.einsum("ij,ij->i", e, e) for e in cd.de], axis=1)


def nan_argmax(values: NDArray[np.floating], axis: int = -1) -> NDArray[np.int64]:
    """Argmax ignoring NaN (first maximum on ties; 0 where everything is NaN)."""
    return np.argmax(np.where(np.isnan(values), -np.inf, values), axis=axis)


def assemble(per_run: list[NDArray[np.float64]], layout: TrialLayout) -> NDArray[np.float64]:
    """Put per-run betas (n_units, n_r) into chronological trial order (n_units, n_trials)."""
    out = np.empty((per_run[0].shape[0], layout.n_trials))
    for b, cols in zip(per_run, layout.validcolumns):
        out[:, cols] = b
    return out


def group_bhat(cd: ChunkData, conv: list[NDArray[np.float64]], h: int) -> list[NDArray[np.float64]]:
    """Return ``d X`` per run (n_units, n_r) for HRF ``h`` (``conv``: per run (H, T_r, n_r))."""
    return [cd.d[r] @ c[h] for r, c in enumerate(conv)]


def fit_type_a(ctx: Context) -> dict[str, Any]:
    """ON-OFF model: all trials in one regressor, assumed HRF (glmsingle.md 5.1)."""
    lay = ctx.layout
    hrf = ctx.opts.hrftoassume
    xs = []
    timed = convolve_runs(lay, hrf[:, None], ctx.fine_assumed) if lay.timed else None
    for r in range(ctx.n_runs):
        if timed is not None:
            x = timed[r][0].sum(axis=1)
        else:
            onoff = np.zeros(lay.n_times[r])
            onoff[lay.onsets[r]] = 1.0
            x = np.convolve(onoff, hrf)[: lay.n_times[r]]
        nz = ctx.nz_ab[r]
        xhat = x - nz.poly @ (nz.poly.T @ x)
        xs.append((xhat, nz.extra.T @ xhat))
    n = ctx.n_units
    meanvol = np.zeros(n)
    total_t = sum(lay.n_times)
    beta = np.zeros(n)
    r2 = np.zeros(n)
    extra = ExtraBetas(ctx, ctx.extras_ab)
    with ctx.stage("type A (ON-OFF)", len(ctx.chunks)) as tick:
        for sl in ctx.chunks:
            meanvol[sl] = sum(np.asarray(y[sl], np.float64).sum(axis=1) for y in ctx.runs) / total_t
            cd = ChunkData.prepare(ctx.runs, sl, ctx.nz_ab)
            bh = [cd.d[r] @ xs[r][0] for r in range(ctx.n_runs)]
            g = sum(float(xh @ xh - ea @ ea) for xh, ea in xs)
            b = sum(bh[r] - cd.de[r] @ xs[r][1] for r in range(ctx.n_runs))
            bt = b / g if g > 0 else np.zeros_like(b)
            if _r2_without_extras(ctx):
                ssq = _ssq_without_extras(cd)
                rss = sum(
                    ssq[:, r] - 2 * bt * (bh[r] - cd.de[r] @ xs[r][1])
                    + bt**2 * float(xs[r][0] @ xs[r][0] - xs[r][1] @ xs[r][1])
                    for r in range(ctx.n_runs)
                )
            else:
                ssq = cd.ssq
                rss = sum(
                    cd.ssq[:, r] - 2 * bt * bh[r] + bt**2 * float(xs[r][0] @ xs[r][0])
                    for r in range(ctx.n_runs)
                )
            beta[sl] = bt
            r2[sl] = r2_percent(rss, ssq.sum(axis=1))
            if extra.active:
                extra.add(sl, cd, [xh[:, None] for xh, _ in xs], [bt[:, None]] * ctx.n_runs)
            tick()
    ctx.meanvol = meanvol.astype(np.float32)
    if ctx.opts["wantpercentbold"]:
        beta = _psc(beta, ctx.meanvol)
    out: dict[str, Any] = {
        "onoffR2": r2.astype(np.float32),
        "meanvol": ctx.meanvol,
        "betasmd": beta.astype(np.float32)[:, None],
    }
    if any(e is not None for e in ctx.extras):
        out["extrabetas"] = extra.result(bool(ctx.opts["wantpercentbold"]))
    return out


def _psc(betas: NDArray[np.floating], meanvol: NDArray[np.floating]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):  # all-zero units: NaN (official)
        scale = 100.0 / np.abs(np.asarray(meanvol, np.float64))
        return betas * (scale if betas.ndim == 1 else scale[:, None])


def thresholds(ctx: Context, onoff_r2: NDArray[np.float32]) -> tuple[float, float, float]:
    """Return (automatic threshold, brainR2, pcR2cutoff) (glmsingle.md 5.2)."""
    thresh = findtailthreshold(onoff_r2, random_state=ctx.opts["random_state"])
    brain = ctx.opts["brainR2"]
    pcc = ctx.opts["pcR2cutoff"]
    brain = thresh if (brain is None or np.size(brain) == 0 or not brain) else float(brain)
    pcc = thresh if (pcc is None or np.size(pcc) == 0 or not pcc) else float(pcc)
    return thresh, brain, pcc


def _lss(
    blocks: list[RunBlock], bhat: list[NDArray[np.float64]], cd: ChunkData, extras: bool
) -> list[NDArray[np.float64]]:
    """Least-squares-separate betas: per trial, [this trial, all other trials of its run]."""
    out = []
    for r, blk in enumerate(blocks):
        g = blk.gram(extras, 0)
        b = blk.cross(bhat[r], cd.de[r], cd.dpc[r], extras, 0)
        g1 = g.sum(axis=1)
        a = np.diag(g)
        c = g1 - a
        e = g1.sum() - 2 * g1 + a
        rhs2 = b.sum(axis=1, keepdims=True) - b
        det = a * e - c**2
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = (e * b - c * rhs2) / det
        out.append(np.where(det > 1e-12 * np.maximum(a * e, 1e-300), beta, 0.0))
    return out


def fit_type_b(ctx: Context, want_betas: bool) -> dict[str, Any]:
    """Single-trial fits with every library HRF; each unit keeps its best (glmsingle.md 5.3)."""
    lay, lib = ctx.layout, ctx.opts.hrflibrary
    n, n_h, n_r = ctx.n_units, lib.shape[1], ctx.n_runs
    ctx.conv_lib = convolve_runs(lay, lib, ctx.fine_lib)
    conv_all = [
        np.ascontiguousarray(c.transpose(1, 0, 2).reshape(c.shape[1], -1)) for c in ctx.conv_lib
    ]
    blocks = [run_blocks([c[h] for c in ctx.conv_lib], ctx.nz_ab) for h in range(n_h)]
    with single_threaded():
        invs = [[ols_inverse(b.gram(ctx.extras_ab, 0), b.good) for b in bl] for bl in blocks]
    fit_r2 = np.zeros((n, n_h), np.float32)
    fit_r2run = np.zeros((n, n_r, n_h), np.float32)
    betas = np.zeros((n, lay.n_trials), np.float32) if want_betas else None
    forced = ctx.force.get("HRFindex")
    extra = ExtraBetas(ctx, ctx.extras_ab) if want_betas else None
    lss_blocks: dict[int, list[RunBlock]] = {}  # official LSS quirk: run 0's nuisance
    with ctx.stage("type B (HRF library)", 2 * len(ctx.chunks)) as tick:
        for sl in ctx.chunks:
            cd = ChunkData.prepare(ctx.runs, sl, ctx.nz_ab)
            rss = np.zeros((cd.n_units, n_r, n_h))
            clean = _r2_without_extras(ctx)
            ssq = _ssq_without_extras(cd) if clean else cd.ssq
            for r in range(n_r):
                bh = bhat_all_hrfs(cd, r, conv_all[r], n_h)
                for h in range(n_h):
                    blk = blocks[h][r]
                    if ctx.extras_ab:
                        b = blk.cross(bh[:, h], cd.de[r], cd.dpc[r], True, 0)
                        beta = b @ invs[h][r]
                        if clean:  # residual of the extras-cleaned data: G_e beta = b
                            rss[:, r, h] = ssq[:, r] - np.einsum("ij,ij->i", beta, b)
                        else:
                            rss[:, r, h] = cd.ssq[:, r] + rss_terms(beta, bh[:, h], blk.ghat)
                    else:  # G beta = b, so beta'G beta - 2 beta.b = -beta.b
                        beta = bh[:, h] @ invs[h][r]
                        rss[:, r, h] = cd.ssq[:, r] - np.einsum("ij,ij->i", beta, bh[:, h])
            fit_r2[sl] = r2_percent(rss.sum(axis=1), ssq.sum(axis=1)[:, None])
            fit_r2run[sl] = r2_percent(rss, ssq[:, :, None])
            tick()
            if want_betas:
                hidx = nan_argmax(fit_r2[sl]) if forced is None else np.asarray(forced)[sl]
                for h in np.unique(hidx):
                    idx = np.flatnonzero(hidx == h)
                    sub = cd.take(idx)
                    bh1 = group_bhat(sub, ctx.conv_lib, h)
                    if ctx.opts["wantlss"] and ctx.nz_lss is not None:
                        if h not in lss_blocks:
                            lss_blocks[h] = run_blocks([c[h] for c in ctx.conv_lib], ctx.nz_lss)
                        sub_l = ChunkData.prepare(ctx.runs, sl.start + idx, ctx.nz_lss)
                        per_run = _lss(lss_blocks[h], group_bhat(sub_l, ctx.conv_lib, h), sub_l,
                                       True)
                    elif ctx.opts["wantlss"]:
                        per_run = _lss(blocks[h], bh1, sub, ctx.extras_ab)
                    else:
                        per_run = [
                            blocks[h][r].cross(bh1[r], sub.de[r], sub.dpc[r], ctx.extras_ab, 0)
                            @ invs[h][r]
                            for r in range(n_r)
                        ]
                    betas[sl.start + idx] = assemble(per_run, lay)  # type: ignore[index]
                    if extra is not None and extra.active:
                        if ctx.opts["wantlss"]:  # LSS: the coefficients of the all-trials model
                            per_run = [blocks[h][r].cross(bh1[r], sub.de[r], sub.dpc[r],
                                                          ctx.extras_ab, 0) @ invs[h][r]
                                       for r in range(n_r)]
                        extra.add(sl.start + idx, sub, [b.xhat for b in blocks[h]], per_run)
            tick()
    hidx_all = nan_argmax(fit_r2) if forced is None else np.asarray(forced, np.int64)
    r2 = fit_r2[np.arange(n), hidx_all]
    r2run = fit_r2run[np.arange(n), :, hidx_all]
    out: dict[str, Any] = {
        "FitHRFR2": fit_r2,
        "FitHRFR2run": fit_r2run,
        "HRFindex": hidx_all.astype(np.int64),
        "HRFindexrun": nan_argmax(fit_r2run).astype(np.int64),
        "R2": r2,
        "R2run": r2run,
        "meanvol": ctx.meanvol,
    }
    if want_betas:
        if extra is not None:  # official LSS quirk: these runs' own nuisance left the fit
            extra.blank(ctx.lss_runs)
        if ctx.opts["wantlss"] and ctx.official and ctx.opts["wantpercentbold"]:
            betas = _lss_run_psc(ctx, betas)  # type: ignore[arg-type]
        elif ctx.opts["wantpercentbold"]:
            betas = _psc(betas, ctx.meanvol).astype(np.float32)
        out["betasmd"] = np.asarray(betas, np.float32)
        if extra is not None and any(e is not None for e in ctx.extras):
            out["extrabetas"] = extra.result(
                bool(ctx.opts["wantpercentbold"]),
                run_means=bool(ctx.opts["wantlss"] and ctx.official))
    return out


def _lss_run_psc(ctx: Context, betas: NDArray[np.float32]) -> NDArray[np.float32]:
    """Official LSS quirk: each run's betas are divided by that run's own mean."""
    out = np.asarray(betas, np.float64).copy()
    for r, cols in enumerate(ctx.layout.validcolumns):
        runmean = np.asarray(ctx.runs[r], np.float64).mean(axis=1)
        out[:, cols] = _psc(out[:, cols], runmean)
    return out.astype(np.float32)
