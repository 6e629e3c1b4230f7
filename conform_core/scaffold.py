"""``conform plugins new``: write a third-party plugin project that passes the contract kit."""

from __future__ import annotations

import re
from pathlib import Path

from .exceptions import DataFileError, ParameterError
from .io import atomic_directory
from .registry import KINDS
from .validation import NAME_PATTERN, is_valid_name

__all__ = ["write_plugin_project"]

_CLASS_SUFFIX = {"dataset": "Dataset", "denoiser": "Denoiser", "aligner": "Aligner",
                 "encoder": "Encoder", "features": "Features"}

_BODIES = {
    "denoiser": '''
class {cls}(Denoiser):
    """Trial averaging shrunk towards each unit's mean over conditions.

    Parameters
    ----------
    shrinkage : float, default=0.0
        Fraction in [0, 1] by which each condition mean moves towards the unit's mean.

    Attributes
    ----------
    n_units_ : int
        Number of units seen by ``fit``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {{
        "shrinkage": [Interval(float, 0, 1)]}}

    def __init__(self, shrinkage: float = 0.0):
        self.shrinkage = shrinkage

    def _fit(self, data: ConditionTrials) -> {cls}:
        self.n_units_ = data.n_units
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        means = data.mean()
        return means.with_data(shrink_to_unit_mean(np.asarray(means.data), self.shrinkage))
''',
    "encoder": '''
class {cls}(Encoder):
    """Ridge regression with one fixed penalty.

    Parameters
    ----------
    alpha : float, default=1.0
        The ridge penalty (>= 0).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_units)
        The weights.
    x_mean_, y_mean_ : ndarray
        Column means of X and Y, removed before the fit.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {{
        "alpha": [Interval(float, 0, None, closed="left")]}}

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> {cls}:
        self.x_mean_, self.y_mean_ = X.mean(axis=0), Y.mean(axis=0)
        self.coef_ = ridge_coefficients(X - self.x_mean_, Y - self.y_mean_, float(self.alpha))
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.x_mean_) @ self.coef_ + self.y_mean_).astype(X.dtype)
''',
    "aligner": '''
class {cls}(Aligner):
    """Align subjects through their mean response over units (a one-dimensional shared space).

    Parameters
    ----------
    center : bool, default=True
        Remove each unit's mean over the shared stimuli before mapping.
    labels, via_encoder, encoder_params, probe, n_jobs, random_state
        The parameters every aligner takes (see ``conform_core.Aligner``): alignment per
        parcel, alignment through an encoder (no shared stimuli needed), threads, the seed.

    Attributes
    ----------
    subjects_ : list of str
        Subjects mapped so far.
    weights_, means_ : dict of str to ndarray
        Per subject, each unit's weight on the shared axis and the unit means.
    """

    _has_n_components: ClassVar[bool] = False  # one shared dimension, so no n_components
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {{
        **{{k: v for k, v in Aligner._common_constraints.items() if k != "n_components"}},
        "center": [Boolean()]}}

    def __init__(self, center: bool = True, labels: Any = None, via_encoder: str | None = None,
                 encoder_params: dict[str, Any] | None = None, probe: int | str = 500,
                 n_jobs: int = 1, random_state: int = 0):
        self.center = center
        self.labels = labels
        self.via_encoder = via_encoder
        self.encoder_params = encoder_params
        self.probe = probe
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, subjects: list[ConditionData], n_components: int | None) -> {cls}:
        self.subjects_, self.weights_, self.means_ = [], {{}}, {{}}
        self.n_components_ = 1
        for data in subjects:
            self._add_subject(data)
        return self

    def _add_subject(self, data: ConditionData) -> {cls}:
        x = np.asarray(data.as_targets(), dtype=np.float64)
        self.weights_[data.subject], self.means_[data.subject] = shared_axis_weights(
            x, center=self.center)
        if data.subject not in self.subjects_:
            self.subjects_.append(data.subject)
        return self

    def _transform(self, data: ConditionData) -> ConditionData:
        x = np.asarray(data.as_targets(), dtype=np.float64) - self.means_[data.subject]
        return ConditionData(x.mean(axis=1)[None, :].astype(data.data.dtype), data.stimulus_ids)

    def _inverse_transform(self, shared: ConditionData, subject: str) -> ConditionData:
        out = np.outer(shared.data[0], self.weights_[subject]) + self.means_[subject]
        return ConditionData(out.T.astype(shared.data.dtype), shared.stimulus_ids, subject)
''',
    "features": '''
class {cls}(Features):
    """Features from the embeddings stored with the stimuli, optionally L2-normalised.

    Parameters
    ----------
    normalize : bool, default=True
        L2-normalise each row.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {{"normalize": [Boolean()]}}

    def __init__(self, normalize: bool = True):
        self.normalize = normalize

    def _transform(self, stimuli: StimulusSet) -> np.ndarray:
        if stimuli.embeddings is None:
            raise ShapeError("{cls} needs StimulusSet.embeddings; got a set without embeddings.")
        x = np.array(stimuli.embeddings, dtype=np.float32)
        if self.normalize:
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x
''',
    "dataset": '''
class {cls}(Dataset):
    """A dataset of random subjects (replace with code that reads your files).

    Parameters
    ----------
    location : str or None, default=None
        Where the files are (unused by this skeleton).
    n_subjects : int, default=2
        Number of subjects (>= 1).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {{
        "location": [str, None], "n_subjects": [Interval(int, 1, None)]}}

    def __init__(self, location: str | None = None, n_subjects: int = 2):
        self.location = location
        self.n_subjects = n_subjects

    def subjects(self) -> list[str]:
        return [f"sub-{{i + 1:02d}}" for i in range(self.n_subjects)]

    def _load_subject(self, name: str) -> Subject:
        rng = np.random.default_rng(self.subjects().index(name))
        ids = np.array([f"stim{{i:03d}}" for i in range(20)])
        trials = TrialData(rng.standard_normal((40, 8)), np.repeat(ids, 2), subject=name)
        return Subject(name=name, stimuli=StimulusSet(ids=ids), trials=trials,
                       train_ids=ids[:15], test_ids=ids[15:])
''',
}

