"""Ridge alignment: ridge maps to and from an iteratively refined k-dimensional template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import RidgeCV

from conform_core import ConditionData
from conform_core.constraints import Interval, SequenceOf

from ._algebra import Array, initial_template, refine_template
from ._linear import LinearAligner, Maps, common_constraints, common_fixes

__all__ = ["RidgeAligner"]

#: Default alpha grid, relative to the mean non-zero eigenvalue of the predictors' Gram matrix.
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))


def _ridge(x: Array, y: Array, alphas: Array, *, per_target: bool) -> tuple[Array, Array]:
    """Ridge from x to y (both centred), alpha by GCV; return (coef n_x x n_y, chosen alphas)."""
    scale = float(np.sum(x**2)) / max(1, min(x.shape))
    if scale <= 0:
        return np.zeros((x.shape[1], y.shape[1])), np.full(1, np.nan)
    model = RidgeCV(alphas=alphas * scale, fit_intercept=False, alpha_per_target=per_target)
    model.fit(x, y)
    coef = np.asarray(model.coef_, dtype=np.float64).reshape(y.shape[1], x.shape[1])
    return coef.T, np.atleast_1d(model.alpha_) / scale


class RidgeAligner(LinearAligner):
    """Align subjects with ridge maps to and from a shared k-dimensional template.

    Each subject's centred responses on the shared stimuli are mapped onto the template by a
    ridge regression (units -> k components), and back by another (k components -> each
    unit). The penalties are chosen by efficient leave-one-out cross-validation (GCV,
    scikit-learn's ``RidgeCV``) in a logarithmic grid: one alpha per subject for the map in,
    one per unit for the map back. The template starts as the leading principal components
    of the subjects' concatenated responses and is replaced ``n_iter`` times by the mean of
    the subjects' predictions of it (hyperalignment style). Unlike orthogonal maps, ridge maps
    need no more units than components and may mix and rescale them, which suits subjects
    with different numbers of units.

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Dimension of the shared space: "auto" chooses it by cross-validation within the
        training subjects; None takes the largest valid value (shared stimuli minus one).
    alphas : sequence of float, default=1e-3 ... 1e3 (13 values, log-spaced)
        Penalties tried, relative to the mean non-zero eigenvalue of the predictors' Gram
        matrix (so the grid does not depend on the scale of the data).
    n_iter : int, default=3
        Template refinements (0 keeps the principal-component template).
    labels, via_encoder, encoder_params, probe, n_jobs, random_state
        The common aligner parameters (see :class:`~conform_align.ProcrustesAligner`).

    Attributes
    ----------
    subjects_, n_components_, maps_, inverse_maps_, means_, template_
        As for :class:`~conform_align.ProcrustesAligner`.
    alpha_ : dict of str to float
        Each subject's relative penalty of the map into the shared space.
    decoder_alphas_ : dict of str to ndarray of shape (n_units,)
        Each subject's relative penalty per unit of the map back.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **common_constraints(),
        "alphas": [SequenceOf(Interval(float, 0, None, closed="neither"), min_length=1)],
        "n_iter": [Interval(int, 0, None)],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        **common_fixes(),
        "alphas": "Use positive relative penalties, e.g. [0.01, 0.1, 1, 10, 100].",
        "n_iter": "Use a small count such as 3 (0 keeps the first template).",
    }

    def __init__(self, n_components: int | str | None = "auto",
                 alphas: Sequence[float] = DEFAULT_ALPHAS, n_iter: int = 3,
                 labels: str | Sequence[str | int] | None = None,
                 via_encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 probe: int | str = 500, n_jobs: int = 1, random_state: int = 0):
        self.n_components = n_components
        self.alphas = alphas
        self.n_iter = n_iter
        self.labels = labels
        self.via_encoder = via_encoder
        self.encoder_params = encoder_params
        self.probe = probe
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _grid(self) -> Array:
        return np.asarray(self.alphas, dtype=np.float64)

    def _max_components(self, subjects: list[ConditionData]) -> int:
        # ridge maps need no more units than components; the template's rank is the limit
        return max(1, min(s.n_conditions for s in subjects) - 1)

    def _fit_maps(self, blocks: list[Array], n_components: int) -> tuple[Array, list[Maps]]:
        grid = self._grid()
        template, _ = refine_template(
            blocks, initial_template(blocks, n_components),
            lambda x, t: _ridge(x, t, grid, per_target=False)[0],
            lambda x, coef: x @ coef, int(self.n_iter))
        return template, [self._map_subject(x, template) for x in blocks]

    def _map_subject(self, x: Array, template: Array) -> Maps:
        grid = self._grid()
        encoder, alpha = _ridge(x, template, grid, per_target=False)
        decoder, decoder_alphas = _ridge(template, x, grid, per_target=True)
        return encoder, decoder, {"alpha_": float(alpha[0]), "decoder_alphas_": decoder_alphas}
