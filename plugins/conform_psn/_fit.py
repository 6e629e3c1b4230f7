"""How :class:`~conform_psn.PSNDenoiser` fits: one piece, and pieces per parcel.

A *piece* is one PSN fit on some units: any preset (conform's ``auto``, an official one,
or the cross-validated legacy API), with exact full-rank covariances or low-rank ones
(``covariance="lowrank"``). :func:`fit_piece` runs one; :func:`fit_piecewise` runs one
per parcel neighbourhood, each a Dask task (:mod:`._piecewise`), and blends them into a
block denoiser. The component only chooses and stores.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.data import Units

from ._auto import fit_auto
from ._operators import block_operator
from ._piecewise import blend_weights, neighbourhoods, resolve_parcels, run_tasks
from ._psn import psn

__all__ = ["Piece", "PieceSpec", "fit_piece", "fit_piecewise"]

_DROP = ("input_data", "residuals", "gsn_result")


@dataclass
class PieceSpec:
    """What to fit on each piece: the preset, :func:`psn`'s options, the covariance model."""

    preset: str
    options: dict[str, Any]
    auto_options: dict[str, Any]
    covariance: str = "full"
    rank: int | None = None


@dataclass
class Piece:
    """One fitted piece (the attributes of :class:`~conform_psn.PSNDenoiser` it sets)."""

    denoiser: Any
    unit_means: NDArray[np.float64]
    best_threshold: Any
    chosen: str
    ncsnr: NDArray[np.float64] | None
    signalsubspace: NDArray[np.float64] | None = None
    cv_scores: dict[str, float] | None = None
    shrinkage: float = 0.0
    returns_mean: bool = False
    results: dict[str, Any] = field(default_factory=dict)


def _official(spec: PieceSpec, data: NDArray) -> Piece:
    options = dict(spec.options)
    if spec.covariance == "lowrank":
        options.update(covariance="lowrank", rank=spec.rank)
    results = psn(data, spec.preset, **options)
    gsn = results.get("gsn_result")
    denoiser = results["denoiser"]
    return Piece(
        denoiser=denoiser, unit_means=results["unit_means"],
        best_threshold=results["best_threshold"], chosen=spec.preset,
        ncsnr=None if gsn is None else np.asarray(gsn["ncsnr"]),
        signalsubspace=results.get("signalsubspace"),
        returns_mean=bool(not np.any(denoiser)) if isinstance(denoiser, np.ndarray)
        else bool(results.get("best_threshold", 1) == 0),
        results={k: v for k, v in results.items() if k not in _DROP})


def _auto(spec: PieceSpec, data: NDArray) -> Piece:
    if spec.covariance == "lowrank":
        return _auto_lowrank(spec, data)
    fit = fit_auto(data, **spec.auto_options)
    return Piece(
        denoiser=fit.denoiser, unit_means=fit.unit_means, best_threshold=fit.best_threshold,
        chosen=fit.chosen, ncsnr=np.asarray(fit.gsn_result["ncsnr"]), cv_scores=fit.cv_scores,
        shrinkage=fit.shrinkage, returns_mean=fit.returns_mean,
        results={"denoiser": fit.denoiser, "unit_means": fit.unit_means,
                 "best_threshold": fit.best_threshold, "chosen": fit.chosen,
                 "cv_scores": fit.cv_scores, "shrinkage": fit.shrinkage,
                 "returns_mean": fit.returns_mean, **fit.details})


def _auto_lowrank(spec: PieceSpec, data: NDArray) -> Piece:
    """``auto`` in the low-rank subspace: choose on the projected trials, then lift.

    Each cross-validation fold projects onto a subspace found on its training conditions
    only (:func:`_fold_projection`); the final fit uses the subspace of all conditions.
    """
    from ._lowrank import lift_denoiser, lowrank_gsn, project_trials
    from ._validation import check_data

    checked, layout = check_data(data, who="PSNDenoiser(covariance='lowrank')",
                                 min_conditions=2)
    gsn = lowrank_gsn(checked, layout, rank=spec.rank)
    basis = np.asarray(gsn["basis"], dtype=np.float64)
    split = (int(gsn["n_signal_directions"]), int(gsn["n_noise_directions"]))
    fit = fit_auto(project_trials(checked, basis), unit_weights=np.ones(basis.shape[1]),
                   fold_data=partial(_fold_projection, checked, split), **spec.auto_options)
    means = np.nanmean(np.asarray(checked, dtype=np.float64), axis=2).mean(axis=1)
    denoiser = lift_denoiser(gsn, fit.denoiser, layout.n_trials_avg)
    return Piece(
        denoiser=denoiser, unit_means=means, best_threshold=fit.best_threshold,
        chosen=fit.chosen, ncsnr=np.asarray(gsn["ncsnr"]), cv_scores=fit.cv_scores,
        shrinkage=fit.shrinkage, returns_mean=fit.returns_mean,
        results={"chosen": fit.chosen, "cv_scores": fit.cv_scores, "shrinkage": fit.shrinkage,
                 "returns_mean": fit.returns_mean, "best_threshold": fit.best_threshold,
                 "rank": int(basis.shape[1]), **fit.details})


