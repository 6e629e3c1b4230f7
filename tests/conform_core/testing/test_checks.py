"""The contract checks themselves: each fails on a deliberately broken component.

scikit-learn's habit (``sklearn/utils/tests/test_estimator_checks.py``): a check that never
fails tests nothing. Five small, correct components (one per kind) pass every check; each
broken variant below breaks one rule and must fail the check for that rule, with a message
that says what is wrong. ``test_every_check_is_shown_to_fail`` keeps the table complete when
a check is added.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from conform_core.components import KIND_BASES, Aligner, Dataset, Denoiser, Encoder, Features
from conform_core.constraints import Interval, PathLike
from conform_core.data import (
    ConditionData,
    ConditionTrials,
    StimulusSet,
    Subject,
    TrialData,
    Units,
)
from conform_core.exceptions import ConformError, ParameterError
from conform_core.testing import (
    ContractInstance,
    check_component,
    checks_for,
    parametrize_with_checks,
)
from conform_core.testing import checks as kit
from conform_core.testing.checks import _BY_KIND, _COMMON


# ============================================================== five correct components
class GoodDenoiser(Denoiser):
    """Condition means, shrunk toward each unit's mean over conditions.

    Parameters
    ----------
    shrink : float, default=0.0
        Fraction of the way from each condition mean to the unit's mean.
    options : dict or None, default=None
        Extra settings (unused: a mutable parameter for the checks to watch).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "shrink": [Interval(float, 0, 1)], "options": [dict, None]}

    def __init__(self, shrink: float = 0.0, options: dict[str, Any] | None = None) -> None:
        self.shrink = shrink
        self.options = options

    def _fit(self, data: ConditionTrials) -> GoodDenoiser:
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        means = data.mean()
        arr = np.asarray(means.data)
        centre = np.nanmean(arr, axis=1, keepdims=True)
        return means.with_data(((1 - self.shrink) * arr + self.shrink * centre).astype(arr.dtype))


class GoodEncoder(Encoder):
    """Ridge regression with a fixed penalty.

    Parameters
    ----------
    alpha : float, default=1.0
        The penalty.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(float, 0, None, closed="neither")]}

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> GoodEncoder:
        self.mean_x_, self.mean_y_ = X.mean(axis=0), Y.mean(axis=0)
        Xc = X - self.mean_x_
        gram = Xc.T @ Xc + self.alpha * np.eye(X.shape[1], dtype=X.dtype)
        self.coef_ = np.linalg.solve(gram, Xc.T @ (Y - self.mean_y_))
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_x_) @ self.coef_ + self.mean_y_).astype(X.dtype)


class GoodAligner(Aligner):
    """Least-squares maps onto the first subject's leading components.

    Parameters
    ----------
    n_components, labels, via_encoder, encoder_params, probe, n_jobs, random_state
        The common parameters of :class:`Aligner`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = dict(Aligner._common_constraints)
    _parameter_fixes: ClassVar[dict[str, str]] = dict(Aligner._common_fixes)

    def __init__(self, n_components: int | str | None = "auto", labels: Any = None,
                 via_encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 probe: int | str = 500, n_jobs: int = 1, random_state: int = 0) -> None:
        self.n_components = n_components
        self.labels = labels
        self.via_encoder = via_encoder
        self.encoder_params = encoder_params
        self.probe = probe
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, subjects: list[ConditionData], n_components: int | None) -> GoodAligner:
        first = np.asarray(subjects[0].data)
        _, s, vt = np.linalg.svd(first - first.mean(axis=1, keepdims=True), full_matrices=False)
        k = n_components
        self.template_ = ConditionData(vt[:k] * s[:k, None], subjects[0].stimulus_ids,
                                       subject="shared")
        self.maps_: dict[str, np.ndarray] = {}
        self.subjects_: list[str] = []
        self.n_components_ = k
        for subject in subjects:
            self._add_subject(subject)
        return self

    def _add_subject(self, data: ConditionData) -> GoodAligner:
        _, mine, theirs = np.intersect1d(data.stimulus_ids, self.template_.stimulus_ids,
                                         return_indices=True)
        source = np.asarray(data.data)[:, mine].T
        target = np.asarray(self.template_.data)[:, theirs].T
        self.maps_[data.subject] = np.linalg.lstsq(source, target, rcond=None)[0]
        if data.subject not in self.subjects_:
            self.subjects_.append(data.subject)
        return self

    def _transform(self, data: ConditionData) -> ConditionData:
        shared = (np.asarray(data.data).T @ self.maps_[data.subject]).T
        ids = np.array([f"c{i:04d}" for i in range(shared.shape[0])])
        return ConditionData(shared, data.stimulus_ids, subject="shared",
                             units=Units(ids=ids, space="shared"))

    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        back = (np.asarray(shared.data).T @ np.linalg.pinv(self.maps_[subject])).T
        return ConditionData(back, shared.stimulus_ids, subject=subject)


