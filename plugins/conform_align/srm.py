"""Shared response model: probabilistic (EM, Chen et al. 2015) or deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import scipy.linalg

from conform_core.constraints import Boolean, Interval

from ._algebra import Array, initial_template, orthogonal_map
from ._linear import LinearAligner, Maps, common_constraints, common_fixes, peak_words
from .procrustes import procrustes_maps

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["SRMAligner", "SRMFit", "probabilistic_srm"]

_GAIN_FLOOR = 1e-12
"""Smallest gain kept (gains have a root mean square of 1): a subject whose responses carry
none of the shared response would otherwise get a zero gain, and ``transform`` divides by it."""


class SRMFit(NamedTuple):
    """What :func:`probabilistic_srm` returns (arrays conditions x ..., one entry per subject)."""

    shared: Array
    """Posterior mean of the shared response, (n_conditions, k)."""
    maps: list[Array]
    """Each subject's orthonormal map ``W_i``, (n_units_i, k)."""
    gains: Array
    """Each subject's gain ``a_i`` (all 1 without ``gain``)."""
    rho2: Array
    """Each subject's noise variance."""
    sigma_s: Array
    """Prior covariance of the shared response, (k, k)."""
    posterior_cov: Array
    """Posterior covariance of one condition's shared response, (k, k)."""
    log_likelihood: list[float]
    """Log-likelihood (up to a constant) along the iterations; never decreases."""


def probabilistic_srm(
    blocks: list[Array], n_components: int, n_iter: int, *, gain: bool = False
) -> SRMFit:
    """Fit the probabilistic shared response model by expectation-maximisation.

    The model: each subject's centred responses ``x_i`` (conditions x units) are
    ``a_i * s @ W_i.T + noise``, with ``W_i`` (units x k) orthonormal columns, the shared
    response ``s`` (conditions x k) drawn per condition from ``N(0, Sigma_s)``, isotropic noise
    of variance ``rho2_i`` and a gain ``a_i > 0`` per subject. ``gain=False`` fixes every
    ``a_i = 1``: Chen et al. 2015 ("A reduced-dimension fMRI shared response model") with the
    updates of brainiak's ``funcalign.SRM``, started from the orthogonal maps onto the
    principal-component template instead of random ones.

    E-step: the posterior of each condition's shared response has precision
    ``inv(Sigma_s) + (sum_i a_i**2 / rho2_i) I`` (the maps are orthonormal) and mean
    ``cov @ sum_i a_i W_i.T x_i / rho2_i``. M-step (exact, hence a monotone log-likelihood):
    ``Sigma_s`` = posterior covariance + ``E[s].T E[s] / n``; ``W_i`` = orthogonal Procrustes
    of ``x_i.T E[s]`` (its optimum does not depend on ``a_i > 0``); ``a_i = c_i / tr(E[s.T s])``
    with ``c_i = tr(W_i.T x_i.T E[s])`` (the sum of the singular values, >= 0); ``rho2_i`` =
    ``(||x_i||^2 - 2 a_i c_i + a_i^2 tr(E[s.T s])) / (n v_i)``. The gains and ``Sigma_s`` are
    determined up to one common factor (``a_i / g`` with ``g^2 Sigma_s`` leaves the likelihood
    unchanged); after each M-step the gains are rescaled to a root mean square of 1.

    Returns
    -------
    SRMFit
        Shared response (posterior mean under the final parameters), maps, gains, noise
        variances, ``Sigma_s``, the posterior covariance of one condition's shared response,
        and the log-likelihood (up to a constant) at the start of each iteration and after the
        last; EM never decreases it.
    """
    k = n_components
    n_cond = blocks[0].shape[0]
    voxels = np.array([x.shape[1] for x in blocks], dtype=np.float64)
    trace_xtx = np.array([float(np.sum(x**2)) for x in blocks])
    template = initial_template(blocks, k)
    maps = [orthogonal_map(x, template)[0] for x in blocks]
    gains = np.ones(len(blocks))
    rho2 = np.ones(len(blocks))
    sigma_s = np.eye(k)
    eye = np.eye(k)
    # a floor on the noise variances: noise-free data would otherwise make them 0
    floor = 1e-10 * max(float(trace_xtx.sum() / (n_cond * voxels.sum())), 1e-300)
    log_likelihood: list[float] = []
    for iteration in range(n_iter + 1):
        # E-step: posterior of the shared response given the current parameters
        rho0 = float(np.sum(gains**2 / rho2))
        chol_s = scipy.linalg.cho_factor(sigma_s)
        inv_sigma_s = scipy.linalg.cho_solve(chol_s, eye)
        chol_sr = scipy.linalg.cho_factor(inv_sigma_s + rho0 * eye)
        inv_sr = scipy.linalg.cho_solve(chol_sr, eye)
        wt_x = sum((x @ w) * a / r for x, w, a, r in zip(blocks, maps, gains, rho2))
        trace_x = float(np.sum(trace_xtx / rho2))
        log_det = (2 * np.log(np.diag(chol_sr[0])).sum() + float(np.sum(np.log(rho2) * voxels))
                   + 2 * np.log(np.diag(chol_s[0])).sum())
        log_likelihood.append(float(
            -0.5 * n_cond * log_det - 0.5 * trace_x + 0.5 * np.sum((wt_x @ inv_sr) * wt_x)))
        shared = wt_x @ (eye - rho0 * inv_sr) @ sigma_s
        if iteration == n_iter:
            break
        # M-step: shared covariance, orthogonal maps, gains, noise variances
        sigma_s = inv_sr + shared.T @ shared / n_cond
        sigma_s = (sigma_s + sigma_s.T) / 2
        trace_sigma_s = n_cond * float(np.trace(sigma_s))  # tr(E[s.T s])
        for i, x in enumerate(blocks):
            cross = x.T @ shared  # units x k
            maps[i] = orthogonal_map(x, shared)[0]
            c = float(np.sum(maps[i] * cross))
            if gain:
                gains[i] = max(c / trace_sigma_s, _GAIN_FLOOR)
            a = gains[i]
            rho2[i] = (trace_xtx[i] - 2 * a * c + a**2 * trace_sigma_s) / (n_cond * voxels[i])
            rho2[i] = max(rho2[i], floor)
        if gain:
            g = float(np.sqrt(np.mean(gains**2)))
            gains /= g
            sigma_s *= g**2
    return SRMFit(shared, maps, gains, rho2, sigma_s, inv_sr, log_likelihood)


