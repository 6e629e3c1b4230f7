"""``SyntheticDataset``: subjects simulated in memory, or read from ``conform simulate`` files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conform_core.components import Dataset
from conform_core.constraints import InstanceOf, PathLike
from conform_core.data import StimulusSet, Subject
from conform_core.exceptions import DataFileError, ParameterError
from conform_core.simulation import (
    SimulationParams,
    StudyPlan,
    plan_study,
    read_stimuli,
    read_study_info,
    read_study_subject,
    simulate_subject,
)
from conform_core.validation import check_existing_path

__all__ = ["SyntheticDataset"]


class SyntheticDataset(Dataset):
    """Simulated subjects with ground truth, simulated in memory or read from a folder.

    With ``location=None`` the study is simulated lazily (one subject at a time, on first
    request) and cached in this instance. With a ``location`` the folder written by
    ``conform simulate`` is read back exactly (trials, ground truth and, when present, the
    NIfTI runs and events as ``TimeSeriesData``); the simulation parameters are then ignored.

    Parameters
    ----------
    location : str or None, default=None
        Folder written by ``conform simulate``; None simulates in memory.
    n_subjects, n_units, n_stimuli : int, default=3, 100, 120
        Study size.
    n_repeats : int, default=3
        Trials per stimulus and subject.
    snr : float, default=1.0
        Median single-trial signal sd / noise sd over units.
    n_shared : int or None, default=None
        Stimuli every subject sees (None: a third of ``n_stimuli``).
    stimuli_per_subject : int or None, default=None
        Stimuli per subject beyond the shared ones (None: all others).
    test_fraction : float, default=0.2
        Share of stimuli held out (shared ones first).
    missing_fraction : float, default=0.0
        Share of trials dropped.
    individual_differences : float, default=0.3
        How far each subject's mixing departs from the shared one (0 to 1).
    timeseries : bool, default=False
        Also simulate fMRI runs.
    random_state : int, default=0
        Seed of the simulation.
    options : dict or None, default=None
        Any other keyword of :func:`conform_core.simulation.simulate_study`
        (e.g. ``{"noise_rank": 0, "tr": 1.5}``).

    Examples
    --------
    >>> ds = SyntheticDataset(n_subjects=2, n_units=20, n_stimuli=30, n_shared=10)
    >>> ds.subjects(), ds.load_subject("sub-01").trials.n_units
    (['sub-01', 'sub-02'], 20)
    """

    # the simulation parameters are SimulationParams' (checked in _check_params_extra, and
    # ignored when location is set)
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "location": [PathLike("dir", must_exist=False), None],
        "options": [InstanceOf(Mapping, "a dict of simulate_study keywords"), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "location": "Pass a folder written by `conform simulate`, or None to simulate in memory.",
        "options": 'Use e.g. $options={"noise_rank": 0, "tr": 1.5}.',
    }

    def __init__(self, location: str | None = None, n_subjects: int = 3, n_units: int = 100,
                 n_stimuli: int = 120, n_repeats: int = 3, snr: float = 1.0, n_shared: int | None = None,
                 stimuli_per_subject: int | None = None, test_fraction: float = 0.2,
                 missing_fraction: float = 0.0, individual_differences: float = 0.3,
                 timeseries: bool = False, random_state: int = 0,
                 options: dict[str, Any] | None = None) -> None:
        self.location = location
        self.n_subjects = n_subjects
        self.n_units = n_units
        self.n_stimuli = n_stimuli
        self.n_repeats = n_repeats
        self.snr = snr
        self.n_shared = n_shared
        self.stimuli_per_subject = stimuli_per_subject
        self.test_fraction = test_fraction
        self.missing_fraction = missing_fraction
        self.individual_differences = individual_differences
        self.timeseries = timeseries
        self.random_state = random_state
        self.options = options

    # -------------------------------------------------------------- in memory
    def simulation_params(self) -> SimulationParams:
        """Return the checked simulation parameters of this instance.

        Raises
        ------
        ParameterError
            If a parameter is out of range, or ``options`` names an unknown or duplicate one.
        """
        own = {k: getattr(self, k) for k in (
            "n_subjects", "n_units", "n_stimuli", "n_repeats", "snr", "n_shared",
            "stimuli_per_subject", "test_fraction", "missing_fraction", "individual_differences",
            "timeseries", "random_state")}
        extra = dict(self.options or {})
        known = set(SimulationParams.__dataclass_fields__)
        unknown = sorted(set(extra) - known)
        clash = sorted(set(extra) & set(own))
        if unknown or clash:
            problem = (f"unknown key(s) {unknown}" if unknown
                       else f"key(s) {clash} that are also parameters")
            raise ParameterError(
                f"The 'options' parameter of SyntheticDataset has {problem}. "
                f"Use keywords of simulate_study ({', '.join(sorted(known - set(own)))}) and pass "
                "the others as SyntheticDataset parameters."
            )
        return SimulationParams.from_kwargs(**own, **extra)

    def _memory(self) -> dict[str, Any]:
        cache = self.__dict__.get("_memory_cache")
        if cache is None:
            cache = {"plan": plan_study(self.simulation_params()), "subjects": {}}
            self.__dict__["_memory_cache"] = cache
        return cache

    # -------------------------------------------------------------- on disk
    def _disk(self) -> dict[str, Any]:
        cache = self.__dict__.get("_disk_cache")
        if cache is None:
            root = Path(str(self.location))
            info = read_study_info(root)
            cache = {"root": root, "info": info, "stimuli": None}
            self.__dict__["_disk_cache"] = cache
        return cache

    def _disk_stimuli(self) -> StimulusSet:
        cache = self._disk()
        if cache["stimuli"] is None:
            cache["stimuli"] = read_stimuli(cache["root"])[0]
        return cache["stimuli"]

    # -------------------------------------------------------------- checks
    def _check_params_extra(self) -> None:
        """Check the parameters without simulating or reading any subject.

        In memory (``location=None``): every simulation parameter, through
        :class:`~conform_core.simulation.SimulationParams` (its declared constraints). With a
        ``location``: the folder exists and holds a readable ``study.json`` of this format
        (the simulation parameters are then ignored). The types of ``location`` and
        ``options`` are declared in ``_parameter_constraints``.

        Raises
        ------
        ParameterError
            For a simulation parameter out of range, or a placeholder location.
        DataFileError
            For a missing folder or ``study.json``.
        """
        if self.location is None:
            self.simulation_params()
            return
        root = check_existing_path(
            self.location, name="location", owner=self, kind="dir",
            fix=f"Write a study there with `conform simulate "
                f"{ParameterError.quote(str(self.location))}`, or pass the folder it wrote.")
        if not (root / "study.json").is_file():
            raise DataFileError(
                f"The 'location' parameter of SyntheticDataset must be a folder written by "
                f"`conform simulate`; {str(root)!r} holds no study.json. Write a study there with "
                f"`conform simulate {root}`, or point location at such a folder."
            )
        read_study_info(root)  # format and version

    def roi_labels(self) -> list[str]:
        """No ROI labels: simulated units carry none (in memory and on disk)."""
        return []

    def stimulus_set(self) -> StimulusSet:
        """Every stimulus of the study: planned in memory (cheap), or ``stimuli.tsv``."""
        if self.location is None:
            plan: StudyPlan = self._memory()["plan"]
            return plan.stimuli
        return self._disk_stimuli()

    # -------------------------------------------------------------- Dataset API
    def subjects(self) -> list[str]:
        """Names of the subjects: ``sub-01``, ``sub-02``, ..."""
        if self.location is None:
            plan: StudyPlan = self._memory()["plan"]
            return plan.subject_names
        return [str(s["name"]) for s in self._disk()["info"]["subjects"]]

    def _load_subject(self, name: str) -> Subject:
        if self.location is None:
            cache = self._memory()
            if name not in cache["subjects"]:
                index = cache["plan"].subject_names.index(name)
                cache["subjects"][name] = simulate_subject(cache["plan"], index)
            return cache["subjects"][name]
        disk = self._disk()
        return read_study_subject(disk["root"], name, info=disk["info"],
                                  stimuli=self._disk_stimuli())

    def data_params(self) -> dict[str, Any]:
        """Parameters of the data read: from a folder, the study's own settings (study.json).

        In memory these are this instance's parameters. From a folder the constructor's
        simulation parameters are ignored, so the folder's are returned instead (settings
        that are not parameters of this class go into ``options`` when they differ from the
        simulator's defaults), and a lock file records the study that was analysed.
        """
        params = dict(self.get_params(deep=False))
        if self.location is None:
            return params
        study = dict(self._disk()["info"]["params"])
        fields = SimulationParams.__dataclass_fields__
        options = {}
        for key, value in sorted(study.items()):
            if key in params:
                params[key] = value
            elif key in fields and value != fields[key].default:
                options[key] = value
        params["options"] = options or None
        return params

    def describe(self) -> dict[str, Any]:
        """Summarise the dataset; from a folder, only ``study.json`` is read."""
        if self.location is None:
            summary = super().describe()
            summary["params"] = self.simulation_params().as_dict()
            return summary
        info = self._disk()["info"]
        rows = [{"subject": s["name"], "n_trials": s["n_trials"], "n_units": info["n_units"],
                 "n_stimuli": s["n_stimuli"], "n_runs": s["n_runs"], "n_train": s["n_train"],
                 "n_test": s["n_test"], "has_truth": True} for s in info["subjects"]]
        return {"dataset": type(self).__name__, "location": str(self.location),
                "params": info["params"], "subjects": rows}