class GoodFeatures(Features):
    """The stimuli's own embeddings, scaled.

    Parameters
    ----------
    scale : float, default=1.0
        Factor applied to every embedding.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "scale": [Interval(float, 0, None, closed="neither")]}

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def _transform(self, stimuli: StimulusSet) -> np.ndarray:
        return self.scale * np.asarray(stimuli.embeddings)


class GoodDataset(Dataset):
    """Subjects' single trials, one ``sub-*.npz`` file each in a folder.

    Parameters
    ----------
    location : str, default="."
        The folder.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"location": [PathLike("dir")]}

    def __init__(self, location: str = ".") -> None:
        self.location = location

    def subjects(self) -> list[str]:
        return sorted(p.stem for p in Path(self.location).glob("sub-*.npz"))

    def _load_subject(self, name: str) -> Subject:
        with np.load(Path(self.location) / f"{name}.npz") as saved:
            betas, ids = saved["betas"], saved["ids"]
        return Subject(name, StimulusSet(ids=np.unique(ids)),
                       trials=TrialData(betas, ids, subject=name))

    def stimulus_set(self) -> StimulusSet:
        return StimulusSet(ids=[f"stim{i:02d}" for i in range(6)])


def write_good_dataset(folder: Path) -> GoodDataset:
    """Two subjects of 12 trials (6 stimuli x 2 repeats) x 4 units in ``folder``."""
    rng = np.random.default_rng(0)
    ids = np.repeat([f"stim{i:02d}" for i in range(6)], 2)
    for name in ("sub-01", "sub-02"):
        np.savez(folder / f"{name}.npz", betas=rng.standard_normal((12, 4)), ids=ids)
    return GoodDataset(location=str(folder))


GOOD_DATASET = ContractInstance(GoodDataset, write_good_dataset, id="two-subjects")


@parametrize_with_checks([GoodDenoiser(), GoodDenoiser(shrink=0.5, options={"a": 1}),
                          GoodEncoder(), GoodAligner(), GoodFeatures(), GOOD_DATASET])
def test_correct_components_pass_every_check(component, check):
    check(component)


# ============================================================== broken components
class StoresUnderAnotherName(GoodDenoiser):
    """Stores ``shrink`` as ``amount``.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def __init__(self, shrink: float = 0.0, options: dict[str, Any] | None = None) -> None:
        self.amount = shrink
        self.options = options


class CopiesInInit(GoodDenoiser):
    """Copies ``options`` while storing it.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def __init__(self, shrink: float = 0.0, options: dict[str, Any] | None = None) -> None:
        self.shrink = shrink
        self.options = dict(options or {})


