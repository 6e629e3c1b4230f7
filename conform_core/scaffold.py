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
    """

    def __init__(self, shrinkage: float = 0.0):
        self.shrinkage = shrinkage

    def _fit(self, data: ConditionTrials) -> "{cls}":
        check_float_param(self.shrinkage, name="shrinkage", owner=self, low=0.0, high=1.0)
        self.n_units_ = data.n_units
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        means = data.mean()
        x = np.asarray(means.data)
        grand = x.mean(axis=1, keepdims=True)
        return means.with_data((x + self.shrinkage * (grand - x)).astype(x.dtype))
''',
    "encoder": '''
class {cls}(Encoder):
    """Ridge regression with one fixed penalty.

    Parameters
    ----------
    alpha : float, default=1.0
        The ridge penalty.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> "{cls}":
        alpha = check_float_param(self.alpha, name="alpha", owner=self, low=0.0)
        self.x_mean_, self.y_mean_ = X.mean(axis=0), Y.mean(axis=0)
        Xc, Yc = X - self.x_mean_, Y - self.y_mean_
        gram = Xc.T @ Xc + alpha * np.eye(X.shape[1], dtype=X.dtype)
        self.coef_ = np.linalg.solve(gram, Xc.T @ Yc).astype(X.dtype)
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
    """

    def __init__(self, center: bool = True):
        self.center = center

    def _fit(self, subjects: list[ConditionData]) -> "{cls}":
        self.subjects_, self.weights_, self.means_ = [], {{}}, {{}}
        for data in subjects:
            self._add_subject(data)
        return self

    def _add_subject(self, data: ConditionData) -> "{cls}":
        x = np.asarray(data.as_targets(), dtype=np.float64)
        mean = x.mean(axis=0) if self.center else np.zeros(x.shape[1])
        xc = x - mean
        shared = xc.mean(axis=1)
        denom = float(shared @ shared) or 1.0
        self.weights_[data.subject] = (shared @ xc) / denom
        self.means_[data.subject] = mean
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
        Number of subjects.
    """

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
                "from conform_core.validation import check_float_param",
    "encoder": "from conform_core import Encoder\nfrom conform_core.validation import check_float_param",
    "aligner": "from conform_core import Aligner, ConditionData",
    "features": "from conform_core import Features, ShapeError, StimulusSet",
    "dataset": "from conform_core import Dataset, StimulusSet, Subject, TrialData",
}


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

The component is `{package}.component.{cls}`; `tests/test_contract.py` runs conform's
contract kit on it.
'''

_INIT = '''"""conform plugin providing the {kind} {name!r}."""

from __future__ import annotations

from conform_core.hookspecs import hookimpl

from .component import {cls}

__all__ = ["{cls}"]


@hookimpl
def conform_register(registry):
    """Register this plugin's components."""
    registry.add("{kind}", "{name}", {cls})
'''

_COMPONENT_HEAD = '''"""The {kind} component of this plugin (a working skeleton: replace the algorithm)."""

from __future__ import annotations

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
