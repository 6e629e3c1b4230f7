"""Run the native GLMsingle pipeline on flattened runs and return flat results."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

from ._denoise import (
    _GroupDesigns,
    crossvalidate_pcs,
    fit_types_cd,
    glmdenoise_regressors,
    noise_pool,
)
from ._nuisance import RunNuisance
from ._options import Options
from ._pipeline import Context, fit_type_a, fit_type_b, make_context, thresholds
from ._timing import EventTables

__all__ = ["check_requested", "fit_native"]


def check_requested(opts: Options) -> list[bool]:
    """Return which of types A-D are wanted (file or memory) and check option consistency."""
    want = [bool(f or m) for f, m in zip(opts["wantfileoutputs"], opts["wantmemoryoutputs"])]
    if opts["wantglmdenoise"] and not (want[2] or want[3]):
        raise ParameterError("wantglmdenoise=1 but neither type C nor type D is requested. Request "
                             "one in wantfileoutputs/wantmemoryoutputs, or set wantglmdenoise=0.")
    if opts["wantfracridge"] and not want[3]:
        raise ParameterError("wantfracridge=1 but type D is not requested. Set the 4th flag of "
                             "wantfileoutputs or wantmemoryoutputs, or set wantfracridge=0.")
    if opts["wantlss"] and not want[1]:
        raise ParameterError("wantlss=1 but type B is not requested. Set the 2nd flag of "
                             "wantfileoutputs or wantmemoryoutputs, or set wantlss=0.")
    return want


def fit_native(
    runs: list[NDArray[np.float32]],
    design: list[NDArray[np.float64]] | EventTables,
    tr: float,
    opts: Options,
    force: dict[str, Any] | None = None,
    stimdur: float | None = None,
) -> tuple[dict[str, Any], Context]:
    """Fit types A-D; return ``({'typea': ..., ...}, context)`` with unit-first flat arrays.

    ``design`` is a list of validated onset matrices or an :class:`~._timing.EventTables`
    (then ``stimdur`` is required). ``force`` fixes discrete choices to given values
    (``HRFindex``, ``noisepool``, ``pcregressors``, ``pcnum``, ``FRACvalue``): used by the
    stage-wise parity tests and by the component's ``transform``.
    """
    want = check_requested(opts)
    from threadpoolctl import threadpool_limits

    # the products here have one dimension of ~n_r (trials per run): one BLAS thread is faster
    # than two, and far faster when other processes compete for the cores
    with threadpool_limits(limits=opts["blas_threads"], user_api="blas"):
        return _fit(runs, design, tr, opts, force, want, stimdur)


def _fit(
    runs: list[NDArray[np.float32]],
    design: list[NDArray[np.float64]] | EventTables,
    tr: float,
    opts: Options,
    force: dict[str, Any] | None,
    want: list[bool],
    stimdur: float | None,
) -> tuple[dict[str, Any], Context]:
    ctx = make_context(runs, design, tr, opts, force, stimdur=stimdur)
    out: dict[str, Any] = {}
    a = fit_type_a(ctx)
    out["typea"] = a
    _, brain_r2, pc_cutoff = thresholds(ctx, a["onoffR2"])
    ctx.thresholds = {"brainR2": brain_r2, "pcR2cutoff": pc_cutoff}
    b = fit_type_b(ctx, want_betas=want[1])
    if want[1]:
        out["typeb"] = b
    hidx = b["HRFindex"]
    do_c = bool(opts["wantglmdenoise"] and want[2])
    do_d = bool(opts["wantfracridge"] and want[3])
    n_pcs = int(opts["n_pcs"])
    nz_cd = [
        RunNuisance.build(t, d, e)
        for t, d, e in zip(ctx.layout.n_times, opts.maxpolydeg, ctx.extras)
    ]
    common: dict[str, Any] = {
        "HRFindex": hidx,
        "HRFindexrun": b["HRFindexrun"],
        "glmbadness": None,
        "pcvoxels": None,
        "xvaltrend": None,
        "pcnum": 0,
        "noisepool": None,
        "pcregressors": [],
        "meanvol": ctx.meanvol,
    }
    if opts["wantglmdenoise"]:
        pool = noise_pool(ctx, a["onoffR2"], brain_r2)
        pcs = glmdenoise_regressors(ctx, pool)
        nz_cd = [nz.with_pcs(p[:, :n_pcs]) for nz, p in zip(nz_cd, pcs)]
        common.update(noisepool=pool, pcregressors=pcs)
        designs = _GroupDesigns(ctx, nz_cd)
        if opts["pcstop"] <= 0:
            common["pcnum"] = int(-opts["pcstop"])
        elif "pcnum" in ctx.force and ctx.force.get("skip_xval"):
            common["pcnum"] = int(ctx.force["pcnum"])
        else:
            common.update(crossvalidate_pcs(ctx, nz_cd, hidx, a["onoffR2"], pc_cutoff, designs))
    else:
        designs = _GroupDesigns(ctx, nz_cd)
    pcnum = int(common["pcnum"])
    if do_c:
        out["typec"] = {**common, **fit_types_cd(ctx, "C", nz_cd, hidx, pcnum, designs)}
    if do_d:
        out["typed"] = {**common, **fit_types_cd(ctx, "D", nz_cd, hidx, pcnum, designs)}
    return out, ctx
