"""GLMdenoise and ridge: noise pool PCs, PC-count cross-validation, types C and D.

Every fit is done per HRF group (the units sharing a library HRF), with that HRF's design.
For one group the design-side quantities (Gram matrices, projections of the trial
regressors on the nuisance bases) are computed once and reused for every number of PCs and
every ridge fraction; see :mod:`._glm` and :mod:`._fracridge` (glmsingle.md 5.4-5.7).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._crossval import BadnessScorer, select_noise_regressors
from ._fracridge import RidgePath
from ._glm import (
    ChunkData,
    RunBlock,
    ols_inverse,
    r2_percent,
    rss_terms,
    run_blocks,
    single_threaded,
)
from ._nuisance import RunNuisance, noise_pool_pcs
from ._pipeline import Context, ExtraBetas, _psc, assemble, group_bhat

__all__ = ["crossvalidate_pcs", "fit_types_cd", "glmdenoise_regressors", "noise_pool"]


def noise_pool(ctx: Context, onoff_r2: NDArray[np.float32], brain_r2: float) -> NDArray[np.bool_]:
    """Bright units with a poor ON-OFF fit, minus ``brainexclude`` (MATLAB semantics)."""
    if "noisepool" in ctx.force:
        return np.asarray(ctx.force["noisepool"], bool).ravel()
    pct, frac = np.asarray(ctx.opts["brainthresh"], np.float64)
    bright = ctx.meanvol > np.percentile(ctx.meanvol, pct) * frac
    pool = bright & (onoff_r2 < brain_r2)
    excl = ctx.opts["brainexclude"]
    if excl is not False and excl is not None and np.size(excl) > 0:
        ex = np.asarray(excl, bool).ravel()
        if ex.size == 1:
            ex = np.repeat(ex, ctx.n_units)
        pool &= ~ex
    return pool


def glmdenoise_regressors(ctx: Context, pool: NDArray[np.bool_]) -> list[NDArray[np.float32]]:
    """Per run, the first ``n_pcs + 1`` PCs of the noise-pool time series."""
    if "pcregressors" in ctx.force:
        return [np.asarray(p, np.float32) for p in ctx.force["pcregressors"]]
    n_pcs = int(ctx.opts["n_pcs"])
    idx = np.flatnonzero(pool)
    return [noise_pool_pcs(np.asarray(y[idx], np.float64), nz.poly, n_pcs)
            for y, nz in zip(ctx.runs, ctx.nz_ab)]


class _GroupDesigns:
    """Design-side quantities per HRF, built once and shared by all chunks.

    RunBlocks, OLS inverses per (HRF, extras, K) and ridge eigen-decompositions per
    (HRF, extras, K) depend on the design only, never on the units.
    """

    def __init__(self, ctx: Context, nz_cd: list[RunNuisance]) -> None:
        self.ctx, self.nz_cd = ctx, nz_cd
        self.blocks: dict[int, list[RunBlock]] = {}
        self.invs: dict[tuple[int, bool, int], list[NDArray[np.float64]]] = {}
        self.paths: dict[tuple[int, bool, int], RidgePath] = {}

    def __getitem__(self, h: int) -> list[RunBlock]:
        if h not in self.blocks:
            self.blocks[h] = run_blocks([c[h] for c in self.ctx.conv_lib], self.nz_cd)
        return self.blocks[h]

    def inverses(self, h: int, extras: bool, k: int) -> list[NDArray[np.float64]]:
        key = (h, extras, k)
        if key not in self.invs:
            with single_threaded():
                self.invs[key] = [ols_inverse(b.gram(extras, k), b.good) for b in self[h]]
        return self.invs[key]

    def ridge(self, h: int, extras: bool, k: int) -> RidgePath:
        key = (h, extras, k)
        if key not in self.paths:
            with single_threaded():
                self.paths[key] = RidgePath.decompose([b.gram(extras, k) for b in self[h]],
                                                      [b.good for b in self[h]])
        return self.paths[key]

    def ols(self, h: int, bhat: list[NDArray[np.float64]], cd: ChunkData, extras: bool,
            k: int) -> list[NDArray[np.float64]]:
        """Per-run OLS betas of the units in ``cd`` with extras (if asked) and k PCs."""
        invs = self.inverses(h, extras, k)
        return [blk.cross(bhat[r], cd.de[r], cd.dpc[r], extras, k) @ invs[r]
                for r, blk in enumerate(self[h])]


def _use_extras(ctx: Context, k: int) -> bool:
    # official: the K = 0 model (and a pcnum = 0 fit) has no extra regressors (pitfall 9c)
    return (not ctx.official) or k > 0


def _groups(ctx: Context, sl: slice, hrfindex: NDArray[np.int64]):
    hs = hrfindex[sl]
    for h in np.unique(hs):
        yield int(h), np.flatnonzero(hs == h)


def crossvalidate_pcs(ctx: Context, nz_cd: list[RunNuisance], hrfindex: NDArray[np.int64],
                      onoff_r2: NDArray[np.float32], pc_cutoff: float,
                      designs: _GroupDesigns) -> dict[str, Any]:
    """Cross-validate 0..n_pcs PCs; return glmbadness, pcvoxels, xvaltrend, pcnum."""
    lay, n_pcs = ctx.layout, int(ctx.opts["n_pcs"])
    bad = np.zeros((ctx.n_units, n_pcs + 1), np.float64)
    with ctx.stage("PC cross-validation", len(ctx.chunks)) as tick:
        for sl in ctx.chunks:
            cd = ChunkData.prepare(ctx.runs, sl, nz_cd)
            for h, idx in _groups(ctx, sl, hrfindex):
                sub = cd.take(idx)
                bh = group_bhat(sub, ctx.conv_lib, h)
                ref = assemble(designs.ols(h, bh, sub, _use_extras(ctx, 0), 0), lay)
                scorer = BadnessScorer(ctx.trial_pairs, ref)
                bad[sl.start + idx, 0] = scorer.score(ref)
                for k in range(1, n_pcs + 1):
                    beta = assemble(designs.ols(h, bh, sub, _use_extras(ctx, k), k), lay)
                    bad[sl.start + idx, k] = scorer.score(beta)
            tick()
    mask = np.asarray(ctx.opts["pcR2cutoffmask"])
    mask = np.ones(ctx.n_units, bool) if mask.size == 1 else mask.astype(bool).ravel()
    pcvox = (onoff_r2 > pc_cutoff) & mask
    if not pcvox.any():  # official fallback (which crashes there): the best 100 units
        cand = np.flatnonzero(mask)
        best = cand[np.argsort(-np.nan_to_num(onoff_r2[cand], nan=-np.inf), kind="stable")[:100]]
        pcvox = np.zeros(ctx.n_units, bool)
        pcvox[best] = True
    badness32 = bad.astype(np.float32)
    xvaltrend = -np.median(badness32[pcvox], axis=0)
    pcnum = select_noise_regressors(xvaltrend, float(ctx.opts["pcstop"]))
    if "pcnum" in ctx.force:
        pcnum = int(ctx.force["pcnum"])
    return {"glmbadness": badness32, "pcvoxels": pcvox, "xvaltrend": xvaltrend.astype(np.float32),
            "pcnum": int(pcnum)}


def _autoscale(beta: NDArray[np.float64], ref: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Per unit OLS of ``ref`` on ``[beta, 1]``; (1, 0) when the scale is negative."""
    x = np.nan_to_num(beta)
    n = x.shape[1]
    sx, sy = x.sum(axis=1), ref.sum(axis=1)
    sxx, sxy = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", x, ref)
    den = n * sxx - sx**2
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (n * sxy - sx * sy) / den
    scale = np.where(den > 0, scale, 1.0)
    offset = np.where(den > 0, (sy - scale * sx) / n, 0.0)
    neg = scale < 0
    scale[neg], offset[neg] = 1.0, 0.0
    return scale, offset