class SetsAttributeInInit(GoodDenoiser):
    """Sets a public attribute that is not a parameter in ``__init__``.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def __init__(self, shrink: float = 0.0, options: dict[str, Any] | None = None) -> None:
        super().__init__(shrink, options)
        self.history: list[str] = []


class LearnsInInit(GoodDenoiser):
    """Sets fitted state (``n_fits_``) in ``__init__``.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def __init__(self, shrink: float = 0.0, options: dict[str, Any] | None = None) -> None:
        super().__init__(shrink, options)
        self.n_fits_ = 0


class HalvesInInit(GoodDenoiser):
    """Stores half of ``shrink``, so rebuilding from ``get_params()`` changes it.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def __init__(self, shrink: float = 0.0, options: dict[str, Any] | None = None) -> None:
        self.shrink = shrink / 2
        self.options = options


class UndeclaredTypes(GoodDenoiser):
    """Declares ``consumes`` by name instead of by type.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    consumes: ClassVar[tuple[Any, ...]] = ("ConditionTrials",)


class FixesItsParams(GoodDenoiser):
    """check_params() 'fixes' a value instead of raising.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def check_params(self) -> None:
        self.shrink = 0.25


class LearnsInCheckParams(GoodDenoiser):
    """check_params() leaves a fitted-looking attribute behind.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def check_params(self) -> None:
        super().check_params()
        self.checked_ = True


class AnswersCheckParams(GoodDenoiser):
    """check_params() returns a verdict instead of raising.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def check_params(self) -> bool:  # type: ignore[override]
        return True


class IgnoresItsDeclarations(GoodDenoiser):
    """Declares constraints but check_params() never checks them.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def check_params(self) -> None:
        pass


class BlamesAnotherParameter(GoodDenoiser):
    """Reports every bad value as a bad ``shrink``.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def check_params(self) -> None:
        try:
            super().check_params()
        except ParameterError:
            raise ParameterError(param="shrink", value=self.shrink, allowed="anything") from None


class Undocumented(GoodDenoiser):
    pass


class DocumentedWithoutParameters(GoodDenoiser):
    """Has a docstring, but it does not list the parameters."""


class FitReturnsNothing(GoodDenoiser):
    """``_fit`` forgets to return self, so ``fit`` returns None.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _fit(self, data: ConditionTrials) -> Any:
        return None


class UsableBeforeFit(GoodDenoiser):
    """transform skips the fitted check.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def transform(self, data: Any) -> Any:
        return self._transform(self._check_input(data))


class ReplacesParamInFit(GoodDenoiser):
    """fit overwrites ``shrink`` with what it chose.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _fit(self, data: ConditionTrials) -> ReplacesParamInFit:
        self.shrink = 0.5
        return self


class MutatesParamInFit(GoodDenoiser):
    """fit writes into the ``options`` dict it was given.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _fit(self, data: ConditionTrials) -> MutatesParamInFit:
        if self.options is not None:
            self.options["n_units"] = data.n_units
        return self


class RemembersEarlierFits(GoodDenoiser):
    """Each fit shifts the output a little more (state leaks from one fit to the next).

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _fit(self, data: ConditionTrials) -> RemembersEarlierFits:
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        out = super()._transform(data)
        return out.with_data(np.asarray(out.data) + self.n_fits_)


class ReturnsTrials(GoodDenoiser):
    """Declares ConditionData but transform returns the trials unchanged.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _transform(self, data: ConditionTrials) -> Any:
        return data


class DependsOnConditionOrder(GoodDenoiser):
    """Adds each condition's position to its mean.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _transform(self, data: ConditionTrials) -> ConditionData:
        out = super()._transform(data)
        return out.with_data(np.asarray(out.data) + np.arange(out.n_conditions))


