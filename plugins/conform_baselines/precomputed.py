"""Features that are already there: the embeddings stored in the StimulusSet."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from conform_core import Features, ShapeError, StimulusSet

__all__ = ["PrecomputedFeatures"]


class PrecomputedFeatures(Features):
    """Use ``StimulusSet.embeddings`` as the features (e.g. the simulator's, or your own CLIP).

    Parameters
    ----------
    normalize : bool, default=False
        L2-normalise each feature vector.
    """

    def __init__(self, normalize: bool = False):
        self.normalize = normalize

    def _transform(self, stimuli: StimulusSet) -> NDArray[np.float32]:
        if stimuli.embeddings is None:
            raise ShapeError(
                "The 'precomputed' features need embeddings in the StimulusSet, and this one has "
                "none. Give the dataset an embeddings file, or use features = \"clip\"."
            )
        out = np.array(stimuli.embeddings, dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(norms > 0, norms, 1)
        return out
