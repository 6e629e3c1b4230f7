"""The algebra every aligner shares: centring, orthogonal maps, templates, shared units.

Arrays here are conditions x units (the ``as_targets`` orientation), float64. No aligner
writes any of these twice: Procrustes, deterministic SRM, ridge and optimal transport all
build their templates with :func:`initial_template` and :func:`refine_template`, and
Procrustes, SRM (both forms) and ``add_subject`` of SRM use :func:`orthogonal_map`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from conform_core import ConditionData, Units

Array = NDArray[np.float64]
Map = TypeVar("Map")
Block = TypeVar("Block")


def as_float64(data: ConditionData) -> Array:
    """Return ``data`` as a float64 conditions x units array (a copy only when needed)."""
    return np.asarray(data.as_targets(), dtype=np.float64)


def centre(x: Array) -> tuple[Array, Array]:
    """Centre each unit (column) over conditions; return ``(centred, means)``."""
    mean = x.mean(axis=0)
    return x - mean, mean


def orthogonal_map(source: Array, target: Array, *, scaling: bool = False) -> tuple[Array, float]:
    """Solve the orthogonal Procrustes problem ``min ||scale * source @ R - target||_F``.

    Parameters
    ----------
    source : ndarray of shape (n_conditions, n_units)
    target : ndarray of shape (n_conditions, n_components)
    scaling : bool, default=False
        Also fit one positive scale factor (otherwise 1).

    Returns
    -------
    R : ndarray of shape (n_units, n_components)
        Orthonormal columns when ``n_units >= n_components`` (orthonormal rows otherwise).
    scale : float
    """
    u, s, vt = np.linalg.svd(source.T @ target, full_matrices=False)
    r = u @ vt
    norm2 = float(np.sum(source**2))
    scale = float(s.sum() / norm2) if scaling and norm2 > 0 and s.sum() > 0 else 1.0
    return r, scale


def initial_template(blocks: Sequence[Array], n_components: int) -> Array:
    """Leading principal components of the subjects' concatenated centred responses.

    The components are scaled to one subject's variance (the singular values of the
    concatenation divided by sqrt(n_subjects)), so that the template lives on the scale of a
    mapped subject. Computed from the conditions x conditions Gram matrix, so the cost does
    not grow with the number of units.

    Returns
    -------
    ndarray of shape (n_conditions, n_components)
    """
    gram = sum(x @ x.T for x in blocks)
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1][:n_components]
    scale = np.sqrt(np.clip(evals[order], 0.0, None) / len(blocks))
    template = evecs[:, order] * scale
    # a deterministic sign per component (eigh's signs are arbitrary): largest entry positive
    signs = np.sign(template[np.abs(template).argmax(axis=0), np.arange(template.shape[1])])
    return np.asarray(template * np.where(signs == 0, 1.0, signs))


def refine_template(
    blocks: Sequence[Block],
    template: Array,
    fit_map: Callable[[Block, Array], Map],
    apply_map: Callable[[Block, Map], Array],
    n_iter: int,
) -> tuple[Array, list[Map]]:
    """Hyperalignment-style template iteration.

    ``n_iter`` times: map every subject onto the template (``fit_map(x, template)``), and
    replace the template by the mean of the mapped subjects (``apply_map(x, map)``). Then
    map every subject onto the final template. A block is usually a subject's centred
    responses; it may be any object the two callables understand (the ridge aligner passes
    each subject's factorised solver, so that its SVD is made once per fit).

    Returns
    -------
    template : ndarray of shape (n_conditions, n_components)
    maps : list, one per block
        Each subject's map onto the returned template.
    """
    for _ in range(n_iter):
        maps = [fit_map(x, template) for x in blocks]
        template = np.mean([apply_map(x, m) for x, m in zip(blocks, maps)], axis=0)
    return template, [fit_map(x, template) for x in blocks]


def shared_units(n_components: int) -> Units:
    """Units of a k-dimensional shared space: ids ``c0000``, ``c0001``, ..."""
    return Units(ids=np.array([f"c{i:04d}" for i in range(n_components)]), space="shared")
