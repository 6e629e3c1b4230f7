"""The contract checks every component must pass (ours and third parties').

A third-party plugin runs them in one line::

    from conform_core.testing import parametrize_with_checks

    @parametrize_with_checks([MyDenoiser(), MyDenoiser(rank=2)])
    def test_contract(component, check):
        check(component)

The checks reuse the ideas of scikit-learn's ``check_estimator`` (nothing learnt in
``__init__``, ``fit`` returns self, idempotent fit, unfitted error, parameters untouched,
parameter round trip) and add conform's own (declared ``consumes``/``produces`` honoured,
condition-permutation equivariance, dtype preserved, missing trials handled, ``check_params``
clean on valid parameters and refusing a value that breaks a declared constraint, dataset
metadata consistent with the subjects it loads).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from sklearn.base import clone

from ..components import KIND_BASES, Component
from ..constraints import describe_constraints, invalid_value_for
from ..data import StimulusSet, Subject, TimeSeriesData, TrialData
from ..exceptions import ConformError, NotFittedError, ParameterError, UnknownComponentError
from . import fakes
from ._aligner_checks import (
    check_aligner_add_subject_keeps_others,
    check_aligner_bad_input,
    check_aligner_common_params,
    check_aligner_piecewise,
    check_aligner_round_trip,
    check_aligner_via_encoder,
)
from .instances import ContractInstance

__all__ = ["check_component", "checks_for", "parametrize_with_checks"]

Check = Callable[[Component], None]


# ---------------------------------------------------------------- every component
def check_kind_declared(component: Component) -> None:
    """The class derives from its kind's base and declares ``consumes``/``produces`` as types."""
    kind = type(component).kind
    assert kind in KIND_BASES, (
        f"{type(component).__name__}.kind is {kind!r}; expected one of {list(KIND_BASES)}")
    assert isinstance(component, KIND_BASES[kind]), f"not a subclass of {KIND_BASES[kind].__name__}"
    assert all(isinstance(t, type) for t in type(component).consumes), "consumes must hold types"
    assert isinstance(type(component).produces, type), "produces must be a type"


def check_init_stores_params(component: Component) -> None:
    """``__init__`` stores each argument unchanged under its own name, and nothing else.

    Like scikit-learn's ``check_no_attributes_set_in_init``: every ``__init__`` argument
    is an attribute of the same name holding the very object passed, and ``__init__``
    sets no other public attribute (private ``_name`` ones are allowed).
    """
    cls = type(component)
    signature = inspect.signature(cls.__init__)
    names = [p for p in signature.parameters if p != "self"
             and signature.parameters[p].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                      inspect.Parameter.VAR_KEYWORD)]
    stored = vars(component)
    unstored = [n for n in names if n not in stored]
    assert not unstored, (
        f"{cls.__name__}.__init__ does not store {unstored} under the same name (it set "
        f"{sorted(stored)}); store each argument as self.<name> = <name>")
    params = component.get_params(deep=False)
    assert sorted(params) == sorted(names), (
        f"get_params() keys {sorted(params)} != __init__ args {names}")
    fresh = cls(**params)
    changed = [n for n in names if vars(fresh)[n] is not params[n]]
    assert not changed, (
        f"{cls.__name__}.__init__ changed {changed} while storing them (e.g. a copy or a "
        "conversion); store the arguments unchanged and convert them in fit")
    extra = sorted(k for k in vars(fresh) if k not in names and not k.startswith("_"))
    assert not extra, (
        f"{cls.__name__}.__init__ sets attributes {extra} that are not parameters; set them "
        "in fit (fitted state ends in '_') or make them private ('_name')")


def check_params_round_trip(component: Component) -> None:
    """``cls(**get_params())`` and ``clone()`` give back the same parameters (spec round trip)."""
    params = component.get_params(deep=False)
    rebuilt = type(component)(**params).get_params(deep=False)
    assert _same(params, rebuilt), f"parameters changed on rebuild: {params} -> {rebuilt}"
    try:
        cloned = clone(component)
    except RuntimeError as exc:  # scikit-learn's: __init__ modified a parameter
        raise AssertionError(f"clone() failed: {exc}") from None
    assert _same(cloned.get_params(deep=False), params), "clone() changed parameters"