class UpcastsToFloat64(GoodDenoiser):
    """Returns float64 whatever it is given.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _transform(self, data: ConditionTrials) -> ConditionData:
        out = super()._transform(data)
        return out.with_data(np.asarray(out.data, dtype=np.float64))


class IgnoresMissingTrials(GoodDenoiser):
    """Averages trials with ``mean``, so one missing trial makes the condition NaN.

    Parameters
    ----------
    shrink, options : as GoodDenoiser
    """

    def _transform(self, data: ConditionTrials) -> ConditionData:
        return ConditionData(np.asarray(data.data).mean(axis=2), data.stimulus_ids,
                             subject=data.subject)


class EncoderUpcasts(GoodEncoder):
    """Predicts float64 from float32 features.

    Parameters
    ----------
    alpha : as GoodEncoder
    """

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return super()._predict(X).astype(np.float64)


class EncoderAlways2D(GoodEncoder):
    """predict returns 2-D output even when fitted on a 1-D y.

    Parameters
    ----------
    alpha : as GoodEncoder
    """

    def predict(self, X: Any) -> np.ndarray:
        return self._predict(np.asarray(X))


class AlignerForgetsUnits(GoodAligner):
    """inverse_transform returns the shared space instead of the subject's units.

    Parameters
    ----------
    n_components : as GoodAligner
    """

    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        return ConditionData(shared.data, shared.stimulus_ids, subject=subject)


class AlignerRefitsOthers(GoodAligner):
    """add_subject rescales every subject's map (refits the others).

    Parameters
    ----------
    n_components : as GoodAligner
    """

    def _add_subject(self, data: ConditionData) -> GoodAligner:
        super()._add_subject(data)
        if len(self.maps_) > 3:
            self.maps_ = {k: 1.01 * v for k, v in self.maps_.items()}
        return self


class AlignerOverridesTransform(GoodAligner):
    """transform bypasses the base class (so piecewise alignment breaks).

    Parameters
    ----------
    n_components : as GoodAligner
    """

    def transform(self, data: ConditionData) -> ConditionData:
        return self._transform(data)


class AlignerDropsStimuli(GoodAligner):
    """fit does not pass the stimuli on (so via_encoder cannot work).

    Parameters
    ----------
    n_components : as GoodAligner
    """

    def fit(self, subjects: Any, stimuli: StimulusSet | None = None) -> GoodAligner:
        super().fit(subjects)
        return self


class AlignerWithoutCommonParams(GoodAligner):
    """Takes only n_components.

    Parameters
    ----------
    n_components : as GoodAligner
    """

    def __init__(self, n_components: int | str | None = "auto") -> None:
        self.n_components = n_components


class AlignerSkipsValidation(GoodAligner):
    """fit calls the hook directly, skipping the base's validation.

    Parameters
    ----------
    n_components : as GoodAligner
    """

    def fit(self, subjects: Any, stimuli: StimulusSet | None = None) -> GoodAligner:
        self._fit(list(subjects), 2)
        return self


class FeaturesInIdOrder(GoodFeatures):
    """Returns rows sorted by stimulus id, not in the order asked for.

    Parameters
    ----------
    scale : as GoodFeatures
    """

    def _transform(self, stimuli: StimulusSet) -> np.ndarray:
        order = np.argsort(stimuli.ids)
        return np.asarray(super()._transform(stimuli))[order]


class FeaturesAnswerCheckStimuli(GoodFeatures):
    """check_stimuli returns a verdict instead of raising.

    Parameters
    ----------
    scale : as GoodFeatures
    """

    def check_stimuli(self, stimuli: StimulusSet) -> bool:  # type: ignore[override]
        return True


class LoadsUnknownSubjects(GoodDataset):
    """load_subject answers any name with the first subject.

    Parameters
    ----------
    location : as GoodDataset
    """

    def load_subject(self, name: str) -> Subject:
        return self._load_subject(self.subjects()[0])


class ForgetsStimuli(GoodDataset):
    """stimulus_set() lists stimuli that are not the ones the subjects saw.

    Parameters
    ----------
    location : as GoodDataset
    """

    def stimulus_set(self) -> StimulusSet:
        return StimulusSet(ids=["not-a-stimulus"])


def _dataset(cls: type[GoodDataset]) -> Any:
    """``cls`` over the good dataset's files (written once per session)."""
    def build(tmp_path_factory: pytest.TempPathFactory) -> GoodDataset:
        return cls(location=write_good_dataset(tmp_path_factory.mktemp("good")).location)
    return build


