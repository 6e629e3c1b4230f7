"""Aligners: map several subjects' responses into a shared space and back.

The base class :class:`Aligner` does everything that is the same for every aligner, so that
a subclass only writes its algebra on whole-space, validated input:

- validation (two or more distinct subjects, no NaN unit, labels of the right length, at
  least 3 stimuli seen by every subject), each error naming the value and the fix;
- restriction of every subject to the stimuli they all saw (``shared_ids_``);
- ``n_components="auto"``: the shared-space dimension chosen by cross-validation within the
  training subjects;
- piecewise alignment (``labels``): one whole-space clone per parcel, fitted in threads;
- unpaired alignment (``via_encoder``): an encoder per subject predicts one common probe set of
  stimuli, and the aligner aligns those predictions.

This module is the contract: the public methods, the hooks a subclass writes and the common
parameters. The mechanisms live in private modules, as functions taking the aligner:
``_aligner_paired`` (restriction to shared stimuli), ``_aligner_cv`` (``n_components``),
``_aligner_piecewise`` (``labels``) and ``_aligner_unpaired`` (``via_encoder``, ``probe``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone

from ..constraints import (
    InstanceOf,
    Interval,
    NonEmptyStr,
    Options,
    PathLike,
    SequenceOf,
    check_param,
)
from ..data import ConditionData, StimulusSet
from ..exceptions import ShapeError, UnknownComponentError
from ..validation import check_instance, suggest
from ._aligner_cv import candidates as _candidates  # noqa: F401  (imported from here by tests)
from ._aligner_cv import choose_n_components
from ._aligner_paired import restrict_to_shared, restrict_to_template
from ._aligner_piecewise import (
    add_piecewise,
    fit_piecewise,
    inverse_piecewise,
    labels_of,
    transform_piecewise,
)
from ._aligner_unpaired import encode_new, encode_subjects, predict_with_encoder
from .base import Component, check_is_fitted

if TYPE_CHECKING:
    from .encoder import Encoder

__all__ = ["Aligner"]


class Aligner(Component):
    """Maps each subject's condition responses into a shared space, and back.

    ``fit`` takes one :class:`ConditionData` per subject (each with a distinct ``subject``,
    each with its own units, possibly a different number), learns a template and one map per
    subject. ``transform`` maps a fitted subject into the shared space; ``inverse_transform``
    maps shared responses into any fitted subject's units; ``add_subject`` maps a new person
    onto the fitted template without refitting the others (their maps stay bit-identical).

    Common parameters (every subclass lists them in its ``__init__`` with these defaults and
    merges ``Aligner._common_constraints`` / ``Aligner._common_fixes`` into its own
    ``_parameter_constraints`` / ``_parameter_fixes``; an aligner without a shared-space
    dimension, such as ``identity``, sets ``_has_n_components = False`` and leaves
    ``n_components`` out):

    - ``n_components`` (int >= 1, ``"auto"`` or None; default ``"auto"``): dimension of the
      shared space. ``"auto"`` scores a small geometric grid of values up to
      :meth:`_max_components` by leave-one-subject-out cross-validation within the training
      subjects (see ``_aligner_cv.cross_validate``); None takes the largest valid value.
    - ``labels`` (None, ``"roi"`` or one label per unit; default None): piecewise alignment,
      one whole-space aligner per parcel. ``"roi"`` reads each subject's ``units.roi``; a
      sequence needs every subject to have exactly that many units. Shared units are named
      ``p<label>:<unit>`` and concatenated in sorted label order.
    - ``via_encoder`` (None or an encoder name such as ``"ridge"``; default None): unpaired
      alignment. Each subject's encoder (``encoder_params``) is fitted on the embeddings of
      its own stimuli; every encoder predicts the same ``probe`` stimuli, and the aligner
      aligns those predictions, so no stimulus needs to be shared.
    - ``probe`` (int >= 3 or a path; default 500): how many of the stimuli given to ``fit``
      to draw (all of them when fewer), or a ``.npy`` file (n x d embeddings) or ``.npz``
      file (``ids`` and ``embeddings``).
    - ``n_jobs`` (int >= 1; default 1): parcels fitted in parallel (threads).
    - ``random_state`` (int >= 0; default 0): the cross-validation splits and the probe draw.

    Subclasses implement ``_fit(subjects, n_components)``, ``_add_subject``, ``_transform``
    and ``_inverse_transform`` on the whole space, and may override ``_max_components``.

    Attributes
    ----------
    subjects_ : list of str
        Subjects with a map (fitted, then added).
    shared_ids_ : ndarray of str
        Stimulus ids the paired fit used, in order: those every subject saw, or the probe ids
        with ``via_encoder``.
    n_components_ : int or None
        Dimension of the shared space (piecewise: summed over parcels; None for aligners
        without one).
    cv_scores_ : dict of int to float
        With ``n_components="auto"``: mean held-out R² of each candidate (empty otherwise;
        piecewise, each parcel's aligner has its own).
    parcels_ : dict of str to Aligner
        With ``labels``: the fitted whole-space aligner of each parcel (empty otherwise).
    encoders_ : dict of str to Encoder
        With ``via_encoder``: each subject's fitted encoder (empty otherwise).
    probe_ids_ : ndarray of str or None
        With ``via_encoder``: the probe's stimulus ids (None otherwise).
    """

    kind: ClassVar[str] = "aligner"
    consumes: ClassVar[tuple[type, ...]] = (ConditionData,)
    produces: ClassVar[type] = ConditionData
    _has_n_components: ClassVar[bool] = True

    _common_defaults: ClassVar[dict[str, Any]] = {
        "n_components": "auto", "labels": None, "via_encoder": None, "encoder_params": None,
        "probe": 500, "n_jobs": 1, "random_state": 0,
    }
    """The common parameters and their defaults (``n_components`` only with
    ``_has_n_components``)."""

    _common_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_components": [Interval(int, 1, None), Options(("auto",)), None],
        "labels": [Options(("roi",)),
                   SequenceOf([str, Interval(int, None, None)], min_length=1,
                              what="a list of one label (str or int) per unit"),
                   InstanceOf(np.ndarray, what="an array of one label per unit"), None],
        "via_encoder": [NonEmptyStr(what="an encoder name"), None],
        "encoder_params": [InstanceOf(dict), None],
        "probe": [Interval(int, 3, None), PathLike("file")],
        "n_jobs": [Interval(int, 1, None)],
        "random_state": [Interval(int, 0, None)],
    }
    _common_fixes: ClassVar[dict[str, str]] = {
        "n_components": "Use 'auto' to choose it by cross-validation within the training "
                        "subjects, or None for the largest valid value.",
        "labels": "Give one parcel label per unit, 'roi' to use each subject's units.roi, or "
                  "None to align the whole space at once.",
        "via_encoder": "Name an installed encoder such as 'ridge' (see `conform plugins`), or "
                       "None to align on the stimuli the subjects share.",
        "encoder_params": "Pass a dict of the encoder's parameters, e.g. {'alphas': [1.0, "
                          "10.0]}, or None for its defaults.",
        "probe": "Use a number of stimuli to draw (>= 3), or the path of a .npy file (n x d "
                 "embeddings) or .npz file (ids, embeddings).",
        "n_jobs": "Use 1 to fit parcels one after another, or the number of threads.",
        "random_state": "Use a non-negative int such as 0.",
    }

    # ------------------------------------------------------------------ public API
    def fit(self, subjects: Sequence[ConditionData],
            stimuli: StimulusSet | None = None) -> Aligner:
        """Learn the shared template and every subject's map; return self.

        Parameters
        ----------
        subjects : sequence of ConditionData
            One per subject, each with a distinct, non-empty ``subject``.
        stimuli : StimulusSet or None, default=None
            Embeddings of (at least) every stimulus of every subject; required with
            ``via_encoder`` (the probe is drawn from them), ignored otherwise.

        Returns
        -------
        Aligner
            self.

        Raises
        ------
        ShapeError
            Fewer than 2 subjects, repeated names, NaN units on the stimuli used, fewer than
            3 stimuli seen by every subject (paired), missing stimuli or embeddings
            (``via_encoder``), a probe file of the wrong dimension.
        ParameterError
            A bad parameter, labels of the wrong length, an ``n_components`` above what the
            data allow.
        """
        self.check_params()
        self._check_common_params()
        subjects = self._check_subjects(subjects)
        labels = labels_of(self, subjects)
        for stale in ("subjects_", "n_components_", "_labels", "_widths"):
            self.__dict__.pop(stale, None)
        self.cv_scores_: dict[int, float] = {}
        self.parcels_: dict[str, Aligner] = {}
        self.encoders_: dict[str, Encoder] = {}
        self.probe_ids_: NDArray[np.str_] | None = None
        if self._param("via_encoder") is not None:
            paired = encode_subjects(self, subjects, stimuli)
        else:
            paired = restrict_to_shared(self, subjects)
        self.shared_ids_ = np.array(paired[0].stimulus_ids)
        if labels is None:
            k = choose_n_components(self, paired) if self._has_n_components else None
            self._fit_paired(paired, k)
        else:
            fit_piecewise(self, paired, labels)
        self._units = {s.subject: s.units for s in subjects}
        return self

    def add_subject(self, data: ConditionData, stimuli: StimulusSet | None = None) -> Aligner:
        """Map a new subject onto the fitted template, without refitting the others; return self.

        Parameters
        ----------
        data : ConditionData
            The new subject's responses. Paired: it must share at least 3 of the template's
            stimuli (``shared_ids_``), and only those are used.
        stimuli : StimulusSet or None, default=None
            With ``via_encoder``: embeddings of the new subject's stimuli (its encoder is
            fitted on its own images only, then predicts the probe).

        Raises
        ------
        ShapeError
            Fewer than 3 stimuli shared with the template (with the fix), NaN units, missing
            stimuli or embeddings.
        """
        check_is_fitted(self)
        check_instance(data, ConditionData, name="data")
        labels = labels_of(self, [data], fitted=True) if self._piecewise() else None
        if self._param("via_encoder") is not None:
            paired = encode_new(self, data, stimuli)
        else:
            paired = restrict_to_template(self, data)
        if self._piecewise():
            assert labels is not None
            add_piecewise(self, paired, labels[data.subject])
        else:
            self._add_subject(paired)
        if data.subject not in self.subjects_:
            self.subjects_.append(data.subject)
        self._units[data.subject] = data.units
        return self

    def transform(self, data: ConditionData) -> ConditionData:
        """Map ``data`` (of a fitted subject, by ``data.subject``) into the shared space.

        Returns
        -------
        ConditionData
            Shared-space responses to ``data``'s stimuli (subject ``""``).
        """
        check_is_fitted(self)
        check_instance(data, ConditionData, name="data")
        self._check_known(data.subject)
        self._check_units(data)
        if self._piecewise():
            return transform_piecewise(self, data)
        return self._transform(data)

    def inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        """Map shared-space responses into ``subject``'s units (with its unit ids).

        Raises
        ------
        UnknownComponentError
            If ``subject`` was neither fitted nor added (fix: ``add_subject``).
        """
        check_is_fitted(self)
        check_instance(shared, ConditionData, name="shared")
        self._check_known(subject)
        out = (inverse_piecewise(self, shared, subject) if self._piecewise()
               else self._inverse_transform(shared, subject))
        units = getattr(self, "_units", {}).get(subject)
        if units is None:
            return out
        if out.n_units != units.n_units:  # a bug of the subclass, said before it spreads
            raise ShapeError(
                f"{type(self).__name__}._inverse_transform into {subject!r} ({units.n_units} "
                f"units) gave {out.n_units} units; it must return one row per unit of the "
                "subject.")
        return ConditionData(out.data, out.stimulus_ids, subject, units)

    def predict_responses(self, subject: str, stimuli: StimulusSet) -> ConditionData:
        """Predict ``subject``'s responses to ``stimuli`` with its encoder (``via_encoder`` only).

        Used for test stimuli that no other subject saw.

        Raises
        ------
        ParameterError
            If the aligner was not fitted through an encoder.
        ShapeError
            If ``stimuli`` carry no embeddings.
        """
        check_is_fitted(self)
        self._check_known(subject)
        return predict_with_encoder(self, subject, stimuli)

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _fit(self, subjects: list[ConditionData], n_components: int | None) -> Aligner:
        """Fit on validated subjects restricted to the same stimuli, in the same order.

        ``n_components`` is an int (None when ``_has_n_components`` is False). Must set
        ``subjects_`` (list of names) and ``n_components_``.
        """

    @abstractmethod
    def _add_subject(self, data: ConditionData) -> Aligner:
        """Map one more subject onto the template (``data`` restricted to template stimuli)."""

    @abstractmethod
    def _transform(self, data: ConditionData) -> ConditionData:
        """Map a known subject into the shared space."""

    @abstractmethod
    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        """Map shared responses into a known subject's units."""

    def _max_components(self, subjects: list[ConditionData]) -> int:
        """Largest valid shared dimension: ``min(n_shared - 1, fewest units)``.

        ``subjects`` are restricted to the same stimuli. Override when the aligner allows
        more or fewer.
        """
        return max(1, min([subjects[0].n_conditions - 1] + [s.n_units for s in subjects]))

    # ------------------------------------------------------------------ validation
    def _param(self, name: str) -> Any:
        """Return a common parameter's value (its default when the subclass does not take it)."""
        if name == "n_components" and not self._has_n_components:
            return None
        return getattr(self, name, self._common_defaults[name])

    def _piecewise(self) -> bool:
        return bool(getattr(self, "parcels_", None))

    def _check_common_params(self) -> None:
        """Check common parameters the subclass takes but did not declare."""
        declared = type(self)._parameter_constraints
        for name, constraints in self._common_constraints.items():
            if name in declared or name not in self.param_names():
                continue
            check_param(getattr(self, name), constraints, name=name, owner=self,
                        fix=self._common_fixes.get(name, ""))

    def _check_subjects(self, subjects: Any) -> list[ConditionData]:
        name = type(self).__name__
        if isinstance(subjects, ConditionData) or not isinstance(subjects, Sequence):
            raise ShapeError(f"{name}.fit takes a list of ConditionData, one per subject; got "
                             f"{type(subjects).__name__}.")
        names = [check_instance(s, ConditionData, name=f"subjects[{i}]").subject
                 for i, s in enumerate(subjects)]
        if len(names) < 2:
            raise ShapeError(
                f"{name}.fit needs at least 2 subjects to align; got {len(names)} ({names}). "
                "Pass every training subject's ConditionData in one list; a new subject is "
                "mapped later with add_subject(...).")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated or "" in names:
            raise ShapeError(
                f"Each subject's ConditionData needs a distinct, non-empty .subject; got {names} "
                f"(repeated: {repeated or ['']}). Name each subject once, e.g. "
                "ConditionData(data, ids, subject='sub-01').")
        return list(subjects)

    def _check_known(self, subject: str) -> None:
        known = list(getattr(self, "subjects_", []))
        if subject not in known:
            raise UnknownComponentError(
                f"{type(self).__name__} has no map for subject {subject!r}; fitted subjects: "
                f"{known}.{suggest(subject, known)} Use add_subject(...) to map a new subject.")

    def _check_units(self, data: ConditionData) -> None:
        units = getattr(self, "_units", {}).get(data.subject)
        if units is not None and units.n_units != data.n_units:
            raise ShapeError(
                f"Subject {data.subject!r} was aligned with {units.n_units} units; got "
                f"{data.n_units}. Pass the same units, in the same order, as to fit/add_subject.")

    # ------------------------------------------------------------------ whole space
    def _fit_paired(self, paired: list[ConditionData], k: int | None) -> None:
        self._units = {s.subject: s.units for s in paired}
        self._fit(paired, k)
        names = [s.subject for s in paired]
        if list(getattr(self, "subjects_", [])) != names:
            self.subjects_ = names
        if not hasattr(self, "n_components_"):
            self.n_components_ = k

    def _whole_clone(self) -> Aligner:
        """Return a clone with the same parameters that aligns the whole space on paired data."""
        est = clone(self)
        names = est.param_names()
        est.set_params(**{k: None for k in ("labels", "via_encoder", "encoder_params")
                          if k in names})
        return est