def check_check_params_passes(component: Component) -> None:
    """``check_params()`` accepts the kit's valid parameters: returns None, changes nothing.

    ``conform fit --check`` runs it on every cell before any work, so it must not modify a
    parameter, learn anything (no ``*_`` attribute), or fail on valid values.
    """
    est = clone(component)
    before = copy.deepcopy(est.get_params(deep=False))
    result: object = est.check_params()
    assert result is None, f"check_params() returned {result!r}; it must return None (or raise)"
    after = est.get_params(deep=False)
    assert before.keys() == after.keys() and all(_equal(before[k], after[k]) for k in before), (
        f"check_params() modified parameters: {before} -> {after}")
    learnt = [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    assert not learnt, f"check_params() set fitted-looking attributes {learnt}"


def check_param_validation(component: Component) -> None:
    """Each declared parameter constraint is enforced, naming the parameter.

    The declaration (``_parameter_constraints``) must name only constructor parameters.
    Then, for each declared parameter, a value that satisfies none of its alternatives is
    built by the constraints themselves (scikit-learn's ``generate_invalid_param_val``) and
    set; ``check_params()``, and ``fit`` (which runs it first), must raise a
    :class:`~conform_core.exceptions.ParameterError` whose ``param`` is that parameter.
    """
    cls = type(component)
    declared = cls._parameter_constraints
    names = set(cls._get_param_names())
    unknown = sorted(set(declared) - names) + sorted(set(cls._parameter_fixes) - set(declared))
    assert not unknown, (
        f"{cls.__name__}._parameter_constraints/_parameter_fixes name {unknown}, which are not "
        f"constructor parameters ({sorted(names)})")
    for name, constraints in declared.items():
        bad = invalid_value_for(constraints)
        calls: list[tuple[str, Callable[[Component], Any]]] = [
            ("check_params()", lambda est: est.check_params())]
        if cls.kind != "dataset":
            calls.append(("fit", _fit_any))
        for what, call in calls:
            est = clone(component)
            est.set_params(**{name: bad})
            try:
                call(est)
            except ParameterError as exc:
                assert exc.param == name, (
                    f"{cls.__name__}.{what} with {name}={bad!r} raised a ParameterError naming "
                    f"{exc.param!r}, not {name!r}: {exc}")
            else:
                raise AssertionError(
                    f"{cls.__name__}.{what} accepted {name}={bad!r}, which breaks its declared "
                    f"constraints ({describe_constraints(constraints)})")


def check_has_docstring(component: Component) -> None:
    """The class has its own docstring, with a Parameters section when ``__init__`` takes arguments.

    A docstring inherited from a base class does not count: it describes another class.
    """
    cls = type(component)
    doc = inspect.cleandoc(cls.__doc__ or "")
    assert doc.strip(), f"{cls.__name__} has no docstring of its own"
    if component.get_params(deep=False):
        assert "Parameters" in doc, f"{cls.__name__}'s docstring has no Parameters section"


# ---------------------------------------------------------------- denoisers
def _trial_input(component: Component, dtype: type = np.float64, **kwargs: Any) -> Any:
    return fakes.make_condition_trials(dtype=dtype, **kwargs)


def _is_glm(component: Component) -> bool:
    return TimeSeriesData in type(component).consumes


def check_fit_returns_self(component: Component) -> None:
    """``fit`` returns the component itself (so ``Cls(...).fit(data).transform(data)`` works)."""
    if type(component).kind == "dataset":
        return
    est = clone(component)
    returned, _ = _fit_any(est)
    assert returned is est, (
        f"{type(component).__name__}.fit returned {type(returned).__name__}, not self")


def check_denoiser_transform_output(component: Component) -> None:
    """``transform`` returns the declared container, one row per unit and condition (or event)."""
    data: Any = fakes.make_timeseries() if _is_glm(component) else _trial_input(component)
    est = clone(component).fit(data)
    out: Any = est.transform(data)
    produced: object = out
    assert isinstance(produced, type(component).produces), (
        f"transform returned {type(out).__name__}; declared "
        f"produces={type(component).produces.__name__}")
    if _is_glm(component):
        assert isinstance(out, TrialData) and out.n_trials == data.n_events, "one beta per event"
        np.testing.assert_array_equal(out.stimulus_ids, data.stimulus_ids())
    else:
        assert out.n_units == data.n_units and out.n_conditions == data.n_conditions
        np.testing.assert_array_equal(out.stimulus_ids, data.stimulus_ids)


def check_not_fitted_error(component: Component) -> None:
    """Using a component before ``fit`` raises ``NotFittedError``."""
    est = clone(component)
    kind = type(component).kind
    try:
        if kind == "denoiser":
            est.transform(fakes.make_timeseries() if _is_glm(component)
                          else _trial_input(component))
        elif kind == "encoder":
            est.predict(fakes.make_features()[0])
        elif kind == "aligner":
            est.transform(fakes.make_subject_conditions()[0])
        else:
            return
    except NotFittedError:
        return
    raise AssertionError(f"{type(component).__name__} did not raise NotFittedError before fit")


def check_fit_does_not_change_params(component: Component) -> None:
    """``fit`` leaves the constructor parameters as they were (not replaced, not mutated)."""
    est = clone(component)
    before = est.get_params(deep=False)
    snapshot = copy.deepcopy(before)
    _fit_any(est)
    after = est.get_params(deep=False)
    replaced = [k for k in before if after[k] is not before[k]]
    mutated = [k for k in before if not _equal(after[k], snapshot[k])]
    assert not replaced and not mutated, (
        f"{type(component).__name__}.fit modified constructor parameters "
        f"{sorted(set(replaced) | set(mutated))}: {snapshot} -> {after}; keep what fit derives "
        "in attributes ending in '_'")


def check_fit_idempotent(component: Component) -> None:
    """Fitting twice on the same data gives the same output."""
    est = clone(component)
    first = _output_of(est)
    second = _output_of(est)
    np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-8,
                               err_msg="refitting on the same data changed the output")


