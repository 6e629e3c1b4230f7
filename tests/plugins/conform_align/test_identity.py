"""The identity aligner matches units by id."""

from __future__ import annotations

import numpy as np
import pytest
from conform_align import IdentityAligner

from conform_core import ConditionData, ShapeError, Units


def _subject(name, unit_ids, data):
    ids = np.array([f"s{i}" for i in range(data.shape[1])])
    return ConditionData(data, ids, name, Units(ids=np.array(unit_ids), space="sheet"))


def test_shared_space_is_the_union_of_unit_ids_with_nan_where_missing():
    rng = np.random.default_rng(0)
    a = _subject("sub-a", ["u1", "u2", "u3"], rng.standard_normal((3, 6)))
    b = _subject("sub-b", ["u2", "u3", "u4"], rng.standard_normal((3, 6)))
    aligner = IdentityAligner().fit([a, b])
    assert aligner.shared_units_.ids.tolist() == ["u1", "u2", "u3", "u4"]
    assert aligner.n_components_ is None
    shared = aligner.transform(a)
    assert np.isnan(shared.data[3]).all() and np.isfinite(shared.data[:3]).all()
    # the template averages the subjects that have a unit (u1: a only; u2: both)
    centred = [x.data - x.data.mean(axis=1, keepdims=True) for x in (a, b)]
    np.testing.assert_allclose(aligner.template_.data[0], centred[0][0])
    np.testing.assert_allclose(aligner.template_.data[1], (centred[0][1] + centred[1][0]) / 2)
    # a round trip into the same subject gives its data back (centring undone)
    np.testing.assert_allclose(aligner.inverse_transform(shared, "sub-a").data, a.data)


def test_added_subject_with_unseen_units_falls_back_to_its_mean():
    rng = np.random.default_rng(0)
    a = _subject("sub-a", ["u1", "u2"], rng.standard_normal((2, 6)))
    b = _subject("sub-b", ["u1", "u2"], rng.standard_normal((2, 6)))
    c = _subject("sub-c", ["u2", "u9"], rng.standard_normal((2, 6)))
    aligner = IdentityAligner().fit([a, b]).add_subject(c)
    assert aligner.unmatched_units_ == {"sub-a": [], "sub-b": [], "sub-c": ["u9"]}
    predicted = aligner.inverse_transform(aligner.transform(a), "sub-c")
    np.testing.assert_allclose(predicted.data[1], c.data[1].mean())
    np.testing.assert_allclose(predicted.data[0], a.data[1] - a.data[1].mean() + c.data[0].mean())
    assert predicted.units.ids.tolist() == ["u2", "u9"]


def test_added_subject_with_no_common_unit_is_refused_with_the_fix():
    rng = np.random.default_rng(0)
    a = _subject("sub-a", ["u1", "u2"], rng.standard_normal((2, 6)))
    b = _subject("sub-b", ["u1", "u2"], rng.standard_normal((2, 6)))
    c = _subject("sub-c", ["v1", "v2"], rng.standard_normal((2, 6)))
    aligner = IdentityAligner().fit([a, b])
    with pytest.raises(ShapeError, match="has none of the 2 unit ids.*functional aligner"):
        aligner.add_subject(c)
