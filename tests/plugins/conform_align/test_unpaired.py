"""Ground truth: alignment with no shared image at all (``via_encoder``) beats ``identity``.

No two subjects of the study see the same image (``stimulus_overlap=0``), so nothing can be
aligned on shared responses. Each subject's ridge encoder predicts a common probe set of
image embeddings and the subjects are aligned on those predictions. The held-out subject is
added from its own training images; its test images were seen by nobody else, so the other
subjects' responses to them are their encoders' predictions, mapped through the shared space
and back. ``identity`` through the same encoders (same unit id = same place) is the baseline.
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_align import IdentityAligner, RidgeAligner
from conform_synthetic import simulate_study
from threadpoolctl import threadpool_limits

from conform_core.data import StimulusSet

#: Five misregistered subjects, 100 units each on a 10 x 10 sheet, no image seen twice.
STUDY = dict(n_subjects=5, n_units=100, n_stimuli=500, n_features=32, n_latent=6, snr=1.0,
             tuning_length_scale=2.0, misregistration=1.5, stimulus_overlap=0.0)


def _held_out_r(aligner, study, held: int) -> float:
    """Mean over units of r between the predicted and the true held-out test responses."""
    stimuli = StimulusSet(ids=study.stimuli.ids, embeddings=study.stimuli.embeddings)
    subject = study.subjects[held]
    others = [s for i, s in enumerate(study.subjects) if i != held]
    train = {s.name: s.trials.by_condition(s.train_ids).mean() for s in study.subjects}
    with threadpool_limits(1):
        aligner.fit([train[s.name] for s in others], stimuli)
        aligner.add_subject(train[subject.name], stimuli)
        test = stimuli.select(subject.test_ids)
        shared = [aligner.transform(aligner.predict_responses(s.name, test)) for s in others]
        mean = shared[0].with_data(np.nanmean([s.data for s in shared], axis=0))
        predicted = aligner.inverse_transform(mean, subject.name).data
    truth = subject.truth.signal.select(subject.test_ids).data
    p = predicted - predicted.mean(axis=1, keepdims=True)
    t = truth - truth.mean(axis=1, keepdims=True)
    return float(np.mean((p * t).sum(axis=1) / np.sqrt((p**2).sum(axis=1) * (t**2).sum(axis=1))))


@pytest.fixture(scope="module")
def unpaired():
    return simulate_study(**STUDY, random_state=5)


def test_no_image_is_shared(unpaired):
    seen = [set(s.trials.stimulus_ids.tolist()) for s in unpaired.subjects]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])


def test_unpaired_alignment_beats_identity_with_no_shared_image(unpaired):
    held = range(2)
    aligned = np.mean([_held_out_r(RidgeAligner(via_encoder="ridge", n_components=6, probe=200),
                                   unpaired, h) for h in held])
    identity = np.mean([_held_out_r(IdentityAligner(via_encoder="ridge", probe=200), unpaired, h)
                        for h in held])
    # Identity reads every other subject's encoder at the same unit id, which a displacement
    # of about 1.5 units (tuning length 2) decorrelates (same-id true signals correlate about
    # 0.4 at this displacement, measured in tests/plugins/conform_synthetic); the functional
    # map learns the displacement from the probe predictions. Measured (seeds 5 and 6, held-out
    # subjects 0 and 1): aligned r 0.971-0.977, identity r 0.38-0.57. The margin of 0.1 is a
    # quarter of the smallest gap and above the spread between held-out subjects (0.05-0.2).
    assert aligned > identity + 0.1