def check_denoiser_condition_equivariance(component: Component) -> None:
    """Permuting conditions permutes the output (trial-level denoisers)."""
    if _is_glm(component):
        return
    data = _trial_input(component)
    perm = np.random.default_rng(1).permutation(data.n_conditions)
    a = clone(component).fit_transform(data).data[:, perm]
    b = clone(component).fit_transform(data.take_conditions(perm)).data
    # float reductions may reorder; 1e-6 relative is ~8 float64 ulps of accumulated error x 1e3
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def check_dtype_preserved(component: Component) -> None:
    """float32 in gives float32 out."""
    kind = type(component).kind
    est = clone(component)
    if kind == "denoiser" and not _is_glm(component):
        out = est.fit_transform(_trial_input(component, dtype=np.float32))
        assert out.data.dtype == np.float32, f"float32 in, {out.data.dtype} out"
    elif kind == "encoder":
        X, Y = fakes.make_features()
        pred = est.fit(X.astype(np.float32), Y.astype(np.float32)).predict(X.astype(np.float32))
        assert pred.dtype == np.float32, f"float32 in, {pred.dtype} out"


def check_missing_trials(component: Component) -> None:
    """A trial-level denoiser handles missing trials (NaN) or refuses them (``ConformError``)."""
    if _is_glm(component):
        return
    data = _trial_input(component)
    arr = np.array(data.data)
    arr[:, 0, -1] = np.nan
    arr[:, 3, -1] = np.nan
    try:
        out = clone(component).fit_transform(data.with_data(arr))
    except ConformError:
        return
    assert np.isfinite(out.data).all(), "missing trials produced non-finite output"


