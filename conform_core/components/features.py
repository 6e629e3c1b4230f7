"""Image features: stimuli in, embeddings (n_stimuli x n_features, float32) out."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..data import StimulusSet
from ..exceptions import ShapeError
from ..validation import check_instance
from .base import Component

__all__ = ["Features"]


class Features(Component):
    """Computes a feature vector per stimulus.

    ``fit`` is usually a no-op (pretrained models); ``transform(stimuli)`` returns a
    float32 array of shape (n_stimuli, n_features) in the order of ``stimuli.ids``.
    Subclasses implement ``_transform``.

    Attributes
    ----------
    fingerprint_ : str
        Identifies the exact model behind the features (e.g. a SHA-256 of its configuration
        and weights), so that a record of the parameters alone is not mistaken for the
        model. Plugins that can tell set it in ``fit``; ``""`` (the default) means unknown.
        Tools that record provenance (``conform design``) store it with the plugin's name,
        version and ``get_params()``.
    feature_space_ : str
        Names the embedding space, readable by people: ``clip:<model>:<weights sha256>``,
        ``precomputed`` (or what the user declared). Models trained on embeddings (BraInCoRL)
        record it and refuse features from another space; ``""`` (the default) means unknown,
        and only the dimension can be checked.
    """

    fingerprint_: str = ""
    feature_space_: str = ""

    kind: ClassVar[str] = "features"
    consumes: ClassVar[tuple[type, ...]] = (StimulusSet,)
    produces: ClassVar[type] = np.ndarray

    def fit(self, stimuli: Any = None) -> Features:
        """Prepare the extractor (no-op by default); return self."""
        self.check_params()
        self.is_ready_ = True
        return self

    def transform(self, stimuli: StimulusSet) -> NDArray[np.float32]:
        """Embed ``stimuli``; returns float32 of shape (n_stimuli, n_features)."""
        check_instance(stimuli, StimulusSet, name="stimuli")
        out = np.asarray(self._transform(stimuli), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != stimuli.n_stimuli:
            raise ShapeError(
                f"{type(self).__name__} returned features of shape {out.shape}; expected "
                f"({stimuli.n_stimuli}, n_features). This is a bug in the plugin."
            )
        return out

    def fit_transform(self, stimuli: StimulusSet) -> NDArray[np.float32]:
        """Fit and embed."""
        return self.fit(stimuli).transform(stimuli)

    def check_stimuli(self, stimuli: StimulusSet) -> None:
        """Check, without computing anything, that ``stimuli`` can be embedded.

        ``conform fit`` calls this before any work starts with the dataset's stimuli
        (:meth:`Dataset.stimulus_set`), so a missing embeddings file or image folder is
        reported at once rather than once per subject. The default checks nothing.

        Raises
        ------
        ConformError
            Naming what is missing and how to provide it.
        """

    def output_dim(self, stimuli: StimulusSet) -> int | None:
        """Return the length of the vectors ``transform`` would give, if known without computing.

        ``conform fit`` passes it, with ``feature_space_``, to each encoder's
        :meth:`~conform_core.components.Encoder.check_features` before any work starts. The
        default, None, means "not known until the features are computed".
        """
        return None

    @abstractmethod
    def _transform(self, stimuli: StimulusSet) -> NDArray[np.floating]:
        """Embed validated stimuli."""
