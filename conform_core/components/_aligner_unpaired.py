"""Unpaired alignment (``via_encoder``): align encoders' predictions of one probe set.

Private to :mod:`conform_core.components.aligner`. Each subject's encoder (``via_encoder``
with ``encoder_params``) is fitted on the embeddings of its own stimuli; every encoder
predicts the same ``probe`` stimuli, and those predictions are the paired input of the
aligner, so no stimulus needs to be shared. The aligner keeps the encoders
(``encoders_``), the probe's ids (``probe_ids_``) and its embeddings (``_probe_embeddings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData, StimulusSet
from ..exceptions import ParameterError, ShapeError
from ..validation import check_instance
from ._aligner_paired import MIN_SHARED, check_finite

if TYPE_CHECKING:
    from .aligner import Aligner
    from .encoder import Encoder


def encode_subjects(aligner: Aligner, subjects: list[ConditionData],
                    stimuli: StimulusSet | None) -> list[ConditionData]:
    """Fit every subject's encoder (``n_jobs`` threads); return their probe predictions."""
    from joblib import Parallel, delayed

    for s in subjects:  # every error before any encoder is fitted
        subject_features(aligner, s, stimuli, "fit")
    assert stimuli is not None
    ids, embeddings = draw_probe(aligner, stimuli)
    aligner.probe_ids_ = ids
    aligner._probe_embeddings = embeddings
    fitted = Parallel(n_jobs=aligner._param("n_jobs"), prefer="threads")(
        delayed(fit_encoder)(aligner, s, stimuli, "fit") for s in subjects)
    aligner.encoders_ = {s.subject: e for s, e in zip(subjects, fitted)}
    return [predict_probe(aligner, s, e) for s, e in zip(subjects, fitted)]


def encode_new(aligner: Aligner, data: ConditionData,
               stimuli: StimulusSet | None) -> ConditionData:
    """Fit a new subject's encoder on its own stimuli; return its probe prediction."""
    encoder = fit_encoder(aligner, data, stimuli, "add_subject")
    aligner.encoders_[data.subject] = encoder
    return predict_probe(aligner, data, encoder)


def predict_with_encoder(aligner: Aligner, subject: str,
                         stimuli: StimulusSet) -> ConditionData:
    """Predict a known subject's responses to ``stimuli`` with its encoder."""
    models = aligner.encoders_
    if subject not in models:
        raise ParameterError(
            f"{type(aligner).__name__} was fitted on shared stimuli, so it has no encoder to "
            f"predict {subject!r}'s responses. Fit it with $via_encoder='ridge' (or another "
            "encoder) to predict responses to unseen stimuli.", param="via_encoder",
            value=aligner._param("via_encoder"), owner=aligner)
    check_instance(stimuli, StimulusSet, name="stimuli")
    vectors = embeddings_of(stimuli, what="predict_responses")
    predicted = np.asarray(models[subject].predict(vectors))
    return ConditionData(predicted.T, stimuli.ids, subject, aligner._units[subject])


def new_encoder(aligner: Aligner) -> Encoder:
    """Return an unfitted ``via_encoder`` with ``encoder_params``, from the registry."""
    from ..plugins import get_component

    cls = get_component("encoder", aligner._param("via_encoder"))
    return cls(**dict(aligner._param("encoder_params") or {}))


def fit_encoder(aligner: Aligner, data: ConditionData, stimuli: StimulusSet | None,
                what: str) -> Encoder:
    """Fit a new encoder on one subject's stimuli (embeddings) and responses."""
    features = subject_features(aligner, data, stimuli, what)
    check_finite(data, "its stimuli")
    encoder = new_encoder(aligner)
    encoder.fit(features, np.asarray(data.as_targets()))
    return encoder


def predict_probe(aligner: Aligner, data: ConditionData, encoder: Encoder) -> ConditionData:
    """Return ``encoder``'s prediction of the probe, as ``data``'s subject and units."""
    predicted = np.asarray(encoder.predict(aligner._probe_embeddings))
    assert aligner.probe_ids_ is not None
    return ConditionData(predicted.T, aligner.probe_ids_, data.subject, data.units)