# ---------------------------------------------------------------- encoders
def check_encoder_shapes(component: Component) -> None:
    """``predict`` gives (n_stimuli, n_units), (n_stimuli,) after a 1-D y; wrong X raises."""
    X, Y = fakes.make_features()
    est = clone(component)
    assert est.fit(X, Y) is est, "fit must return self"
    shape = est.predict(X[:7]).shape
    assert shape == (7, Y.shape[1]), (
        f"predict of 7 stimuli gave shape {shape}, not {(7, Y.shape[1])}")
    shape = clone(component).fit(X, Y[:, 0]).predict(X[:7]).shape
    assert shape == (7,), f"fitted on a 1-D y, predict gave shape {shape}, not (7,)"
    try:
        est.predict(X[:, :-1])
    except ConformError:
        pass
    else:
        raise AssertionError(
            "predict with the wrong number of features did not raise a ConformError")


# ---------------------------------------------------------------- aligners
# in ._aligner_checks (imported above): check_aligner_common_params, check_aligner_round_trip,
# check_aligner_add_subject_keeps_others, check_aligner_piecewise, check_aligner_via_encoder,
# check_aligner_bad_input


# ---------------------------------------------------------------- features
def check_features_shape_and_order(component: Component) -> None:
    """``transform`` gives float32 (n_stimuli, n_features) rows that follow the stimulus order."""
    stimuli = fakes.make_stimuli()
    est = clone(component).fit(stimuli)
    out = est.transform(stimuli)
    assert out.dtype == np.float32 and out.shape[0] == stimuli.n_stimuli
    perm = np.random.default_rng(0).permutation(stimuli.n_stimuli)
    np.testing.assert_allclose(est.transform(stimuli.select(stimuli.ids[perm])), out[perm],
                               rtol=1e-5, atol=1e-6)


def check_features_check_stimuli(component: Component) -> None:
    """``check_stimuli()`` accepts stimuli that ``transform`` can embed (the kit's fake stimuli)."""
    result: object = clone(component).check_stimuli(fakes.make_stimuli())
    assert result is None, f"check_stimuli() returned {result!r}; it must return None (or raise)"


# ---------------------------------------------------------------- datasets
def check_dataset_metadata(component: Component) -> None:
    """``roi_labels()`` and ``stimulus_set()`` agree with what ``load_subject`` returns.

    Each may be None (unknown without loading); otherwise every ROI label of a loaded
    subject's units is listed, and every stimulus the subject saw is in the set.
    """
    labels = component.roi_labels()
    assert labels is None or (isinstance(labels, list)
                              and all(isinstance(x, str) for x in labels)), (
        f"roi_labels() must return None or a list of str; got {labels!r}")
    stimuli = component.stimulus_set()
    assert stimuli is None or isinstance(stimuli, StimulusSet), (
        f"stimulus_set() must return None or a StimulusSet; got {type(stimuli).__name__}")
    subject = component.load_subject(component.subjects()[0])
    units = None
    for data in (subject.trials, subject.timeseries):
        if data is not None:
            units = data.units
            break
    if labels is not None and units is not None and units.roi is not None:
        unlisted = sorted(set(units.roi.tolist()) - set(labels) - {""})
        assert not unlisted, (f"units of {subject.name!r} carry ROI labels {unlisted[:5]} that "
                              "roi_labels() omits")
    if labels == [] and units is not None and units.roi is not None:
        assert not any(units.roi.tolist()), "roi_labels() is [] but the units carry ROI labels"
    if stimuli is not None:
        missing = sorted(set(subject.stimuli.ids.tolist()) - set(stimuli.ids.tolist()))
        assert not missing, (
            f"stimuli of {subject.name!r} missing from stimulus_set(): {missing[:5]}")


