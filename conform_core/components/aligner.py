"""Aligners: map several subjects' responses into a shared space and back.

The base class :class:`Aligner` does everything that is the same for every aligner, so that
a subclass only writes its algebra on whole-space, validated input:

- validation (two or more distinct subjects, no NaN unit, labels of the right length, at
  least 3 stimuli seen by every subject), each error naming the value and the fix;
- restriction of every subject to the stimuli they all saw (``shared_ids_``);
- ``n_components="auto"``: the shared-space dimension chosen by cross-validation within the
  training subjects (:meth:`Aligner._cross_validate`);
- piecewise alignment (``labels``): one whole-space clone per parcel, fitted in threads;
- unpaired alignment (``via_encoder``): an encoder per subject predicts one common probe set of
  stimuli, and the aligner aligns those predictions.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
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
from ..data import ConditionData, StimulusSet, Units
from ..exceptions import ParameterError, ShapeError, UnknownComponentError
from ..validation import check_instance, suggest
from .base import Component, check_is_fitted

if TYPE_CHECKING:
    from .encoder import Encoder

__all__ = ["Aligner"]

_MIN_SHARED = 3
"""Fewest stimuli a paired aligner needs in common (a template of fewer cannot be centred
and still carry a direction)."""

_MAX_CANDIDATES = 7
"""Most values of n_components that "auto" scores."""

_MAX_LEFT_OUT = 3
"""Most training subjects "auto" leaves out in turn."""

_TIE = 1e-3
"""Mean held-out R² within this of the best counts as a tie (won by the smaller dimension):
smaller differences are below what two halves of the shared stimuli can tell apart."""

_VIA_FIX = "share a core of stimuli, or align through an encoder: via_encoder='ridge'"


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
      subjects (see :meth:`_cross_validate`); None takes the largest valid value.
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
        labels = self._labels_of(subjects)
        for stale in ("subjects_", "n_components_", "_labels", "_widths"):
            self.__dict__.pop(stale, None)
        self.cv_scores_: dict[int, float] = {}
        self.parcels_: dict[str, Aligner] = {}
        self.encoders_: dict[str, Encoder] = {}
        self.probe_ids_: NDArray[np.str_] | None = None
        self._encoder_models: dict[str, Encoder] = {}
        if self._param("via_encoder") is not None:
            paired = self._encode_subjects(subjects, stimuli)
        else:
            paired = self._restrict_to_shared(subjects)
        self.shared_ids_ = np.array(paired[0].stimulus_ids)
        if labels is None:
            k = self._choose_n_components(paired) if self._has_n_components else None
            self._fit_paired(paired, k)
        else:
            self._fit_piecewise(paired, labels)
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
        labels = self._labels_of([data], fitted=True) if self._piecewise() else None
        if self._param("via_encoder") is not None:
            paired = self._encode_new(data, stimuli)
        else:
            template = np.asarray(self.shared_ids_)
            ids = template[np.isin(template, data.stimulus_ids)]
            if ids.size < _MIN_SHARED:
                raise ShapeError(
                    f"Subject {data.subject!r} shares {ids.size} of the {template.size} template "
                    f"stimuli of {type(self).__name__}; adding a subject needs at least "
                    f"{_MIN_SHARED}. Give it responses to the template's stimuli (shared_ids_), "
                    f"or {_VIA_FIX}.")
            paired = data.select(ids)
            _check_finite(paired, "the template stimuli it shares")
        if self._piecewise():
            assert labels is not None
            self._add_piecewise(paired, labels[data.subject])
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
            return self._transform_piecewise(data)
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
        out = (self._inverse_piecewise(shared, subject) if self._piecewise()
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
        models = getattr(self, "_encoder_models", {})
        if subject not in models:
            raise ParameterError(
                f"{type(self).__name__} was fitted on shared stimuli, so it has no encoder to "
                f"predict {subject!r}'s responses. Fit it with $via_encoder='ridge' (or another "
                "encoder) to predict responses to unseen stimuli.", param="via_encoder",
                value=self._param("via_encoder"), owner=self)
        check_instance(stimuli, StimulusSet, name="stimuli")
        embeddings = _embeddings(stimuli, what="predict_responses")
        predicted = np.asarray(models[subject].predict(embeddings))
        return ConditionData(predicted.T, stimuli.ids, subject, self._units[subject])

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

    def _restrict_to_shared(self, subjects: list[ConditionData]) -> list[ConditionData]:
        shared = np.asarray(subjects[0].stimulus_ids)
        for s in subjects[1:]:
            shared = shared[np.isin(shared, s.stimulus_ids)]
        if shared.size < _MIN_SHARED:
            counts = {s.subject: s.n_conditions for s in subjects}
            raise ShapeError(
                f"{type(self).__name__} aligns on the stimuli every subject saw, and needs at "
                f"least {_MIN_SHARED}; these {len(subjects)} subjects share {shared.size} "
                f"(stimuli per subject: {counts}). To fix: {_VIA_FIX}.")
        paired = [s.select(shared) for s in subjects]
        for s in paired:
            _check_finite(s, "the shared stimuli")
        return paired

    def _labels_of(self, subjects: list[ConditionData], fitted: bool = False,
                   ) -> dict[str, NDArray[np.str_]] | None:
        """Each subject's parcel label per unit (as str), or None without ``labels``.

        ``fitted``: also check that the units fall in the fitted parcels (add_subject).
        """
        labels = self._param("labels")
        if labels is None:
            return None
        out = {}
        for s in subjects:
            if isinstance(labels, str):
                if s.units.roi is None:
                    raise ShapeError(
                        f"{type(self).__name__} has labels='roi' but the units of subject "
                        f"{s.subject!r} carry no ROI labels (units.roi is None). Load the data "
                        "with ROI labels, or pass labels=<one parcel label per unit>.")
                out[s.subject] = np.asarray(s.units.roi).astype(str)
                continue
            array = np.asarray(labels)
            if array.ndim != 1 or array.shape[0] != s.n_units:
                raise ParameterError(
                    f"$labels has {array.size} labels but subject {ParameterError.quote(repr(s.subject))} "
                    f"has {s.n_units} units. Give one parcel label per unit (every subject then "
                    "needs that many units), or use $labels='roi' to read each subject's "
                    "units.roi.", param="labels", value=labels, owner=self)
            out[s.subject] = array.astype(str)
        if fitted:
            known = list(self.parcels_)
            for name, lab in out.items():
                extra = sorted(set(lab.tolist()) - set(known))
                missing = sorted(set(known) - set(lab.tolist()))
                if extra or missing:
                    raise ShapeError(
                        f"Subject {name!r} has units in parcels {extra} that the aligner was not "
                        f"fitted on and none in {missing}; fitted parcels: {known}. Give it "
                        "units in every fitted parcel and no other (e.g. data.take_units(mask)).")
        return out

    # ------------------------------------------------------------------ whole space
    def _fit_paired(self, paired: list[ConditionData], k: int | None) -> None:
        self._units = {s.subject: s.units for s in paired}
        self._fit(paired, k)
        names = [s.subject for s in paired]
        if list(getattr(self, "subjects_", [])) != names:
            self.subjects_ = names
        if not hasattr(self, "n_components_"):
            self.n_components_ = k

    def _choose_n_components(self, paired: list[ConditionData]) -> int:
        value = self._param("n_components")
        limit = self._max_components(paired)
        if value is None:
            return limit
        if value == "auto":
            return self._cross_validate(paired, limit)
        k = int(value)
        if k > limit and getattr(self, "_clip_components", False):
            return limit
        if k > limit:
            raise ParameterError(
                param="n_components", value=value, owner=self,
                allowed=f"at most {limit} here (the shared stimuli minus one, and each "
                        "subject's number of units)",
                fix="Use 'auto' to choose it by cross-validation, or None for the largest.")
        return k

    def _cross_validate(self, paired: list[ConditionData], limit: int) -> int:
        """Choose ``n_components`` by cross-validation within the training subjects.

        The shared stimuli are split at random into two halves. For at most 3 left-out
        subjects (chosen by ``random_state``) and each half A: a clone is fitted on the
        other subjects' responses to half A, the left-out subject is added from its half A,
        and its half B is predicted by mapping the others' half B into the shared space,
        averaging and mapping back; the score is the mean R² over its units. Candidates are
        1, 2, 4, ... up to the largest value a half allows (that value included; at most 7,
        geometric). The best mean wins; ties (within 0.001) go to the smaller. With two
        subjects, both are fitted on half A and each predicts the other's half B. With fewer
        than 6 shared stimuli there are no two halves of 3: the largest value is kept,
        unscored.
        """
        ids = np.asarray(paired[0].stimulus_ids)
        if ids.size < 2 * _MIN_SHARED:
            return limit
        rng = np.random.default_rng(self._param("random_state"))
        order = rng.permutation(ids.size)
        halves = (ids[np.sort(order[: ids.size // 2])], ids[np.sort(order[ids.size // 2:])])
        left_out = np.sort(rng.choice(len(paired), size=min(_MAX_LEFT_OUT, len(paired)),
                                      replace=False))
        cap = min([limit] + [self._max_components([s.select(h) for s in paired])
                             for h in halves])
        scores = {}
        for k in _candidates(max(1, cap)):
            folds = [self._cv_score(paired, int(j), halves[a], halves[1 - a], k)
                     for j in left_out for a in (0, 1)]
            scores[k] = float(np.mean(folds))
        self.cv_scores_ = scores
        top = max(np.nan_to_num(v, nan=-np.inf) for v in scores.values())
        return int(min([k for k, v in scores.items() if np.isfinite(v) and v >= top - _TIE]
                       or [min(scores)]))

    def _cv_score(self, paired: list[ConditionData], j: int, train: NDArray[np.str_],
                  test: NDArray[np.str_], k: int) -> float:
        est = self._whole_clone()
        target = paired[j]
        others = [s for i, s in enumerate(paired) if i != j]
        if len(others) >= 2:
            est._fit_paired([s.select(train) for s in others], k)
            est._add_subject(target.select(train))
            if target.subject not in est.subjects_:
                est.subjects_.append(target.subject)
            est._units[target.subject] = target.units
        else:
            est._fit_paired([s.select(train) for s in paired], k)
        shared = [np.asarray(est.transform(s.select(test)).data, dtype=np.float64)
                  for s in others]
        first = est.transform(others[0].select(test))
        average = first.with_data(np.mean(shared, axis=0))
        predicted = est.inverse_transform(average, target.subject)
        return _mean_r2(np.asarray(target.select(test).data, dtype=np.float64),
                        np.asarray(predicted.data, dtype=np.float64))

    def _whole_clone(self) -> Aligner:
        """Return a clone with the same parameters that aligns the whole space on paired data."""
        est = clone(self)
        names = est.param_names()
        est.set_params(**{k: None for k in ("labels", "via_encoder", "encoder_params")
                          if k in names})
        return est

    # ------------------------------------------------------------------ piecewise
    def _fit_piecewise(self, paired: list[ConditionData],
                       labels: dict[str, NDArray[np.str_]]) -> None:
        from joblib import Parallel, delayed

        parcels = np.unique(np.concatenate(list(labels.values()))).tolist()
        for s in paired:
            missing = sorted(set(parcels) - set(labels[s.subject].tolist()))
            if missing:
                raise ShapeError(
                    f"Subject {s.subject!r} has no unit in parcel(s) {missing[:5]} that other "
                    "subjects have; piecewise alignment needs every parcel in every subject. "
                    "Drop those parcels' units, or merge them into a neighbouring parcel.")

        def fit_one(label: str) -> Aligner:
            part = self._whole_clone()
            part._clip_components = True
            return part.fit([s.take_units(labels[s.subject] == label) for s in paired])

        fitted = Parallel(n_jobs=self._param("n_jobs"), prefer="threads")(
            delayed(fit_one)(label) for label in parcels)
        self.parcels_ = dict(zip(parcels, fitted))
        first = paired[0]
        self._widths = {
            label: part.transform(first.take_units(labels[first.subject] == label)).n_units
            for label, part in self.parcels_.items()}
        self._labels = dict(labels)
        self.subjects_ = [s.subject for s in paired]
        sizes = [part.n_components_ for part in self.parcels_.values()]
        self.n_components_ = (None if any(n is None for n in sizes)
                              else int(sum(int(n) for n in sizes if n is not None)))

    def _add_piecewise(self, data: ConditionData, labels: NDArray[np.str_]) -> None:
        from joblib import Parallel, delayed

        def add_one(label: str, part: Aligner) -> None:
            part.add_subject(data.take_units(labels == label))

        Parallel(n_jobs=self._param("n_jobs"), prefer="threads")(
            delayed(add_one)(label, part) for label, part in self.parcels_.items())
        self._labels[data.subject] = labels

    def _transform_piecewise(self, data: ConditionData) -> ConditionData:
        labels = self._labels[data.subject]
        blocks: list[NDArray[np.floating]] = []
        ids: list[str] = []
        for label, part in self.parcels_.items():
            out = part.transform(data.take_units(labels == label))
            blocks.append(np.asarray(out.data))
            ids.extend(f"p{label}:{uid}" for uid in out.units.ids.tolist())
        return ConditionData(np.concatenate(blocks, axis=0), data.stimulus_ids, "",
                             Units(ids=np.array(ids), space="shared"))

    def _inverse_piecewise(self, shared: ConditionData, subject: str) -> ConditionData:
        total = sum(self._widths.values())
        if shared.n_units != total:
            raise ShapeError(
                f"{type(self).__name__} has a shared space of {total} units over "
                f"{len(self.parcels_)} parcels; got {shared.n_units}. Pass what transform "
                "returned (or an average of such outputs).")
        labels = self._labels[subject]
        start, backs = 0, []
        for label, part in self.parcels_.items():
            width = self._widths[label]
            piece = shared.take_units(np.arange(start, start + width))
            backs.append((labels == label, part.inverse_transform(piece, subject)))
            start += width
        dtype = np.result_type(*[b.data.dtype for _, b in backs])
        out = np.empty((labels.size, shared.n_conditions), dtype=dtype)
        for mask, back in backs:
            out[mask] = back.data
        return ConditionData(out, shared.stimulus_ids, subject, self._units[subject])

    # ------------------------------------------------------------------ unpaired
    def _new_encoder(self) -> Encoder:
        from ..plugins import get_component

        cls = get_component("encoder", self._param("via_encoder"))
        return cls(**dict(self._param("encoder_params") or {}))

    def _fit_encoder(self, data: ConditionData, stimuli: StimulusSet | None,
                     what: str) -> Encoder:
        features = _subject_features(self, data, stimuli, what)
        _check_finite(data, "its stimuli")
        encoder = self._new_encoder()
        encoder.fit(features, np.asarray(data.as_targets()))
        return encoder

    def _encode_subjects(self, subjects: list[ConditionData],
                         stimuli: StimulusSet | None) -> list[ConditionData]:
        from joblib import Parallel, delayed

        for s in subjects:  # every error before any encoder is fitted
            _subject_features(self, s, stimuli, "fit")
        assert stimuli is not None
        ids, embeddings = self._probe(stimuli)
        self.probe_ids_ = ids
        self._probe_embeddings = embeddings
        fitted = Parallel(n_jobs=self._param("n_jobs"), prefer="threads")(
            delayed(self._fit_encoder)(s, stimuli, "fit") for s in subjects)
        self._encoder_models = {s.subject: e for s, e in zip(subjects, fitted)}
        self.encoders_ = dict(self._encoder_models)
        self._encoders_view = self.encoders_  # the base's, unless a subclass reuses the name
        return [self._predict_probe(s, e) for s, e in zip(subjects, fitted)]

    def _encode_new(self, data: ConditionData, stimuli: StimulusSet | None) -> ConditionData:
        encoder = self._fit_encoder(data, stimuli, "add_subject")
        self._encoder_models[data.subject] = encoder
        if getattr(self, "encoders_", None) is getattr(self, "_encoders_view", False):
            self.encoders_[data.subject] = encoder
        return self._predict_probe(data, encoder)

    def _predict_probe(self, data: ConditionData, encoder: Encoder) -> ConditionData:
        predicted = np.asarray(encoder.predict(self._probe_embeddings))
        assert self.probe_ids_ is not None
        return ConditionData(predicted.T, self.probe_ids_, data.subject, data.units)

    def _probe(self, stimuli: StimulusSet) -> tuple[NDArray[np.str_], NDArray[np.float32]]:
        probe = self._param("probe")
        embeddings = _embeddings(stimuli, what="fit")
        if isinstance(probe, (int, np.integer)):
            n = min(int(probe), stimuli.n_stimuli)
            if n < _MIN_SHARED:
                raise ShapeError(
                    f"{type(self).__name__} draws its probe from the {stimuli.n_stimuli} "
                    f"stimuli given to fit; it needs at least {_MIN_SHARED}. Pass the "
                    "embeddings of every subject's stimuli, or a probe file.")
            rng = np.random.default_rng(self._param("random_state"))
            index = np.sort(rng.choice(stimuli.n_stimuli, size=n, replace=False))
            return np.asarray(stimuli.ids)[index], embeddings[index]
        ids, vectors = _read_probe(Path(probe))
        if vectors.shape[1] != embeddings.shape[1]:
            raise ShapeError(
                f"The probe file {probe} holds {vectors.shape[1]}-dimensional embeddings but the "
                f"stimuli given to fit have {embeddings.shape[1]}. Make the probe file with the "
                "same feature extractor, or use probe=N to draw N of the given stimuli.")
        return ids, vectors


# ---------------------------------------------------------------------- helpers
def _candidates(limit: int) -> list[int]:
    """1, 2, 4, ... below ``limit``, then ``limit``; geometric, at most 7 values, when longer."""
    grid = [2 ** i for i in range(int(np.log2(limit)) + 1) if 2 ** i < limit] + [limit]
    if len(grid) > _MAX_CANDIDATES:
        grid = sorted({int(round(v)) for v in np.geomspace(1, limit, _MAX_CANDIDATES)})
    return grid


def _mean_r2(truth: NDArray[np.float64], predicted: NDArray[np.float64]) -> float:
    """Mean over units (rows) of R² across conditions; units with no variance are skipped."""
    ss_tot = ((truth - truth.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    ss_res = ((truth - predicted) ** 2).sum(axis=1)
    valid = ss_tot > 0
    if not valid.any():
        return float("nan")
    return float(np.mean(1.0 - ss_res[valid] / ss_tot[valid]))


def _check_finite(data: ConditionData, where: str) -> None:
    bad = ~np.isfinite(np.asarray(data.data)).all(axis=1)
    if bad.any():
        examples = np.asarray(data.units.ids)[bad][:3].tolist()
        raise ShapeError(
            f"Subject {data.subject!r} has {int(bad.sum())} of {data.n_units} units with NaN "
            f"responses on {where} ({data.n_conditions} stimuli), e.g. {examples}. Drop them "
            "before aligning, e.g. data.take_units(np.isfinite(data.data).all(axis=1)) (or "
            "units.take(mask) for the unit metadata).")


def _embeddings(stimuli: StimulusSet, *, what: str) -> NDArray[np.float32]:
    if stimuli.embeddings is None:
        raise ShapeError(
            f"The stimuli given to {what} carry no embeddings (StimulusSet.embeddings is None); "
            "an encoder needs a feature vector per stimulus. Compute features first (e.g. the "
            "'precomputed' or 'clip' features) and pass StimulusSet(ids, embeddings=...).")
    return np.asarray(stimuli.embeddings)


def _subject_features(aligner: Aligner, data: ConditionData, stimuli: StimulusSet | None,
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
    embeddings = _embeddings(stimuli, what=what)
    known = set(stimuli.ids.tolist())
    missing = [sid for sid in data.stimulus_ids.tolist() if sid not in known]
    if missing:
        raise ShapeError(
            f"The stimuli given to {what} lack {len(missing)} of subject {data.subject!r}'s "
            f"stimuli, e.g. {missing[:3]}. Pass the embeddings of every stimulus it saw.")
    index = {sid: i for i, sid in enumerate(stimuli.ids.tolist())}
    return embeddings[[index[sid] for sid in data.stimulus_ids.tolist()]]


def _read_probe(path: Path) -> tuple[NDArray[np.str_], NDArray[np.float32]]:
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
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0] or vectors.shape[0] < _MIN_SHARED:
        raise ShapeError(
            f"The probe file {path} must hold at least {_MIN_SHARED} embeddings as a 2-D array "
            f"(stimuli x features) with one id each; got embeddings of shape {vectors.shape} "
            f"and {ids.shape[0]} ids.")
    if not np.isfinite(vectors).all():
        raise ShapeError(f"The probe file {path} holds NaN or infinite embeddings; remove those "
                         "rows.")
    return ids, vectors.astype(np.float32)
