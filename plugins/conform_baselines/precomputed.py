"""Features that are already there: the embeddings stored in the StimulusSet."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core import Features, ShapeError, StimulusSet
from conform_core.constraints import Boolean, NonEmptyStr

__all__ = ["PrecomputedFeatures"]


class PrecomputedFeatures(Features):
    """Use ``StimulusSet.embeddings`` as the features (e.g. the simulator's, or your own CLIP).

    Parameters
    ----------
    normalize : bool, default=False
        L2-normalise each feature vector.
    space : str, default="precomputed"
        Name of the embedding space the stored embeddings come from, e.g.
        ``clip:ViT-B-32:<weights sha256>`` (see ``feature_space_``). Models trained on
        features record it and refuse features from another space, so name it when you mix
        embeddings from several backbones.

    Attributes
    ----------
    feature_space_ : str
        ``space``, once fitted.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "normalize": [Boolean()], "space": [NonEmptyStr()]}

    def __init__(self, normalize: bool = False, space: str = "precomputed"):
        self.normalize = normalize
        self.space = space

    def fit(self, stimuli: Any = None) -> PrecomputedFeatures:
        """Check the parameters and record the feature space; return self."""
        super().fit(stimuli)
        self.feature_space_ = self.space
        return self

    def check_stimuli(self, stimuli: StimulusSet) -> None:
        """Check that ``stimuli`` carry embeddings (the features this component returns).

        Raises
        ------
        ShapeError
            If ``stimuli.embeddings`` is None, saying how to provide them.
        """
        if stimuli.embeddings is None:
            raise ShapeError(
                f"The 'precomputed' features need embeddings in the StimulusSet, and the "
                f"{stimuli.n_stimuli} stimuli of this dataset have none. Give the dataset an "
                "embeddings file, or use features = \"clip\"."
            )

    def output_dim(self, stimuli: StimulusSet) -> int | None:
        """Return the length of the stored embeddings (None when there are none)."""
        return None if stimuli.embeddings is None else int(stimuli.embeddings.shape[1])

    def _transform(self, stimuli: StimulusSet) -> NDArray[np.float32]:
        self.check_stimuli(stimuli)
        assert stimuli.embeddings is not None
        out = np.array(stimuli.embeddings, dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(norms > 0, norms, 1)
        return out