def check_dataset_subjects(component: Component) -> None:
    """``subjects()`` lists names; ``load_subject`` returns that Subject; unknown names raise."""
    names = component.subjects()
    assert isinstance(names, list) and names and all(isinstance(n, str) for n in names)
    subject = component.load_subject(names[0])
    assert isinstance(subject, Subject) and subject.name == names[0]
    try:
        component.load_subject("no-such-subject")
    except UnknownComponentError:
        pass
    else:
        raise AssertionError("load_subject of an unknown name did not raise UnknownComponentError")
    assert isinstance(component.describe(), dict)


# ---------------------------------------------------------------- helpers
def _equal(x: Any, y: Any) -> bool:
    """Value equality that descends into dicts, lists and tuples and compares arrays."""
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return bool(np.array_equal(np.asarray(x), np.asarray(y)))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return type(x) is type(y) and len(x) == len(y) and all(map(_equal, x, y))
    try:
        return bool(x is y or x == y)
    except (TypeError, ValueError):
        return False


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(np.asarray(x), np.asarray(y)):
                return False
        elif x is not y and x != y:
            return False
    return True


def _fit_any(est: Component) -> Any:
    kind = type(est).kind
    if kind == "denoiser":
        data = fakes.make_timeseries() if _is_glm(est) else _trial_input(est)
        return est.fit(data), data
    if kind == "encoder":
        X, Y = fakes.make_features()
        return est.fit(X, Y), X
    if kind == "aligner":
        subjects = fakes.make_subject_conditions()
        return est.fit(subjects), subjects
    if kind == "features":
        stimuli = fakes.make_stimuli()
        return est.fit(stimuli), stimuli
    return est, None


def _output_of(est: Component) -> np.ndarray:
    fitted, data = _fit_any(est)
    kind = type(est).kind
    if kind == "denoiser":
        out = fitted.transform(data)
        return np.asarray(out.betas if isinstance(out, TrialData) else out.data)
    if kind == "encoder":
        return fitted.predict(data)
    if kind == "aligner":
        return np.asarray(fitted.transform(data[0]).data)
    if kind == "features":
        return fitted.transform(data)
    return np.zeros(1)


_COMMON: list[Check] = [check_kind_declared, check_init_stores_params, check_params_round_trip,
                        check_check_params_passes, check_param_validation, check_has_docstring]
_FITTED: list[Check] = [check_fit_returns_self, check_not_fitted_error,
                        check_fit_does_not_change_params, check_fit_idempotent]
_BY_KIND: dict[str, list[Check]] = {
    "denoiser": [*_FITTED, check_denoiser_transform_output, check_denoiser_condition_equivariance,
                 check_dtype_preserved, check_missing_trials],
    "encoder": [*_FITTED, check_encoder_shapes, check_dtype_preserved],
    "aligner": [*_FITTED, check_aligner_common_params, check_aligner_round_trip,
                check_aligner_add_subject_keeps_others, check_aligner_piecewise,
                check_aligner_via_encoder, check_aligner_bad_input],
    "features": [check_fit_returns_self, check_fit_does_not_change_params, check_fit_idempotent,
                 check_features_shape_and_order, check_features_check_stimuli],
    "dataset": [check_dataset_subjects, check_dataset_metadata],
}


def checks_for(cls: type[Component]) -> list[Check]:
    """Every contract check that applies to components of class ``cls`` (by its ``kind``).

    Parameters
    ----------
    cls : type of Component

    Returns
    -------
    list of callable
        The checks common to every component, then those of ``cls.kind``.
    """
    return _COMMON + _BY_KIND.get(cls.kind, [])


def check_component(component: Component) -> Iterator[tuple[str, Check]]:
    """Yield ``(name, check)`` for every contract check that applies to ``component``.

    Parameters
    ----------
    component : Component
        An instance (its parameters are what is checked).

    Yields
    ------
    name : str
        The check's name, e.g. ``"check_fit_idempotent"``.
    check : callable
        Call ``check(component)``; it raises AssertionError (or a ConformError) on failure.
    """
    for check in checks_for(type(component)):
        yield check.__name__, check