# (component or a builder that takes tmp_path_factory, the check it must fail, message pattern)
BROKEN = [
    pytest.param(UndeclaredTypes(), kit.check_kind_declared, "consumes must hold types",
                 id="consumes-by-name"),
    pytest.param(StoresUnderAnotherName(), kit.check_init_stores_params,
                 r"does not store \['shrink'\] under the same name",
                 id="stores-under-another-name"),
    pytest.param(CopiesInInit(options={"a": 1}), kit.check_init_stores_params,
                 r"changed \['options'\] while storing them", id="copies-in-init"),
    pytest.param(SetsAttributeInInit(), kit.check_init_stores_params,
                 r"sets attributes \['history'\] that are not parameters", id="sets-attribute"),
    pytest.param(LearnsInInit(), kit.check_init_stores_params, r"sets attributes \['n_fits_'\]",
                 id="learns-in-init"),
    pytest.param(HalvesInInit(shrink=0.5), kit.check_params_round_trip,
                 "parameters changed on rebuild", id="rebuild-changes-params"),
    pytest.param(CopiesInInit(options={"a": 1}), kit.check_params_round_trip,
                 "clone.. failed", id="clone-fails"),
    pytest.param(FixesItsParams(), kit.check_check_params_passes, "modified parameters",
                 id="check-params-fixes-values"),
    pytest.param(LearnsInCheckParams(), kit.check_check_params_passes,
                 r"set fitted-looking attributes \['checked_'\]", id="check-params-learns"),
    pytest.param(AnswersCheckParams(), kit.check_check_params_passes, "returned True",
                 id="check-params-returns"),
    pytest.param(IgnoresItsDeclarations(), kit.check_param_validation,
                 r"IgnoresItsDeclarations.check_params\(\) accepted shrink=-1",
                 id="check-params-lenient"),
    pytest.param(BlamesAnotherParameter(), kit.check_param_validation,
                 "naming 'shrink', not 'options'", id="error-names-wrong-parameter"),
    pytest.param(Undocumented(), kit.check_has_docstring, "has no docstring of its own",
                 id="no-docstring"),
    pytest.param(DocumentedWithoutParameters(), kit.check_has_docstring,
                 "no Parameters section", id="no-parameters-section"),
    pytest.param(FitReturnsNothing(), kit.check_fit_returns_self,
                 "fit returned NoneType, not self", id="fit-returns-none"),
    pytest.param(UsableBeforeFit(), kit.check_not_fitted_error, "did not raise NotFittedError",
                 id="usable-before-fit"),
    pytest.param(ReplacesParamInFit(), kit.check_fit_does_not_change_params,
                 r"fit modified constructor parameters \['shrink'\]", id="fit-replaces-param"),
    pytest.param(MutatesParamInFit(options={}), kit.check_fit_does_not_change_params,
                 r"fit modified constructor parameters \['options'\]", id="fit-mutates-param"),
    pytest.param(RemembersEarlierFits(), kit.check_fit_idempotent,
                 "refitting on the same data changed the output", id="fit-not-idempotent"),
    pytest.param(ReturnsTrials(), kit.check_denoiser_transform_output,
                 "transform returned ConditionTrials; declared produces=ConditionData",
                 id="wrong-output-type"),
    pytest.param(DependsOnConditionOrder(), kit.check_denoiser_condition_equivariance,
                 "Not equal to tolerance", id="condition-order"),
    pytest.param(UpcastsToFloat64(), kit.check_dtype_preserved, "float32 in, float64 out",
                 id="float32-dropped"),
    pytest.param(EncoderUpcasts(), kit.check_dtype_preserved, "float32 in, float64 out",
                 id="encoder-float32-dropped"),
    pytest.param(IgnoresMissingTrials(), kit.check_missing_trials,
                 "missing trials produced non-finite output", id="missing-trials"),
    pytest.param(EncoderAlways2D(), kit.check_encoder_shapes,
                 r"fitted on a 1-D y, predict gave shape \(7, 1\)", id="encoder-1d-y"),
    pytest.param(AlignerForgetsUnits(), kit.check_aligner_round_trip,
                 r"\(10 units\) gave \d+ units",
                 id="aligner-inverse-units"),
    pytest.param(AlignerRefitsOthers(), kit.check_aligner_add_subject_keeps_others,
                 "add_subject changed the maps of fitted subjects", id="aligner-refits-others"),
    pytest.param(AlignerOverridesTransform(), kit.check_aligner_piecewise,
                 "piecewise alignment with labels='roi' failed", id="aligner-piecewise"),
    pytest.param(AlignerDropsStimuli(), kit.check_aligner_via_encoder, "needs stimuli",
                 id="aligner-via-encoder"),
    pytest.param(AlignerWithoutCommonParams(), kit.check_aligner_common_params,
                 "lacks the common aligner parameters", id="aligner-common-params"),
    pytest.param(AlignerSkipsValidation(), kit.check_aligner_bad_input,
                 "accepted one subject", id="aligner-skips-validation"),
    pytest.param(FeaturesInIdOrder(), kit.check_features_shape_and_order, "Not equal",
                 id="features-order"),
    pytest.param(FeaturesAnswerCheckStimuli(), kit.check_features_check_stimuli,
                 r"check_stimuli\(\) returned True", id="check-stimuli-returns"),
    pytest.param(_dataset(LoadsUnknownSubjects), kit.check_dataset_subjects,
                 "load_subject of an unknown name did not raise", id="unknown-subject-loads"),
    pytest.param(_dataset(ForgetsStimuli), kit.check_dataset_metadata,
                 "missing from stimulus_set", id="stimulus-set-incomplete"),
]