class SRMAligner(LinearAligner):
    """Align subjects with the shared response model (SRM).

    Every subject's centred responses are modelled as a k-dimensional shared response mapped
    into its units by a matrix with orthonormal columns, times a gain per subject (``gain``).
    The probabilistic SRM (Chen et al. 2015, as in brainiak) adds a Gaussian prior on the
    shared response and a noise variance per subject, fitted by expectation-maximisation, so
    noisier subjects weigh less in the shared response. The gain lets a subject's responses
    be larger or smaller than the shared response: an orthonormal map keeps the shared
    response's energy, so without it a subject with few units (or weak signal) gets inflated
    amplitudes. The deterministic SRM fits the shared response and the maps by block
    coordinate descent, which is generalised Procrustes (scaled when ``gain``; the same
    solver as :class:`~conform_align.ProcrustesAligner`).

    ``transform`` is ``x @ W_i / a_i``, the maximum-likelihood shared response of one
    subject (unbiased under the model; brainiak's ``W_i.T x`` when ``gain=False``), not its
    posterior mean: a caller averages several subjects' shared responses, and an average of
    posterior means would keep each one's shrinkage towards 0 by a single subject's evidence.
    ``inverse_transform`` is ``a_i * shared @ W_i.T`` (the model's mean). ``add_subject`` is
    one M-step for the new subject against the fitted shared response (brainiak's
    ``transform_subject``, plus its gain and noise variance).

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Dimension of the shared space: "auto" chooses it by cross-validation within the
        training subjects; None takes the largest valid value.
    probabilistic : bool, default=True
        EM on the probabilistic model (True) or the deterministic SRM (False).
    gain : bool, default=True
        Fit a gain per subject (False: every gain is 1, Chen et al. 2015 exactly; for the
        deterministic SRM, Procrustes without scaling).
    n_iter : int, default=10
        EM iterations (probabilistic) or template refinements (deterministic).
    labels, via_encoder, encoder_params, probe, n_jobs, random_state
        The common aligner parameters (see :class:`~conform_align.ProcrustesAligner`).

    Attributes
    ----------
    subjects_, n_components_, maps_, inverse_maps_, means_, template_
        As for :class:`~conform_align.ProcrustesAligner` (``maps_`` is ``W_i / a_i``,
        ``inverse_maps_`` is ``a_i W_i.T``); ``template_`` is the shared response (its
        posterior mean, when probabilistic).
    gains_ : dict of str to float
        Gain of each subject (1 without ``gain``; root mean square 1 over the subjects given
        to fit, when probabilistic).
    sigma_s_ : ndarray of shape (n_components_, n_components_) or None
        Covariance of the shared response (probabilistic only).
    posterior_cov_ : ndarray of shape (n_components_, n_components_) or None
        Posterior covariance of one stimulus's shared response given the fitted subjects
        (probabilistic only; ``add_subject`` uses it).
    rho2_ : dict of str to float
        Noise variance of each subject (NaN when deterministic); for an added subject, the
        variance of its residual around ``a W E[s]`` less what the shared response's
        posterior uncertainty explains.
    log_likelihood_ : list of float
        Log-likelihood (up to a constant) along the EM iterations (probabilistic only).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **common_constraints(),
        "probabilistic": [Boolean()],
        "gain": [Boolean()],
        "n_iter": [Interval(int, 0, None)],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        **common_fixes(),
        "n_iter": "Use a count such as 10 (0 keeps the initial maps).",
    }

    def __init__(self, n_components: int | str | None = "auto", probabilistic: bool = True,
                 gain: bool = True, n_iter: int = 10,
                 labels: str | Sequence[str | int] | None = None,
                 via_encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 probe: int | str = 500, n_jobs: int = 1, random_state: int = 0):
        self.n_components = n_components
        self.probabilistic = probabilistic
        self.gain = gain
        self.n_iter = n_iter
        self.labels = labels
        self.via_encoder = via_encoder
        self.encoder_params = encoder_params
        self.probe = probe
        self.n_jobs = n_jobs
        self.random_state = random_state

    def peak_memory(self, size: DataSize) -> int | None:
        """Return the peak bytes of ``fit`` plus ``transform`` of every subject.

        ``8 * (3 S U C + 2 S U k + S C^2)`` (see :func:`~conform_align._linear.peak_words`):
        each subject's responses in float64, centred, and transformed; its map W_i and the
        units x k cross products of the M-step; the template's Gram matrices.
        """
        return peak_words(self, size, data=3, maps=2)

    def _fit_maps(self, blocks: list[Array], n_components: int) -> tuple[Array, list[Maps]]:
        if not self.probabilistic:
            self.sigma_s_, self.posterior_cov_, self.log_likelihood_ = None, None, []
            template, maps = procrustes_maps(blocks, n_components, n_iter=int(self.n_iter),
                                             scaling=bool(self.gain))
            return template, [(enc, dec, {"rho2_": np.nan, "gains_": _procrustes_gain(enc)})
                              for enc, dec, _ in maps]
        fit = probabilistic_srm(blocks, n_components, int(self.n_iter), gain=bool(self.gain))
        self.sigma_s_, self.posterior_cov_ = fit.sigma_s, fit.posterior_cov
        self.log_likelihood_ = fit.log_likelihood
        return fit.shared, [(w / a, a * w.T, {"rho2_": float(r), "gains_": float(a)})
                            for w, a, r in zip(fit.maps, fit.gains, fit.rho2)]

    def _map_subject(self, x: Array, template: Array) -> Maps:
        if not self.probabilistic:
            r, scale = orthogonal_map(x, template, scaling=bool(self.gain))
            return r * scale, r.T / scale, {"rho2_": np.nan, "gains_": 1.0 / scale}
        # the M-step of the new subject, given the posterior of the shared response (the
        # fitted subjects' only: the new subject's noise is independent of its error)
        w = orthogonal_map(x, template)[0]
        c = float(np.sum(w * (x.T @ template)))
        uncertainty = x.shape[0] * float(np.trace(self.posterior_cov_))  # E||s - E[s]||^2
        mean_ss = float(np.sum(template**2))
        # the gain on the scale of s itself (E[s.T s] = mean's energy + uncertainty), as for
        # the fitted subjects and transform's output
        a = max(c / (mean_ss + uncertainty), _GAIN_FLOOR) if self.gain else 1.0
        # E||x - a W E[s]||^2 = n v rho2 + a^2 uncertainty: take the shared response's part off
        rho2 = (float(np.sum(x**2)) - 2 * a * c + a**2 * (mean_ss - uncertainty)) / x.size
        return w / a, a * w.T, {"rho2_": max(rho2, 0.0), "gains_": a}


def _procrustes_gain(encoder: Array) -> float:
    """Gain ``1 / scale`` of a Procrustes encoder ``scale * R`` (``R`` of rank min(shape))."""
    return float(np.sqrt(min(encoder.shape) / np.sum(encoder**2)))
