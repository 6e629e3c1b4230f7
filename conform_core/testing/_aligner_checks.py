"""The contract checks of aligners (part of :mod:`conform_core.testing.checks`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone

from ..components import Aligner, Component
from ..data import ConditionData
from ..exceptions import ConformError, UnknownComponentError
from . import fakes

__all__ = ["check_aligner_add_subject_keeps_others", "check_aligner_bad_input",
           "check_aligner_common_params", "check_aligner_piecewise", "check_aligner_round_trip",
           "check_aligner_via_encoder"]


def _same_value(x: Any, y: Any) -> bool:
    return type(x) is type(y) and bool(x == y)


def check_aligner_common_params(component: Component) -> None:
    """``__init__`` takes the common aligner parameters, with the base's defaults, and declares them.

    Every aligner lists ``labels``, ``via_encoder``, ``encoder_params``, ``probe``,
    ``n_jobs``, ``random_state`` (and ``n_components`` unless ``_has_n_components`` is False)
    with :attr:`Aligner._common_defaults`, and merges ``Aligner._common_constraints`` into its
    ``_parameter_constraints``.
    """
    cls = type(component)
    expected = {k: v for k, v in Aligner._common_defaults.items()
                if k != "n_components" or cls._has_n_components}
    signature = inspect.signature(cls.__init__)
    missing = sorted(set(expected) - set(signature.parameters))
    assert not missing, (
        f"{cls.__name__}.__init__ lacks the common aligner parameters {missing}; list them with "
        f"the defaults of Aligner._common_defaults ({expected})")
    wrong = {k: signature.parameters[k].default for k in expected
             if not _same_value(signature.parameters[k].default, expected[k])}
    assert not wrong, f"{cls.__name__} has defaults {wrong}; the common defaults are {expected}"
    if not cls._has_n_components:
        assert "n_components" not in signature.parameters, (
            f"{cls.__name__} sets _has_n_components = False but takes n_components")
    undeclared = sorted(set(expected) - set(cls._parameter_constraints))
    assert not undeclared, (
        f"{cls.__name__}._parameter_constraints does not declare {undeclared}; merge "
        "Aligner._common_constraints into it")


def check_aligner_round_trip(component: Component) -> None:
    """Subjects with different unit counts: ``transform``/``inverse_transform`` keep shapes and ids.

    Every subject's shared responses have the same units; ``inverse_transform`` returns
    the target subject's units (its ids), the stimuli of its input; ``add_subject`` maps a
    new subject; unknown subjects raise ``UnknownComponentError``.
    """
    subjects = fakes.make_subject_conditions(n_subjects=4)  # 10, 11, 12 and 13 units
    est = clone(component)
    assert est.fit(subjects[:3]) is est, "fit must return self"
    shared = [est.transform(s) for s in subjects[:3]]
    for s, out in zip(subjects[:3], shared):
        np.testing.assert_array_equal(out.stimulus_ids, s.stimulus_ids)
        assert list(out.units.ids) == list(shared[0].units.ids), (
            f"transform of {s.subject!r} gave shared units {list(out.units.ids)[:4]}..., not "
            f"those of {subjects[0].subject!r} ({list(shared[0].units.ids)[:4]}...): the shared "
            "space must be the same for every subject")
    back = est.inverse_transform(shared[0], subjects[1].subject)
    assert back.n_units == subjects[1].n_units and back.n_conditions == subjects[0].n_conditions, (
        f"inverse_transform into {subjects[1].subject!r} ({subjects[1].n_units} units) gave "
        f"{back.n_units} units x {back.n_conditions} conditions")
    np.testing.assert_array_equal(back.stimulus_ids, subjects[0].stimulus_ids)
    np.testing.assert_array_equal(back.units.ids, subjects[1].units.ids)
    assert back.subject == subjects[1].subject
    est.add_subject(subjects[3])
    assert est.transform(subjects[3]).n_units == shared[0].n_units
    assert est.inverse_transform(shared[0], subjects[3].subject).n_units == subjects[3].n_units
    unknown = ConditionData(subjects[0].data, subjects[0].stimulus_ids, "sub-unknown")
    for what, call in (("transform", lambda: est.transform(unknown)),
                       ("inverse_transform", lambda: est.inverse_transform(shared[0],
                                                                          "sub-unknown"))):
        try:
            call()
        except UnknownComponentError:
            continue
        raise AssertionError(f"{what} of an unknown subject did not raise UnknownComponentError")


def check_aligner_add_subject_keeps_others(component: Component) -> None:
    """``add_subject`` leaves the fitted subjects' transforms and inverses bit-identical."""
    subjects = fakes.make_subject_conditions(n_subjects=4)
    est = clone(component).fit(subjects[:3])

    def outputs() -> list[np.ndarray]:
        shared = est.transform(subjects[0])
        return [np.array(est.transform(s).data) for s in subjects[:3]] + [
            np.array(est.inverse_transform(shared, s.subject).data) for s in subjects[:3]]

    before = outputs()
    est.add_subject(subjects[3])
    changed = [i for i, (a, b) in enumerate(zip(before, outputs()))
               if not np.array_equal(a, b, equal_nan=True)]
    assert not changed, (
        f"add_subject changed the maps of fitted subjects (outputs {changed} differ); map a new "
        "subject without refitting the others")
    assert list(est.subjects_) == [s.subject for s in subjects], (
        f"subjects_ is {list(est.subjects_)} after add_subject")