@pytest.mark.parametrize("component, check, match", BROKEN)
def test_each_check_fails_on_a_component_that_breaks_its_rule(component, check, match,
                                                              tmp_path_factory):
    if not isinstance(component, (Denoiser, Encoder, Aligner, Features, Dataset)):
        component = component(tmp_path_factory)
    assert check in checks_for(type(component)), f"{check.__name__} does not apply here"
    with pytest.raises((AssertionError, ConformError), match=match):
        check(component)


def test_every_check_is_shown_to_fail():
    """Each check of the kit has a broken component above (add one with each new check)."""
    shown = {p.values[1] for p in BROKEN}
    every = set(_COMMON).union(*_BY_KIND.values())
    assert sorted(c.__name__ for c in every - shown) == []


def test_every_check_of_the_module_is_run():
    """No check_* function of conform_core.testing.checks is left out of the lists."""
    defined = {f for name, f in vars(kit).items()
               if name.startswith("check_") and inspect.isfunction(f)
               and f.__module__ == kit.__name__ and name != "check_component"}
    listed = set(_COMMON).union(*_BY_KIND.values())
    assert sorted(f.__name__ for f in defined - listed) == []
    assert kit.check_param_validation in checks_for(GoodDenoiser)


def test_every_kind_has_its_checks():
    for kind, base in KIND_BASES.items():
        names = [c.__name__ for c in checks_for(base)]
        assert names[:len(_COMMON)] == [c.__name__ for c in _COMMON]
        assert len(names) > len(_COMMON), f"no {kind} checks"


def test_check_component_lists_the_checks_of_an_instance():
    listed = [name for name, _ in check_component(GoodEncoder())]
    assert listed == [c.__name__ for c in checks_for(GoodEncoder)]
    assert "check_encoder_shapes" in listed and "check_dataset_subjects" not in listed
