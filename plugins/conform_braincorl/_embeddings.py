"""Unit-length embeddings: what every BraInCoRL model reads, in training and in use."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ShapeError


def unit_normalize(x: NDArray[np.floating]) -> NDArray[np.floating]:
    """Return the rows of ``x`` divided by their L2 norm (float32 stays float32, else float64).

    Raises
    ------
    ShapeError
        If a row is all zeros: BraInCoRL reads the direction of each embedding, which a zero
        vector does not have.
    """
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    norms = np.linalg.norm(np.asarray(x, dtype=np.float64), axis=-1, keepdims=True)
    zero = np.flatnonzero(norms.reshape(-1) == 0)
    if zero.size:
        raise ShapeError(
            f"Feature rows {zero[:5].tolist()} are all zeros; BraInCoRL reads the direction of "
            "each embedding (it scales rows to unit length), which a zero vector does not have. "
            "Check the features of those stimuli.")
    return (x / norms).astype(dtype, copy=False)