_IMPORTS = {
    "denoiser": "from conform_core import ConditionData, ConditionTrials, Denoiser\n"
                "from conform_core.constraints import Interval\n\n"
                "from ._solvers import shrink_to_unit_mean",
    "encoder": "from conform_core import Encoder\nfrom conform_core.constraints import Interval\n\n"
               "from ._solvers import ridge_coefficients",
    "aligner": "from conform_core import Aligner, ConditionData\n"
               "from conform_core.constraints import Boolean\n\n"
               "from ._solvers import shared_axis_weights",
    "features": "from conform_core import Features, ShapeError, StimulusSet\n"
                "from conform_core.constraints import Boolean",
    "dataset": "from conform_core import Dataset, StimulusSet, Subject, TrialData\n"
               "from conform_core.constraints import Interval",
}

# Pure solver functions (arrays in, arrays out) in _solvers.py, for the kinds with an algorithm.
_SOLVERS = {
    "denoiser": '''

def shrink_to_unit_mean(x: np.ndarray, shrinkage: float) -> np.ndarray:
    """Move each condition mean towards its unit's mean over conditions.

    Parameters
    ----------
    x : ndarray of shape (n_units, n_conditions)
        Condition means.
    shrinkage : float
        Fraction in [0, 1]: 0 keeps ``x``, 1 replaces each row by its mean.

    Returns
    -------
    ndarray
        Same shape and dtype as ``x``.
    """
    grand = x.mean(axis=1, keepdims=True)
    return (x + shrinkage * (grand - x)).astype(x.dtype)
''',
    "encoder": '''

def ridge_coefficients(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """Solve ``(X'X + alpha I) W = X'Y`` for centred ``X`` and ``Y``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Centred features.
    Y : ndarray of shape (n_samples, n_units)
        Centred targets.
    alpha : float
        The ridge penalty (>= 0).

    Returns
    -------
    ndarray of shape (n_features, n_units)
        The weights, in the dtype of ``X``.
    """
    gram = X.T @ X + alpha * np.eye(X.shape[1], dtype=X.dtype)
    return np.linalg.solve(gram, X.T @ Y).astype(X.dtype)
''',
    "aligner": '''

def shared_axis_weights(x: np.ndarray, *, center: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's weight on the mean response over units, and the unit means.

    Parameters
    ----------
    x : ndarray of shape (n_stimuli, n_units)
        One subject's responses.
    center : bool, default=True
        Remove each unit's mean first.

    Returns
    -------
    weights, means : ndarray of shape (n_units,)
        The regression weights on the shared axis and the means removed.
    """
    means = x.mean(axis=0) if center else np.zeros(x.shape[1])
    xc = x - means
    shared = xc.mean(axis=1)
    denom = float(shared @ shared) or 1.0
    return (shared @ xc) / denom, means
''',
}