def check_aligner_piecewise(component: Component) -> None:
    """With ``labels``, each parcel is aligned on its own and the shared spaces are concatenated.

    ``labels="roi"`` (subjects with different unit counts) and a list of labels (equal
    counts): the shared units are each parcel's, prefixed ``p<label>:``, in sorted label
    order; each block equals the parcel's own aligner; ``inverse_transform`` returns the
    subject's units.
    """
    cases = [("roi", fakes.make_subject_conditions(n_subjects=3, roi=True)),
             ([0] * 5 + [1] * 5, fakes.make_subject_conditions(n_subjects=3,
                                                                unit_counts=[10, 10, 10]))]
    for labels, subjects in cases:
        est = clone(component)
        assert "labels" in est.get_params(deep=False), f"{type(est).__name__} takes no labels"
        est.set_params(labels=labels)
        try:
            est.fit(subjects)
            outs = [est.transform(s) for s in subjects]
            back = est.inverse_transform(outs[0], subjects[1].subject)
        except ConformError:
            raise
        except Exception as exc:
            raise AssertionError(f"piecewise alignment with labels={labels!r} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
        names = sorted({str(x) for x in (np.asarray(labels) if labels != "roi" else ["A", "B"])})
        assert list(est.parcels_) == names, f"parcels_ has {list(est.parcels_)}, not {names}"
        for s, out in zip(subjects, outs):
            mask_of = (s.units.roi if labels == "roi" else np.asarray(labels).astype(str))
            ids: list[str] = []
            blocks: list[np.ndarray] = []
            for name, part in est.parcels_.items():
                piece = part.transform(s.take_units(mask_of == name))
                ids.extend(f"p{name}:{u}" for u in piece.units.ids.tolist())
                blocks.append(np.asarray(piece.data))
            assert out.units.ids.tolist() == ids, (
                f"piecewise shared units {out.units.ids.tolist()[:4]}... are not the parcels' "
                f"own, prefixed and concatenated ({ids[:4]}...)")
            np.testing.assert_array_equal(np.asarray(out.data), np.concatenate(blocks),
                                          err_msg="piecewise blocks differ from the parcels'")
        assert back.n_units == subjects[1].n_units, (
            f"piecewise inverse_transform gave {back.n_units} units, not {subjects[1].n_units}")
        np.testing.assert_array_equal(back.units.ids, subjects[1].units.ids)


def check_aligner_via_encoder(component: Component) -> None:
    """With ``via_encoder``, subjects that share no stimulus are aligned through a probe.

    Uses the registered ``"ridge"`` encoder (or the first registered one; the check does
    nothing when no encoder is installed).
    """
    from ..plugins import default_registry

    names = [e.name for e in default_registry().entries() if e.kind == "encoder"]
    if not names:
        return
    encoder = "ridge" if "ridge" in names else names[0]
    subjects = fakes.make_subject_conditions(n_subjects=4, n_conditions=24, n_shared=0,
                                             n_features=4)
    stimuli = fakes.make_subject_stimuli(4, 24, n_shared=0, n_features=4)
    est = clone(component)
    est.set_params(via_encoder=encoder, probe=40)
    assert est.fit(subjects[:3], stimuli=stimuli) is est, "fit must return self"
    assert est.probe_ids_ is not None and len(est.probe_ids_) == 40, (
        f"probe_ids_ is {est.probe_ids_!r}; expected 40 ids drawn from the stimuli given")
    np.testing.assert_array_equal(est.shared_ids_, est.probe_ids_)
    shared = [est.transform(s) for s in subjects[:3]]
    assert len({tuple(out.units.ids.tolist()) for out in shared}) == 1, "shared units differ"
    back = est.inverse_transform(shared[0], subjects[1].subject)
    assert back.n_units == subjects[1].n_units
    np.testing.assert_array_equal(back.stimulus_ids, subjects[0].stimulus_ids)
    unseen = stimuli.select(subjects[0].stimulus_ids[:5])
    predicted = est.predict_responses(subjects[1].subject, unseen)
    assert predicted.data.shape == (subjects[1].n_units, 5), (
        f"predict_responses gave shape {predicted.data.shape}, not {(subjects[1].n_units, 5)}")
    np.testing.assert_array_equal(predicted.stimulus_ids, unseen.ids)
    before = [np.array(out.data) for out in shared]
    est.add_subject(subjects[3], stimuli=stimuli)
    assert est.transform(subjects[3]).n_units == shared[0].n_units
    after = [np.array(est.transform(s).data) for s in subjects[:3]]
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after)), (
        "add_subject (via_encoder) changed the fitted subjects' maps")


def check_aligner_bad_input(component: Component) -> None:
    """One subject, NaN units, no shared stimuli and labels of the wrong length are refused.

    Each with a :class:`~conform_core.exceptions.ConformError` naming the problem (the
    base class's validation, which an aligner must not bypass).
    """
    subjects = fakes.make_subject_conditions()
    bad_cases: list[tuple[str, Callable[[], Any], str]] = [
        ("one subject", lambda: clone(component).fit(subjects[:1]), "at least 2 subjects"),
        ("a NaN unit", lambda: clone(component).fit(
            [subjects[0].with_data(np.where(np.arange(10)[:, None] == 2, np.nan,
                                            subjects[0].data)), *subjects[1:]]), "NaN"),
        ("no shared stimuli", lambda: clone(component).fit(
            fakes.make_subject_conditions(n_shared=0)), "via_encoder"),
        ("labels of the wrong length", lambda: clone(component).set_params(
            labels=[0] * 4).fit(subjects), "labels"),
    ]
    for what, call, needle in bad_cases:
        try:
            call()
        except ConformError as exc:
            assert needle in str(exc), (
                f"{type(component).__name__}.fit with {what} raised {exc!r}, which does not "
                f"mention {needle!r}")
            continue
        raise AssertionError(f"{type(component).__name__}.fit accepted {what}")