def draw_probe(aligner: Aligner,
               stimuli: StimulusSet) -> tuple[NDArray[np.str_], NDArray[np.float32]]:
    """Return the probe's ids and embeddings: drawn from ``stimuli``, or read from a file."""
    probe = aligner._param("probe")
    embeddings = embeddings_of(stimuli, what="fit")
    if isinstance(probe, (int, np.integer)):
        n = min(int(probe), stimuli.n_stimuli)
        if n < MIN_SHARED:
            raise ShapeError(
                f"{type(aligner).__name__} draws its probe from the {stimuli.n_stimuli} "
                f"stimuli given to fit; it needs at least {MIN_SHARED}. Pass the "
                "embeddings of every subject's stimuli, or a probe file.")
        rng = np.random.default_rng(aligner._param("random_state"))
        index = np.sort(rng.choice(stimuli.n_stimuli, size=n, replace=False))
        return np.asarray(stimuli.ids)[index], embeddings[index]
    ids, vectors = read_probe(Path(probe))
    if vectors.shape[1] != embeddings.shape[1]:
        raise ShapeError(
            f"The probe file {probe} holds {vectors.shape[1]}-dimensional embeddings but the "
            f"stimuli given to fit have {embeddings.shape[1]}. Make the probe file with the "
            "same feature extractor, or use probe=N to draw N of the given stimuli.")
    return ids, vectors


def embeddings_of(stimuli: StimulusSet, *, what: str) -> NDArray[np.float32]:
    """Return ``stimuli.embeddings``, or say how to compute them."""
    if stimuli.embeddings is None:
        raise ShapeError(
            f"The stimuli given to {what} carry no embeddings (StimulusSet.embeddings is None); "
            "an encoder needs a feature vector per stimulus. Compute features first (e.g. the "
            "'precomputed' or 'clip' features) and pass StimulusSet(ids, embeddings=...).")
    return np.asarray(stimuli.embeddings)


def subject_features(aligner: Aligner, data: ConditionData, stimuli: StimulusSet | None,
                     what: str) -> NDArray[np.float32]:
    """Return the embeddings of ``data``'s stimuli, in its order (clear errors when absent)."""
    via = aligner._param("via_encoder")
    if stimuli is None:
        raise ShapeError(
            f"{type(aligner).__name__} has via_encoder={via!r}, so {what} needs stimuli: a "
            "StimulusSet with the embeddings of every stimulus the subjects saw, e.g. "
            f"{what}(..., stimuli=features). Pass them, or set via_encoder=None to align on "
            "shared stimuli.")
    check_instance(stimuli, StimulusSet, name="stimuli")
    embeddings = embeddings_of(stimuli, what=what)
    known = set(stimuli.ids.tolist())
    missing = [sid for sid in data.stimulus_ids.tolist() if sid not in known]
    if missing:
        raise ShapeError(
            f"The stimuli given to {what} lack {len(missing)} of subject {data.subject!r}'s "
            f"stimuli, e.g. {missing[:3]}. Pass the embeddings of every stimulus it saw.")
    index = {sid: i for i, sid in enumerate(stimuli.ids.tolist())}
    return embeddings[[index[sid] for sid in data.stimulus_ids.tolist()]]


def read_probe(path: Path) -> tuple[NDArray[np.str_], NDArray[np.float32]]:
    """Read the probe's ids and embeddings from a ``.npy`` (n x d) or ``.npz`` file."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as saved:
            if "ids" not in saved or "embeddings" not in saved:
                raise ShapeError(
                    f"The probe file {path} must hold arrays 'ids' and 'embeddings'; it holds "
                    f"{sorted(saved.files)}. Save it with np.savez(path, ids=..., "
                    "embeddings=...).")
            ids, vectors = np.asarray(saved["ids"]).astype(str), np.asarray(saved["embeddings"])
    elif path.suffix == ".npy":
        vectors = np.load(path, allow_pickle=False)
        ids = np.array([f"probe{i:05d}" for i in range(len(vectors))])
    else:
        raise ShapeError(f"The probe file {path} must be a .npy (n x d embeddings) or .npz file "
                         "(ids, embeddings); convert it, or use probe=N.")
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0] or vectors.shape[0] < MIN_SHARED:
        raise ShapeError(
            f"The probe file {path} must hold at least {MIN_SHARED} embeddings as a 2-D array "
            f"(stimuli x features) with one id each; got embeddings of shape {vectors.shape} "
            f"and {ids.shape[0]} ids.")
    if not np.isfinite(vectors).all():
        raise ShapeError(f"The probe file {path} holds NaN or infinite embeddings; remove those "
                         "rows.")
    return ids, vectors.astype(np.float32)
