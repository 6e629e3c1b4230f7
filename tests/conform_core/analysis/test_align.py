"""Aligner scores follow the held-out subject's units."""

from __future__ import annotations

import numpy as np

from conform_core.analysis.align import _unit_order
from conform_core.data import ConditionData, Units


def _data(ids: list[str]) -> ConditionData:
    return ConditionData(
        np.zeros((len(ids), 2)), np.array(["a", "b"]), units=Units(ids=np.array(ids))
    )


def test_predictions_are_put_in_the_held_out_subjects_unit_order():
    order = _unit_order(_data(["x", "z", "y"]), _data(["x", "y", "z"]))
    assert order is not None and order.tolist() == [0, 2, 1]


def test_predictions_in_order_or_with_the_aligners_own_ids_keep_their_order():
    assert _unit_order(_data(["x", "y"]), _data(["x", "y"])) is None
    assert _unit_order(_data(["u0", "u1"]), _data(["x", "y"])) is None
