"""The plugin's two datasets: ``synthetic`` (in memory) and ``synthetic-folder`` (on disk).

``synthetic`` simulates a study in memory; ``synthetic-folder`` reads a study folder written by
``conform simulate``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from conform_core.components import Dataset
from conform_core.constraints import InstanceOf, PathLike, check_param
from conform_core.data import StimulusSet, Subject
from conform_core.exceptions import DataFileError, ParameterError
from conform_core.validation import check_existing_path, suggest

from ._params import SimulationParams
from ._reader import read_stimuli, read_study_info, read_study_subject
from ._study import StudyPlan, plan_study, simulate_subject

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["SimulatedFolderDataset", "SyntheticDataset"]

_SETTINGS = SimulationParams.names()


def _data_size(params: dict[str, Any], n_units: int, n_stimuli: int,
               n_runs: int | None, timeseries: bool) -> DataSize:
    """Size of a subject seeing ``n_stimuli`` stimuli ``n_repeats`` times each.

    Conditions are every stimulus the subject sees (training and test: ``transform`` meets
    both), trials the planned repeats (before missing trials are dropped: an upper bound).
    With time series, the runs as the simulator lays them out (``_design.design_subject``):
    the planned trials split into near-equal contiguous runs, each with ``null_fraction``
    extra empty slots ``iti`` apart, 8 s of lead-in and ``stimdur`` + 20 s of tail.
    """
    from conform_core.memory import DataSize

    repeats = int(params["n_repeats"])
    planned = n_stimuli * repeats
    if not timeseries or planned == 0:
        return DataSize(n_units, n_stimuli, repeats)
    if n_runs is None:
        n_runs = (math.ceil(planned / int(params["trials_per_run"]))
                  if params.get("n_runs") is None else min(int(params["n_runs"]), planned))
    volumes = 0
    for r in range(n_runs):  # run r holds the trials i with i * n_runs // planned == r
        in_run = -(-(r + 1) * planned // n_runs) + (-r * planned // n_runs)
        slots = in_run + int(round(float(params["null_fraction"]) * in_run))
        end = 8.0 + max(slots - 1, 0) * float(params["iti"]) + float(params["stimdur"]) + 20.0
        volumes += int(math.ceil(end / float(params["tr"])))
    return DataSize(n_units, n_stimuli, repeats, n_timepoints=volumes, n_runs=n_runs,
                    n_events=planned)


def _check_study_folder(location: Any, owner: Dataset) -> None:
    """Raise unless ``location`` is a folder holding a readable ``study.json`` of this format."""
    root = check_existing_path(
        location, name="location", owner=owner, kind="dir",
        fix=f"Write a study there with `conform simulate "
            f"{ParameterError.quote(str(location))}`, or pass the folder it wrote.")
    if not (root / "study.json").is_file():
        raise DataFileError(
            f"The 'location' parameter of {type(owner).__name__} must be a folder written by "
            f"`conform simulate`; {str(root)!r} holds no study.json. Write a study there with "
            f"`conform simulate {root}`, or point location at such a folder."
        )
    read_study_info(root)  # format and version


@dataclass
class _Folder:
    """What a folder dataset has read so far (``stimuli`` on first use)."""

    location: str
    info: dict[str, Any]
    stimuli: StimulusSet | None = None


class SimulatedFolderDataset(Dataset):
    """A study written by ``conform simulate``, read back exactly.

    Subjects are read on request: trials, ground truth and, when the study has them, the
    NIfTI runs and events as ``TimeSeriesData``. The simulator's settings are the folder's
    own (``study.json``, see :meth:`study_params`); the format is described in
    ``docs/formats.md``.

    Parameters
    ----------
    location : str
        The folder ``conform simulate`` (or :func:`~conform_synthetic.write_study`) wrote.

    See Also
    --------
    SyntheticDataset : the same simulator, in memory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from conform_synthetic import write_study
    >>> folder = write_study(pathlib.Path(tempfile.mkdtemp()) / "study",
    ...                      {"n_subjects": 2, "n_units": 12, "n_stimuli": 24})
    >>> SimulatedFolderDataset(location=str(folder)).subjects()
    ['sub-01', 'sub-02']
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "location": [PathLike("dir", must_exist=False)],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "location": "Pass the folder `conform simulate` wrote.",
    }

    def __init__(self, location: str | None = None) -> None:
        self.location = location

    def _folder(self) -> _Folder:
        cache: _Folder | None = getattr(self, "_cache", None)
        if cache is None or cache.location != str(self.location):
            check_param(self.location, self._parameter_constraints["location"], name="location",
                        owner=self, fix=self._parameter_fixes["location"])
            cache = _Folder(str(self.location), read_study_info(Path(str(self.location))))
            self._cache = cache
        return cache

    def _check_params_extra(self) -> None:
        """Check that ``location`` holds a study of this format, reading only ``study.json``.

        Raises
        ------
        ParameterError
            For a placeholder location.
        DataFileError
            For a missing folder or ``study.json``, or a study of another format or version.
        """
        _check_study_folder(self.location, self)

    def study_params(self) -> dict[str, Any]:
        """Return the simulator's settings the study was written with (``study.json``)."""
        params = self._folder().info["params"]
        return {k: params[k] for k in _SETTINGS if k in params}

    def roi_labels(self) -> list[str]:
        """No ROI labels: simulated units carry none."""
        return []

    def stimulus_set(self) -> StimulusSet:
        """Every stimulus of the study (``stimuli.tsv`` and the features)."""
        folder = self._folder()
        if folder.stimuli is None:
            folder.stimuli = read_stimuli(folder.location)[0]
        return folder.stimuli

    def subjects(self) -> list[str]:
        """Names of the subjects: ``sub-01``, ``sub-02``, ..."""
        return [str(s["name"]) for s in self._folder().info["subjects"]]

    def _load_subject(self, name: str) -> Subject:
        folder = self._folder()
        return read_study_subject(folder.location, name, info=folder.info,
                                  stimuli=self.stimulus_set())

    def data_size(self, name: str) -> DataSize:
        """Return the size of subject ``name``'s data from ``study.json`` alone.

        Its units and stimuli (training and test), the study's ``n_repeats`` as trials per
        condition, and with time series its runs (their volumes as the simulator lays them
        out, see :func:`_data_size`).
        """
        info = self._folder().info
        row = next((s for s in info["subjects"] if str(s["name"]) == name), None)
        if row is None:
            raise ParameterError(f"Subject {name!r} is not in the study at {self.location!r}; "
                                 f"it has {self.subjects()}. Use one of those names.")
        params = info["params"]
        return _data_size(params, int(row.get("n_units", info["n_units"])),
                          int(row["n_stimuli"]),
                          None if row.get("n_runs") is None else int(row["n_runs"]),
                          bool(info.get("timeseries", params.get("timeseries", False))))

    def describe(self) -> dict[str, Any]:
        """Summarise the study; only ``study.json`` is read."""
        info = self._folder().info
        rows = [{"subject": s["name"], "n_trials": s["n_trials"],
                 "n_units": s.get("n_units", info["n_units"]),
                 "n_stimuli": s["n_stimuli"], "n_runs": s["n_runs"], "n_train": s["n_train"],
                 "n_test": s["n_test"], "has_truth": True} for s in info["subjects"]]
        return {"dataset": type(self).__name__, "location": str(self.location),
                "params": info["params"], "subjects": rows}


