"""Procrustes alignment: orthogonal maps of every subject onto an iteratively refined template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from conform_core.constraints import Boolean, Interval

from ._algebra import Array, initial_template, orthogonal_map, refine_template
from ._linear import LinearAligner, Maps, common_constraints, common_fixes, peak_words

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["ProcrustesAligner"]


def procrustes_maps(blocks: list[Array], n_components: int, *, n_iter: int,
                    scaling: bool) -> tuple[Array, list[Maps]]:
    """Generalised Procrustes: template and each block's (encoder, decoder).

    Shared by :class:`ProcrustesAligner` and the deterministic form of the SRM aligner,
    which solve the same problem (a shared response and orthogonal maps, by block
    coordinate descent from the same initial template).
    """
    template, maps = refine_template(
        blocks, initial_template(blocks, n_components),
        lambda x, t: orthogonal_map(x, t, scaling=scaling),
        lambda x, m: (x @ m[0]) * m[1], n_iter)
    return template, [(r * scale, r.T / scale, {}) for r, scale in maps]


class ProcrustesAligner(LinearAligner):
    """Align subjects with orthogonal (Procrustes) maps onto an iteratively refined template.

    Each subject's condition means on the stimuli every subject saw, centred per unit, are
    rotated onto a template of ``n_components`` dimensions (generalised Procrustes, as in
    hyperalignment): the template starts as the leading principal components of the
    subjects' concatenated responses and is replaced by the average of the aligned subjects
    ``n_iter`` times. ``inverse_transform`` maps shared responses back with the transpose of
    the map (divided by the scale, with ``scaling=True``).

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Dimension of the shared space: "auto" chooses it by cross-validation within the
        training subjects; None takes the largest valid value (the number of shared stimuli
        minus one, or the smallest unit count if lower).
    scaling : bool, default=False
        Also fit one scale factor per subject (scaled orthogonal Procrustes).
    n_iter : int, default=3
        Template refinements (0 keeps the principal-component template).
    labels : None, "roi" or sequence, default=None
        Piecewise alignment: one parcel label per unit ("roi": each subject's ROI labels).
    via_encoder : str or None, default=None
        Align without shared stimuli, through this encoder's predictions of a probe set.
    encoder_params : dict or None, default=None
        Parameters of that encoder.
    probe : int or str, default=500
        Probe stimuli drawn from those given to fit, or a file of embeddings.
    n_jobs : int, default=1
        Parcels fitted in parallel.
    random_state : int, default=0
        Seed of the cross-validation splits and the probe draw.

    Attributes
    ----------
    subjects_ : list of str
        Subjects with a map.
    n_components_ : int
        Dimension of the shared space.
    maps_ : dict of str to ndarray of shape (n_units, n_components_)
        Each subject's map into the shared space (``scale * R``).
    inverse_maps_ : dict of str to ndarray of shape (n_components_, n_units)
        Each subject's map back (``R.T / scale``).
    means_ : dict of str to ndarray of shape (n_units,)
        Each subject's unit means over the shared training stimuli.
    template_ : ConditionData
        The shared-space template (n_components_ x shared stimuli).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **common_constraints(),
        "scaling": [Boolean()],
        "n_iter": [Interval(int, 0, None)],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        **common_fixes(),
        "n_iter": "Use a small count such as 3 (0 keeps the first template).",
    }

    def __init__(self, n_components: int | str | None = "auto", scaling: bool = False,
                 n_iter: int = 3, labels: str | Sequence[str | int] | None = None,
                 via_encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 probe: int | str = 500, n_jobs: int = 1, random_state: int = 0):
        self.n_components = n_components
        self.scaling = scaling
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
        each subject's responses in float64, centred, and transformed; its orthogonal map
        and the SVD factors that make it (units x k); the template's Gram matrices.
        """
        return peak_words(self, size, data=3, maps=2)

    def _fit_maps(self, blocks: list[Array], n_components: int) -> tuple[Array, list[Maps]]:
        return procrustes_maps(blocks, n_components, n_iter=int(self.n_iter),
                               scaling=bool(self.scaling))

    def _map_subject(self, x: Array, template: Array) -> Maps:
        r, scale = orthogonal_map(x, template, scaling=bool(self.scaling))
        return r * scale, r.T / scale, {}