def parametrize_with_checks(components: Iterable[Component | ContractInstance]) -> Any:
    """A decorator that runs a test once per (component, contract check) pair.

    Each pair is one test, with the id ``Cls(params)-check_name``. A
    :class:`~conform_core.testing.ContractInstance` is built lazily: the first time one of
    its checks runs, once per test session, with an empty folder from pytest's
    ``tmp_path_factory``. A check that fails for want of a module it ``requires`` is
    skipped, with its ``hint`` as the reason. Nothing is built while tests are collected.

    Parameters
    ----------
    components : iterable of Component or ContractInstance
        Instances to check, or how to build them.

    Returns
    -------
    decorator
        Decorate ``def test_contract(component, check): check(component)``; the test
        receives built instances.

    Examples
    --------
    >>> @parametrize_with_checks([MyDenoiser(), ContractInstance(MyDataset, build=toy)])
    ... def test_contract(component, check):  # doctest: +SKIP
    ...     check(component)
    """
    import pytest

    cases, ids = [], []
    for item in components:
        if isinstance(item, ContractInstance):
            cls, label = item.cls, item.label
        elif isinstance(item, Component):
            cls, label = type(item), f"{type(item).__name__}({_short_params(item)})"
        else:
            raise TypeError(f"parametrize_with_checks takes components or ContractInstance "
                            f"objects; got {item!r}.")
        for check in checks_for(cls):
            cases.append((item, check))
            ids.append(f"{label}-{check.__name__}")
    mark = pytest.mark.parametrize("component, check", cases, ids=ids)

    def decorate(test: Callable[..., Any]) -> Any:
        signature = inspect.signature(test)
        wanted = "tmp_path_factory" in signature.parameters

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            factory = kwargs["tmp_path_factory"] if wanted else kwargs.pop("tmp_path_factory")
            item = kwargs["component"]
            with _skip_when_missing(item):
                kwargs["component"] = _built(item, factory)
                return test(*args, **kwargs)

        if not wanted:
            extra = inspect.Parameter("tmp_path_factory", inspect.Parameter.KEYWORD_ONLY)
            parameters = [p for p in signature.parameters.values()
                          if p.kind is not inspect.Parameter.VAR_KEYWORD]
            run.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[*parameters, extra])
        return mark(run)

    return decorate


def _built(item: Component | ContractInstance, tmp_path_factory: Any) -> Component:
    """The component of a test case: ``item`` itself, or the ContractInstance built."""
    if not isinstance(item, ContractInstance):
        return item
    session = str(tmp_path_factory.getbasetemp())
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", f"contract-{item.label}")[:60]
    return item.get(session, lambda: tmp_path_factory.mktemp(name))


@contextlib.contextmanager
def _skip_when_missing(item: Component | ContractInstance) -> Iterator[None]:
    """Skip the test when it fails for want of a module the instance ``requires``.

    Only then: a check that does not need the optional module (parameters, docstring, ...)
    still runs, and passes or fails, without it.
    """
    missing = item.missing() if isinstance(item, ContractInstance) else []
    if not missing:
        yield
        return
    assert isinstance(item, ContractInstance)
    try:
        yield
    except Exception as exc:
        if not _caused_by_missing(exc, set(missing)):
            raise
        import pytest

        pytest.skip(f"{item.label} needs {', '.join(missing)}, which is not installed"
                    + (f" ({item.hint})" if item.hint else ""))


def _caused_by_missing(exc: BaseException | None, modules: set[str]) -> bool:
    """Whether ``exc``, or an exception it was raised from, is an import of ``modules``."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] in modules:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _short_params(component: Component) -> str:
    """The parameters that differ from their defaults, shortened for a test id."""
    signature = inspect.signature(type(component).__init__)
    changed = {k: v for k, v in component.get_params(deep=False).items()
               if not isinstance(v, np.ndarray)
               and not (k in signature.parameters
                        and _equal(v, signature.parameters[k].default))}
    text = ",".join(f"{k}={v!r}" for k, v in changed.items())
    return text if len(text) <= 40 else text[:39] + "~"