@dataclass
class _Simulation:
    """What an in-memory dataset has simulated so far, for the parameters of ``key``."""

    key: str
    plan: StudyPlan
    subjects: dict[str, Subject] = field(default_factory=dict)


#: SyntheticDataset's parameters beyond the simulator's settings, and their defaults.
_OTHER_PARAMETERS = {"options": None, "location": None}


class SyntheticDataset(Dataset):
    """Subjects simulated in memory, with ground truth.

    The study is simulated lazily, one subject at a time on first request, and kept by
    this instance. Its parameters are the simulator's settings: the fields of
    :class:`SimulationParams`, with their defaults (the signature and the list below are
    derived from them).

    Parameters
    ----------
    {settings}
    options : dict or None, default=None
        Settings as a dict, merged over the parameters above (kept so that specs and lock
        files that passed settings this way still run; prefer the parameters). A setting
        given both ways with different values is an error.
    location : str or None, default=None
        Kept for specs written before the ``synthetic-folder`` dataset: a folder written by
        ``conform simulate``, read with :class:`SimulatedFolderDataset`. The settings
        above are then checked but not used (the folder's are, and :meth:`data_params`
        records them). New specs use ``plugin = "synthetic-folder"``.

    See Also
    --------
    SimulatedFolderDataset : a study written to disk by ``conform simulate``.
    simulate_study : the whole study at once, as a function.

    Examples
    --------
    >>> ds = SyntheticDataset(n_subjects=2, n_units=20, n_stimuli=30, n_shared=10)
    >>> ds.subjects(), ds.load_subject("sub-01").trials.n_units
    (['sub-01', 'sub-02'], 20)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SimulationParams._parameter_constraints,
        "options": [InstanceOf(Mapping, "a dict of simulate_study keywords"), None],
        "location": [PathLike("dir", must_exist=False), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        **SimulationParams._parameter_fixes,
        "options": 'Use e.g. $options={"noise_rank": 0, "tr": 1.5}, or pass the settings as '
                   "parameters.",
        "location": "Pass a folder written by `conform simulate`, or None to simulate in memory.",
    }

    def __init__(self, **params: Any) -> None:  # the signature is set below, from the fields
        allowed = [*_SETTINGS, *_OTHER_PARAMETERS]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise TypeError(f"SyntheticDataset() got unexpected keyword argument(s) {unknown}."
                            f"{suggest(unknown[0], allowed)}")
        defaults = {**SimulationParams.defaults(), **_OTHER_PARAMETERS}
        for name in allowed:
            setattr(self, name, params.get(name, defaults[name]))

    __init__.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *SimulationParams.signature_parameters(),
        inspect.Parameter("options", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=dict[str, Any] | None),
        inspect.Parameter("location", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=str | None),
    ], return_annotation=None)

    # -------------------------------------------------------------- settings
    def simulation_params(self) -> SimulationParams:
        """Return the checked simulation settings of this instance.

        Raises
        ------
        ParameterError
            If a setting is out of range, the settings do not fit together, or ``options``
            names an unknown setting or one also given, differently, as a parameter.
        """
        settings = {name: getattr(self, name) for name in _SETTINGS}
        extra = dict(self.options or {})
        defaults = SimulationParams.defaults()
        unknown = sorted(set(extra) - set(_SETTINGS))
        twice = sorted(k for k in set(extra) & set(_SETTINGS)
                       if settings[k] != defaults[k] and settings[k] != extra[k])
        if unknown or twice:
            problem = (f"unknown key(s) {unknown}" if unknown
                       else f"key(s) {twice} also given, with other values, as parameters")
            raise ParameterError(
                f"The 'options' parameter of SyntheticDataset has {ParameterError.quote(problem)}.",
                param="options", value=self.options, owner=self,
                fix=f"Use settings of simulate_study ({', '.join(_SETTINGS)}), and give each "
                    "one once (preferably as a parameter).")
        try:
            return SimulationParams(**{**settings, **extra})
        except ParameterError as exc:  # the settings are this dataset's parameters
            raise ParameterError(exc.template, param=exc.param, value=exc.value,
                                 allowed=exc.allowed, fix=exc.fix, owner=self) from None

    def _simulation(self) -> _Simulation:
        """Return the plan and the subjects simulated so far (anew if a parameter changed)."""
        key = repr(self.get_params(deep=False))
        cache: _Simulation | None = getattr(self, "_cache", None)
        if cache is None or cache.key != key:
            cache = _Simulation(key, plan_study(self.simulation_params()))
            self._cache = cache
        return cache

    def _folder(self) -> SimulatedFolderDataset | None:
        """Return the folder reader when ``location`` is set (compatibility path), else None."""
        if self.location is None:
            return None
        reader: SimulatedFolderDataset | None = getattr(self, "_reader", None)
        if reader is None or reader.location != self.location:
            reader = SimulatedFolderDataset(location=self.location)
            self._reader = reader
        return reader

    # -------------------------------------------------------------- checks
    def _check_params_extra(self) -> None:
        """Check what the declarations cannot, without simulating or reading any subject.

        In memory: the rules between settings (through :class:`SimulationParams`) and the
        keys of ``options``. With a ``location``: the folder holds a readable
        ``study.json`` of this format. Each setting's own range is declared in
        ``_parameter_constraints`` (taken from :class:`SimulationParams`).

        Raises
        ------
        ParameterError
            For settings that do not fit together, or a placeholder location.
        DataFileError
            For a missing folder or ``study.json``.
        """
        if self.location is None:
            self.simulation_params()
        else:
            _check_study_folder(self.location, self)

    # -------------------------------------------------------------- Dataset API
    def roi_labels(self) -> list[str]:
        """No ROI labels: simulated units carry none."""
        return []

    def stimulus_set(self) -> StimulusSet:
        """Every stimulus of the study (planned, cheap: no subject is simulated)."""
        folder = self._folder()
        return self._simulation().plan.stimuli if folder is None else folder.stimulus_set()

    def subjects(self) -> list[str]:
        """Names of the subjects: ``sub-01``, ``sub-02``, ..."""
        folder = self._folder()
        return self._simulation().plan.subject_names if folder is None else folder.subjects()

    def _load_subject(self, name: str) -> Subject:
        folder = self._folder()
        if folder is not None:
            return folder.load_subject(name)
        simulation = self._simulation()
        if name not in simulation.subjects:
            index = simulation.plan.subject_names.index(name)
            simulation.subjects[name] = simulate_subject(simulation.plan, index)
        return simulation.subjects[name]

    def data_size(self, name: str) -> DataSize:
        """Return the size of subject ``name``'s data from the settings (nothing simulated).

        ``n_units`` units (``unit_dropout`` only removes some), the stimuli the study plan
        gives the subject (shared plus its own; training and test), ``n_repeats`` trials per
        condition, and with ``timeseries`` the runs the simulator lays out (see
        :func:`_data_size`). From a ``location``, the folder's :meth:`data_size`.
        """
        folder = self._folder()
        if folder is not None:
            return folder.data_size(name)
        plan = self._simulation().plan
        if name not in plan.subject_names:
            raise ParameterError(f"Subject {name!r} is not simulated here; the subjects are "
                                 f"{plan.subject_names}. Use one of those names.")
        params = plan.params
        split = plan.split
        if split.own is not None:
            n_stimuli = int(split.shared.size + split.own[plan.subject_names.index(name)].size)
        else:
            others = params.n_stimuli - int(split.shared.size)
            own = others if params.stimuli_per_subject is None else min(
                int(params.stimuli_per_subject), others)
            n_stimuli = int(split.shared.size) + own
        return _data_size(params.as_dict(), int(params.n_units), n_stimuli, None,
                          bool(params.timeseries))

    def data_params(self) -> dict[str, Any]:
        """Return the parameters of the data used: with a ``location``, the folder's settings.

        In memory these are this instance's parameters. From a folder the constructor's
        settings are not used, so the folder's replace them, and a lock file records the
        study that was analysed.
        """
        params = dict(self.get_params(deep=False))
        folder = self._folder()
        if folder is not None:
            params.update(folder.study_params(), options=None)
        return params

    def describe(self) -> dict[str, Any]:
        """Summarise the dataset: its subjects and settings (from a folder, only ``study.json``)."""
        folder = self._folder()
        if folder is not None:
            return {**folder.describe(), "dataset": type(self).__name__}
        summary = super().describe()
        summary["params"] = self.simulation_params().as_dict()
        return summary


SyntheticDataset.__doc__ = (SyntheticDataset.__doc__ or "").replace(
    "{settings}", SimulationParams.numpydoc(indent="    ").lstrip())
