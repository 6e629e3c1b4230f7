"""Optimal-transport alignment: entropic transport plans between units and template components."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from conform_core import ConditionData, ParameterError
from conform_core.constraints import Interval

from ._algebra import Array, initial_template, refine_template
from ._linear import LinearAligner, Maps, common_constraints, common_fixes, peak_words

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["OptimalTransportAligner", "sinkhorn"]

#: Arrays of the plan's size that a fit holds at once (cost, log-kernel, plan).
_PLAN_COPIES = 3


def _standardise(x: Array) -> Array:
    """Centre and scale each column to unit norm (zero columns stay zero)."""
    x = x - x.mean(axis=0)
    norm = np.linalg.norm(x, axis=0)
    return np.asarray(x / np.where(norm > 0, norm, 1.0))


def transport_cost(x: Array, template: Array) -> Array:
    """Squared distances between standardised response profiles (units x components).

    Profiles are centred and scaled to unit norm over the shared stimuli, so the cost of unit
    u and component j is ``2 - 2 corr(x[:, u], template[:, j])`` (in [0, 4]).
    """
    a, b = _standardise(x), _standardise(template)
    return np.clip(2.0 - 2.0 * (a.T @ b), 0.0, None)


def _logsumexp(a: Array, axis: int) -> Array:
    top = a.max(axis=axis, keepdims=True)
    return np.asarray(np.log(np.exp(a - top).sum(axis=axis)) + np.squeeze(top, axis=axis))


#: Largest spread of ``cost / reg`` for which the kernel ``exp(-cost / reg)`` is used directly
#: (scaling-domain Sinkhorn): its entries stay above exp(-100) ~ 4e-44, so the scalings and
#: their products stay far from float64's under- and overflow (1e-308, 1e308). Wider spreads
#: (sharp plans) iterate in the log domain.
_SCALING_SPREAD = 100.0


def sinkhorn(cost: Array, reg: float, *, n_iter: int = 1000, tol: float = 1e-7) -> Array:
    """Entropic optimal transport plan with uniform marginals (Sinkhorn-Knopp, float64).

    Iterates on the kernel ``exp(-cost / reg)`` (scaling domain: two matrix-vector products
    per iteration) when its spread allows, ``(max - min) / reg <= 100``, and on log-sum-exps
    (log domain) otherwise, or if a scaling leaves float64's range. Both check the row
    marginals at every iteration (from the sums the next update needs anyway) and stop at the
    same error, so they agree to ``tol``.

    Parameters
    ----------
    cost : ndarray of shape (n, m)
    reg : float
        Entropic regularisation (absolute, in units of the cost), > 0.
    n_iter : int, default=1000
        Most Sinkhorn iterations.
    tol : float, default=1e-7
        Stop when the row marginals are within ``tol`` (L1, of a total mass 1) of uniform.

    Returns
    -------
    ndarray of shape (n, m)
        Plan with row sums 1/n (to ``tol``) and column sums 1/m (to rounding: the last update
        is the columns').
    """
    n, m = cost.shape
    a, b = 1.0 / n, 1.0 / m
    low = float(cost.min())
    if (float(cost.max()) - low) / reg <= _SCALING_SPREAD:
        kernel = np.exp((low - cost) / reg)  # entries in [exp(-100), 1]
        kv = kernel.sum(axis=1)  # kernel @ v for v = 1
        for _ in range(n_iter):
            u = a / kv
            v = b / (kernel.T @ u)
            kv = kernel @ v
            if np.abs(u * kv - a).sum() < tol:  # row marginals, from the next update's sums
                break
        if np.all(np.isfinite(u)) and np.all(np.isfinite(v)):
            return np.asarray(u[:, None] * kernel * v[None, :])
    kernel = -cost / reg
    f, g = np.zeros(n), np.zeros(m)
    row = _logsumexp(kernel, axis=1)
    for _ in range(n_iter):
        f = np.log(a) - row
        g = np.log(b) - _logsumexp(kernel + f[:, None], axis=0)
        row = _logsumexp(kernel + g[None, :], axis=1)
        if np.abs(np.exp(f + row) - a).sum() < tol:
            break
    return np.exp(kernel + f[:, None] + g[None, :])


class OptimalTransportAligner(LinearAligner):
    """Align subjects by entropic optimal transport between their units and a template.

    Each subject's units are transported onto the ``n_components`` components of a shared
    template, with the cost of a unit and a component the squared distance between their
    standardised response profiles over the shared stimuli (``2 - 2 r``). The entropic plan
    (float64 Sinkhorn, see :func:`sinkhorn`) with uniform marginals is turned into a
    barycentric map: a component is the plan-weighted mean of the subject's units, and
    ``inverse_transform`` gives each unit the plan-weighted mean of the components (the
    transposed plan) times a gain per unit fitted by least squares on the shared stimuli
    (averaging shrinks amplitudes, and units differ in signal size). The template starts as
    the leading principal components of the subjects' concatenated responses and is
    replaced ``n_iter`` times by the mean of the transported subjects. A plan is n_units x
    n_components: for many units, align piecewise (``labels=``), which ``max_memory_mb``
    enforces.

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Number of template components: "auto" chooses it by cross-validation within the
        training subjects; None takes the largest valid value.
    reg : float, default=0.1
        Entropic regularisation, relative to the median cost (larger: smoother plans).
    n_iter : int, default=3
        Template refinements (0 keeps the principal-component template).
    sinkhorn_iter : int, default=1000
        Most Sinkhorn iterations per plan.
    max_memory_mb : float, default=1024
        Refuse (ParameterError) a plan whose working arrays would take more memory.
    labels, via_encoder, encoder_params, probe, n_jobs, random_state
        The common aligner parameters (see :class:`~conform_align.ProcrustesAligner`).

    Attributes
    ----------
    subjects_, n_components_, maps_, inverse_maps_, means_, template_
        As for :class:`~conform_align.ProcrustesAligner`; ``maps_[s]`` is the plan times
        n_components_ (columns sum to 1), ``inverse_maps_[s]`` its transpose times n_units (each
        unit's weights sum to 1) times each unit's gain.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **common_constraints(),
        "reg": [Interval(float, 0, None, closed="neither")],
        "n_iter": [Interval(int, 0, None)],
        "sinkhorn_iter": [Interval(int, 1, None)],
        "max_memory_mb": [Interval(float, 0, None, closed="neither")],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        **common_fixes(),
        "reg": "Use a positive value such as 0.1 (relative to the median cost).",
        "n_iter": "Use a small count such as 3 (0 keeps the first template).",
        "max_memory_mb": "Use a positive budget in MB, e.g. 1024.",
    }

    def __init__(self, n_components: int | str | None = "auto", reg: float = 0.1,
                 n_iter: int = 3, sinkhorn_iter: int = 1000, max_memory_mb: float = 1024,
                 labels: str | Sequence[str | int] | None = None,
                 via_encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 probe: int | str = 500, n_jobs: int = 1, random_state: int = 0):
        self.n_components = n_components
        self.reg = reg
        self.n_iter = n_iter
        self.sinkhorn_iter = sinkhorn_iter
        self.max_memory_mb = max_memory_mb
        self.labels = labels
        self.via_encoder = via_encoder
        self.encoder_params = encoder_params
        self.probe = probe
        self.n_jobs = n_jobs
        self.random_state = random_state

    def peak_memory(self, size: DataSize) -> int | None:
        """Return the peak bytes of ``fit`` plus ``transform`` of every subject.

        ``8 * (3 S U C + 2 S U k + 3 U k + S C^2)`` (see
        :func:`~conform_align._linear.peak_words`): each subject's responses in float64,
        centred, and transformed; its maps in and back (units x k); the transport plan, its
        kernel and cost, alive for one subject at a time; the template's Gram matrices.
        """
        return peak_words(self, size, data=3, maps=2, plan=3)

    def _check_memory(self, n_units: int, n_components: int) -> None:
        need = _PLAN_COPIES * n_units * n_components * 8 / 2**20
        if need > float(self.max_memory_mb):
            raise ParameterError(
                f"OptimalTransportAligner needs about {need:.0f} MB for a plan of {n_units} units "
                f"x {n_components} components; max_memory_mb={self.max_memory_mb}. Use labels= "
                "for piecewise alignment (one plan per parcel), fewer n_components, or raise "
                "max_memory_mb.")

    def _plan(self, x: Array, template: Array) -> Array:
        self._check_memory(x.shape[1], template.shape[1])
        cost = transport_cost(x, template)
        median = float(np.median(cost))
        reg = float(self.reg) * (median if median > 0 else 1.0)
        return sinkhorn(cost, reg, n_iter=int(self.sinkhorn_iter))

    def _fit(self, subjects: list[ConditionData], n_components: int | None
             ) -> OptimalTransportAligner:
        k = n_components if n_components is not None else self._max_components(subjects)
        for s in subjects:  # before any work
            self._check_memory(s.n_units, int(k))
        super()._fit(subjects, k)
        return self

    def _fit_maps(self, blocks: list[Array], n_components: int) -> tuple[Array, list[Maps]]:
        template, plans = refine_template(
            blocks, initial_template(blocks, n_components), self._plan,
            lambda x, plan: x @ (plan * plan.shape[1]), int(self.n_iter))
        return template, [self._maps(x, template, plan) for x, plan in zip(blocks, plans)]

    @staticmethod
    def _maps(x: Array, template: Array, plan: Array) -> Maps:
        """Barycentric maps of a plan; each unit's map back gets a least-squares gain."""
        n_units, k = plan.shape
        decoder = plan.T * n_units
        fitted = template @ decoder
        gain = (x * fitted).sum(axis=0) / np.maximum((fitted**2).sum(axis=0), 1e-300)
        return plan * k, decoder * gain, {}

    def _map_subject(self, x: Array, template: Array) -> Maps:
        return self._maps(x, template, self._plan(x, template))
