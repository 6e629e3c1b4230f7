"""Unpaired alignment through BraInCoRL: ``via_encoder="braincorl"`` runs end to end.

The model is tiny and untrained (random weights), so this checks plumbing only: every
subject's in-context readout predicts the probe, the subjects are aligned on those
predictions, a new person is added from its own images, and ``predict_responses`` gives a
subject's encoder prediction for images it never saw.
"""

from __future__ import annotations

import numpy as np

from conform_core.plugins import get_component
from conform_core.testing import fakes


def test_ridge_aligner_via_braincorl(tmp_path):
    from conform_braincorl.testing import tiny_untrained_checkpoint

    checkpoint = tiny_untrained_checkpoint(tmp_path / "tiny", embed_dim=5)
    # no stimulus shared between subjects: only an encoder can pair them
    subjects = fakes.make_subject_conditions(n_subjects=4, n_conditions=20, n_shared=0,
                                             n_features=5)
    stimuli = fakes.make_subject_stimuli(n_subjects=4, n_conditions=20, n_shared=0,
                                         n_features=5)
    aligner = get_component("aligner", "ridge")(
        via_encoder="braincorl", encoder_params={"checkpoint": str(checkpoint)}, probe=30,
        n_components=3)
    aligner.fit(subjects[:3], stimuli).add_subject(subjects[3], stimuli)
    assert set(aligner.encoders_) == {s.subject for s in subjects}
    assert type(aligner.encoders_["sub-01"]).__name__ == "BraInCoRLEncoder"
    unseen = stimuli.select(subjects[3].stimulus_ids)
    predicted = aligner.predict_responses("sub-01", unseen)
    assert predicted.n_units == subjects[0].n_units
    np.testing.assert_array_equal(predicted.stimulus_ids, unseen.ids)
    shared = aligner.transform(predicted)
    back = aligner.inverse_transform(shared, subjects[3].subject)
    assert back.n_units == subjects[3].n_units and np.isfinite(back.data).all()
