"""Ridge alignment: ridge maps to and from an iteratively refined k-dimensional template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from conform_core import ConditionData
from conform_core.constraints import Interval, SequenceOf
from conform_core.linalg import LeaveOneOutRidge

from ._algebra import Array, initial_template, refine_template
from ._linear import LinearAligner, Maps, common_constraints, common_fixes, peak_words

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["RidgeAligner"]

#: Default alpha grid, relative to the mean non-zero eigenvalue of the predictors' Gram matrix.
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))


class _Ridge:
    """Ridge maps from one centred predictor matrix ``x``, alpha by leave-one-out (GCV).

    The thin SVD of ``x`` is made once (:class:`~conform_core.linalg.LeaveOneOutRidge`), so a
    subject's block serves every template iteration and its final map, and the template
    serves every subject's map back. The grid is relative to the mean non-zero eigenvalue of
    ``xᵀx`` (approximated by ``||x||² / min(x.shape)``).
    """

    def __init__(self, x: Array, alphas: Array) -> None:
        self.x = x
        self.scale = float(np.sum(x**2)) / max(1, min(x.shape))
        self.solver = LeaveOneOutRidge(x, alphas * self.scale) if self.scale > 0 else None

    def fit(self, y: Array, *, per_target: bool) -> tuple[Array, Array]:
        """Return (coef n_x x n_y, the chosen relative alphas: one, or one per target)."""
        if self.solver is None:
            return np.zeros((self.x.shape[1], y.shape[1])), np.full(1, np.nan)
        coef, index, _ = self.solver.fit(y, per_target=per_target)
        alphas = self.solver.alphas[index] / self.scale
        return np.asarray(coef, dtype=np.float64), alphas if per_target else alphas[:1]


class RidgeAligner(LinearAligner):
    """Align subjects with ridge maps to and from a shared k-dimensional template.

    Each subject's centred responses on the shared stimuli are mapped onto the template by a
    ridge regression (units -> k components), and back by another (k components -> each
    unit). The penalties are chosen by efficient leave-one-out cross-validation (GCV, the
    closed form of scikit-learn's ``RidgeCV``: :class:`conform_core.linalg.LeaveOneOutRidge`,
    one SVD per subject and one of the template per fit) in a logarithmic grid: one alpha per
    subject for the map in, one per unit for the map back. The template starts as the leading
    principal components of the subjects' concatenated responses and is replaced ``n_iter``
    times by the mean of the subjects' predictions of it (hyperalignment style); the maps in
    are fitted to that template, and ``template_`` is then the mean of the mapped subjects,
    which the maps back are fitted on: they learn from the kind of input a prediction gives
    them (a mean of mapped subjects, which the ridge maps in shrink). Unlike orthogonal maps,
    ridge maps need no more units than components and may mix and rescale them, which suits
    subjects with different numbers of units.

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

    def peak_memory(self, size: DataSize) -> int | None:
        """Return the peak bytes of ``fit`` plus ``transform`` of every subject.

        ``8 * (6 S U C + 3 S U k + A U k + S C^2)`` with A alphas (see
        :func:`~conform_align._linear.peak_words`): each subject's responses in float64,
        centred, transformed, and the thin SVD of its block kept for the whole fit (units x
        k and conditions x k factors); its maps; the per-target leave-one-out of the maps
        back, which scores every alpha for every unit (A units x k arrays); the template's
        Gram matrices.
        """
        return peak_words(self, size, data=6, maps=3, plan=len(self._grid()))

    def _grid(self) -> Array:
        return np.asarray(self.alphas, dtype=np.float64)

    def _max_components(self, subjects: list[ConditionData]) -> int:
        # ridge maps need no more units than components; the template's rank is the limit
        return max(1, min(s.n_conditions for s in subjects) - 1)

    def _fit_maps(self, blocks: list[Array], n_components: int) -> tuple[Array, list[Maps]]:
        grid = self._grid()
        solvers = [_Ridge(x, grid) for x in blocks]  # one SVD per subject for the whole fit
        template, encoders = refine_template(
            solvers, initial_template(blocks, n_components),
            lambda ridge, t: ridge.fit(t, per_target=False),
            lambda ridge, fitted: ridge.x @ fitted[0], int(self.n_iter))
        # The maps back learn from what the maps in produce: the mean of the mapped subjects
        # (one more template update, as fmralign's template loop ends). At prediction time a
        # decoder receives such a mean of ridge predictions, which a ridge shrinks; fitted on
        # the template the maps in were fitted to, it would see inputs of another scale.
        template = np.mean([ridge.x @ fitted[0] for ridge, fitted in zip(solvers, encoders)],
                           axis=0)
        back = _Ridge(template, grid)  # one SVD of the template for every subject's map back
        return template, [self._maps(ridge, back, encoder)
                          for ridge, encoder in zip(solvers, encoders)]

    def _map_subject(self, x: Array, template: Array) -> Maps:
        grid = self._grid()
        ridge = _Ridge(x, grid)
        return self._maps(ridge, _Ridge(template, grid), ridge.fit(template, per_target=False))

    @staticmethod
    def _maps(ridge: _Ridge, back: _Ridge, encoder: tuple[Array, Array]) -> Maps:
        decoder, decoder_alphas = back.fit(ridge.x, per_target=True)
        return encoder[0], decoder, {"alpha_": float(encoder[1][0]),
                                     "decoder_alphas_": decoder_alphas}