def _fracs_to_use(ctx: Context, model: str) -> tuple[NDArray[np.float64], int | None, bool]:
    """Official setup of fractions, fixed choice and autoscale for type C or D."""
    fr = ctx.opts.fracs
    auto = bool(ctx.opts["wantautoscale"])
    if model == "C":
        return np.array([1.0]), 0, False
    if fr.size == 1:
        if fr[0] == 1:
            return np.array([1.0]), 0, False
        return np.r_[1.0, fr], 1, auto
    return (fr if fr[0] == 1 else np.r_[1.0, fr]), None, auto


def fit_types_cd(ctx: Context, model: str, nz_cd: list[RunNuisance], hrfindex: NDArray[np.int64],
                 pcnum: int, designs: _GroupDesigns) -> dict[str, Any]:
    """Fit type C (OLS with pcnum PCs) or type D (fractional ridge) per HRF group."""
    lay, n, n_r = ctx.layout, ctx.n_units, ctx.n_runs
    fracs, fixed_ix, auto = _fracs_to_use(ctx, model)
    prepended = fixed_ix is None and ctx.opts.fracs[0] != 1
    betas = np.zeros((n, lay.n_trials), np.float32)
    r2 = np.zeros(n, np.float32)
    r2run = np.zeros((n, n_r), np.float32)
    fracvalue = np.zeros(n, np.float32)
    scaleoffset = np.zeros((n, 2), np.float32)
    rrbad = np.zeros((n, ctx.opts.fracs.size), np.float32) if fixed_ix is None else None
    forced = ctx.force.get("FRACvalue")
    extras = _use_extras(ctx, pcnum)
    extra = ExtraBetas(ctx, extras)
    name = "type C (GLMdenoise)" if model == "C" else "type D (GLMdenoise + ridge)"
    with ctx.stage(name, len(ctx.chunks)) as tick:
        for sl in ctx.chunks:
            cd = ChunkData.prepare(ctx.runs, sl, nz_cd)
            for h, idx in _groups(ctx, sl, hrfindex):
                sub = cd.take(idx)
                blocks = designs[h]
                bh = group_bhat(sub, ctx.conv_lib, h)
                if fracs.size == 1:
                    alpha = np.zeros(idx.size)
                    choice = np.zeros(idx.size, np.int64)
                    per_run = designs.ols(h, bh, sub, extras, pcnum)
                    ref = assemble(per_run, lay)
                else:
                    path = designs.ridge(h, extras, pcnum).with_cross(
                        [b.cross(bh[r], sub.de[r], sub.dpc[r], extras, pcnum)
                         for r, b in enumerate(blocks)])
                    alphas = path.alphas(fracs)
                    choice = np.zeros(idx.size, np.int64)
                    ref = assemble(path.betas(np.zeros(idx.size)), lay)
                    if fixed_ix is not None:
                        choice = np.full(idx.size, fixed_ix, np.int64)
                    elif not ctx.force.get("skip_xval"):
                        scorer = BadnessScorer(ctx.trial_pairs, ref)
                        bad = np.stack([scorer.score(ref) if f == 0 else
                                        scorer.score(assemble(path.betas(alphas[f]), lay))
                                        for f in range(fracs.size)], axis=1)
                        first = 1 if prepended else 0
                        choice = np.argmin(bad[:, first:], axis=1) + first
                        rrbad[sl.start + idx] = bad[:, first:]  # type: ignore[index]
                    if forced is not None and fixed_ix is None:
                        want = np.asarray(forced, np.float64).ravel()[sl.start + idx]
                        choice = np.argmin(np.abs(fracs[None, :] - want[:, None]), axis=1)
                    alpha = alphas[choice, np.arange(idx.size)]
                    per_run = path.betas(alpha)
                rss = np.stack([sub.ssq[:, r] + rss_terms(per_run[r], bh[r], blocks[r].ghat)
                                for r in range(n_r)], axis=1)
                r2[sl.start + idx] = r2_percent(rss.sum(axis=1), sub.ssq.sum(axis=1))
                r2run[sl.start + idx] = r2_percent(rss, sub.ssq)
                final = assemble(per_run, lay)
                if extra.active:
                    extra.add(sl.start + idx, sub, [b.xhat for b in blocks], per_run)
                fracvalue[sl.start + idx] = fracs[choice]
                # units without data after the polynomials (all zero): the official ridge
                # is 0/0 there, so their badness and scale are NaN (so are their PSC betas)
                empty = sub.ssq.sum(axis=1) == 0
                if auto:
                    scale, offset = _autoscale(final, ref)
                    final = scale[:, None] * np.nan_to_num(final) + offset[:, None]
                    scaleoffset[sl.start + idx] = np.stack([scale, offset], axis=1)
                    scaleoffset[sl.start + idx[empty]] = np.nan
                if rrbad is not None:
                    rrbad[sl.start + idx[empty]] = np.nan
                betas[sl.start + idx] = final
            tick()
    out: dict[str, Any] = {"betasmd": _psc(betas, ctx.meanvol).astype(np.float32), "R2": r2,
                           "R2run": r2run}
    if any(e is not None for e in ctx.extras):
        out["extrabetas"] = extra.result(bool(ctx.opts["wantpercentbold"]))
    if model == "D":
        out["FRACvalue"] = fracvalue
        out["scaleoffset"] = scaleoffset if auto else np.array([])
        out["rrbadness"] = rrbad if rrbad is not None else []
    return out