def _fold_projection(data: NDArray, split: tuple[int, int], train: NDArray[np.intp]
                     ) -> NDArray[np.float64]:
    """All trials projected onto the subspace of the ``train`` conditions' trials.

    ``split`` is the (means, residuals) directions of the final subspace; a fold whose
    conditions cannot give as many (very few conditions) keeps the final subspace's count by
    taking the rest from the other side, so every fold has the same number of coordinates.
    """
    from ._lowrank import project_trials
    from ._subspace import subspace, unit_stats
    from ._validation import check_data

    fold, layout = check_data(data[:, train], who="PSNDenoiser(covariance='lowrank')",
                              min_conditions=2)
    n_signal = min(split[0], train.size - 1)
    basis = subspace(fold, layout, unit_stats(fold, layout), n_signal,
                     sum(split) - n_signal)
    return project_trials(data, basis)


def fit_piece(spec: PieceSpec, data: NDArray) -> Piece:
    """Fit one piece: ``data`` is (units, conditions, trials), conditions in canonical order."""
    return _auto(spec, data) if spec.preset == "auto" else _official(spec, data)


def _fit_hood(spec: PieceSpec, data: NDArray) -> Piece:
    piece = fit_piece(spec, data)
    piece.results = {}  # only what the blend needs travels back from a worker
    return piece


def fit_piecewise(spec: PieceSpec, data: NDArray, units: Units | None, *, parcels: Any,
                  overlap: float, max_parcel: int, n_jobs: int) -> Piece:
    """Fit one piece per parcel neighbourhood (one Dask task each) and blend them.

    Returns a piece whose denoiser is a block operator (see
    :func:`~conform_psn._operators.block_operator`); each unit's ncsnr and threshold are
    those of its own parcel's fit, and ``results["parcels"]`` lists per parcel its size,
    neighbourhood size, the preset chosen and the threshold.
    """
    n_units = data.shape[0]
    parts = resolve_parcels(parcels, units, n_units, max_parcel)
    hoods = neighbourhoods(parts, units, n_units, overlap)
    weights = blend_weights(parts, hoods, n_units)
    pieces = run_tasks(partial(_fit_hood, spec), data, hoods, n_jobs=n_jobs)
    ncsnr = np.zeros(n_units)
    threshold = np.zeros(n_units, dtype=np.float64)
    for members, hood, piece in zip(parts, hoods, pieces):
        own = np.searchsorted(hood, members)
        if piece.ncsnr is not None:
            ncsnr[members] = piece.ncsnr[own]
        k = np.asarray(piece.best_threshold, dtype=np.float64)
        threshold[members] = k[own] if k.ndim else float(k)
    means = np.nanmean(np.asarray(data, dtype=np.float64), axis=2).mean(axis=1)
    denoiser = block_operator(n_units, [(h, w, p.denoiser)
                                        for h, w, p in zip(hoods, weights, pieces)])
    chosen = Counter(p.chosen for p in pieces).most_common(1)[0][0]
    summary = [{"n_units": int(m.size), "n_fitted": int(h.size), "chosen": p.chosen,
                "best_threshold": p.best_threshold, "returns_mean": p.returns_mean}
               for m, h, p in zip(parts, hoods, pieces)]
    return Piece(
        denoiser=denoiser, unit_means=means, best_threshold=threshold,
        chosen=f"piecewise-{chosen}" if len(pieces) > 1 else chosen, ncsnr=ncsnr,
        shrinkage=float(np.mean([p.shrinkage for p in pieces])),
        returns_mean=all(p.returns_mean for p in pieces),
        results={"parcels": summary, "n_parcels": len(parts), "overlap": overlap})