_SOLVERS_HEAD = '''"""Pure solver functions of this plugin: arrays in, arrays out, no component state."""

from __future__ import annotations

import numpy as np
'''


def write_plugin_project(name: str, kind: str, directory: str | Path = ".") -> Path:
    """Write ``DIRECTORY/conform-NAME``: a pip-installable plugin with one component.

    Parameters
    ----------
    name : str
        Component and plugin name (``[a-z][a-z0-9_-]*``); the package is ``conform_<name>``.
    kind : {"dataset", "denoiser", "aligner", "encoder", "features"}
        The kind of component to scaffold.
    directory : path-like, default="."
        Parent folder.

    Returns
    -------
    Path
        The project folder.
    """
    if not is_valid_name(name):
        raise ParameterError(
            f"Plugin name must match {NAME_PATTERN} (e.g. 'my-denoiser'); got {name!r}."
        )
    if kind not in KINDS:
        raise ParameterError(f"--kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    package = "conform_" + name.replace("-", "_")
    stem = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    suffix = _CLASS_SUFFIX[kind]
    cls = stem if stem.endswith(suffix) else stem + suffix
    project = Path(directory) / f"conform-{name}"
    if project.exists():
        raise DataFileError(f"{project} already exists. Pick another name or --dir.")
    files = {
        "pyproject.toml": _PYPROJECT.format(name=name, package=package),
        "README.md": _README.format(name=name, kind=kind, package=package, cls=cls),
        f"src/{package}/__init__.py": _INIT.format(name=name, kind=kind, cls=cls),
        f"src/{package}/component.py": _COMPONENT_HEAD.format(kind=kind, imports=_IMPORTS[kind])
        + _BODIES[kind].format(cls=cls),
        "tests/test_contract.py": _TEST.format(package=package, cls=cls, name=name, kind=kind),
    }
    if kind in _SOLVERS:
        files[f"src/{package}/_solvers.py"] = _SOLVERS_HEAD + _SOLVERS[kind]
    with atomic_directory(project) as tmp:
        for rel, text in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return project


_PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "conform-{name}"
version = "0.1.0"
description = "A conform-fmri plugin."
requires-python = ">=3.10"
dependencies = ["conform-fmri"]

[project.entry-points.conform]
{name} = "{package}"

[tool.setuptools.packages.find]
where = ["src"]
'''

_README = '''# conform-{name}

A `{kind}` plugin for conform-fmri. Install it next to conform-fmri and it appears in
`conform plugins`:

    pip install -e .
    conform plugins --kind {kind}
    pytest tests

The component is `{package}.component.{cls}`, re-exported by `{package}`. Its parameters
are declared in `_parameter_constraints` and checked before any work (`conform fit --check`);
pure solver functions, where the kind has one, are in `{package}/_solvers.py`.
`tests/test_contract.py` runs conform's contract kit on it; conform's docs/plugins.md
describes the layout.
'''

_INIT = '''"""conform plugin providing the {kind} {name!r} (:class:`{cls}`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from .component import {cls}

if TYPE_CHECKING:
    from conform_core import ComponentRegistry

__all__ = ["{cls}", "conform_register"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``{name}`` {kind}."""
    registry.add("{kind}", "{name}", {cls})
'''

_COMPONENT_HEAD = '''"""The {kind} component of this plugin (a working skeleton: replace the algorithm)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

{imports}

'''

_TEST = '''"""conform's contract kit, run on this plugin's component."""

from conform_core.testing import parametrize_with_checks

from {package}.component import {cls}


@parametrize_with_checks([{cls}()])
def test_contract(component, check):
    check(component)


def test_registered_under_its_name():
    from conform_core.plugins import make_plugin_manager, build_registry

    registry = build_registry(make_plugin_manager())
    assert registry.get("{kind}", "{name}") is {cls}
'''
