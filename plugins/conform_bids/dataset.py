"""The ``bids`` dataset: a BIDS raw folder with fMRIPrep (or any BIDS-derivatives) outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core.components import Dataset
from conform_core.constraints import (
    Boolean,
    NonEmptyStr,
    Options,
    PathLike,
    SequenceOf,
)
from conform_core.data import Events, StimulusSet, Subject, TimeSeriesData, Units
from conform_core.exceptions import ConformError, DataFileError, ParameterError
from conform_core.validation import check_existing_path, suggest

from . import _images as img
from ._layout import SURFACE_SPACES, RunFiles, StudyIndex, index_study, parse_space
from ._reading import read_unit_runs, space_of
from ._rois import resolve_roi_path, roi_kind, roi_names, surface_roi, volume_roi
from ._stimuli import StimulusCatalog, load_catalog
from ._tables import (
    MOTION6,
    RawEvents,
    choose_stimulus_column,
    read_confounds,
    read_events,
    read_tsv,
    stem_ids,
)
from ._truth import read_truth, truth_file

__all__ = ["BIDSDataset"]


@dataclass
class _State:
    """What a BIDSDataset has found so far, for one set of parameters."""

    key: str
    index: StudyIndex
    events: dict[str, RawEvents] = field(default_factory=dict)
    catalog: StimulusCatalog | None = None
    stimuli: StimulusSet | None = None
    column: str | None = None
    checked: set[str] = field(default_factory=set)


def _labels(value: Any, prefix: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    return [str(v)[len(prefix):] if str(v).startswith(prefix) else str(v) for v in items]


class BIDSDataset(Dataset):
    """A BIDS study: raw events and sidecars, preprocessed BOLD from a derivatives folder.

    Subjects are ``sub-XX``; each is loaded as ``TimeSeriesData`` (one array per run, units x
    time) with its events, for a GLM stage (``glm = "glmsingle"``) to turn into single
    trials. The layout is indexed with pybids (see :mod:`conform_bids._layout` for why);
    nothing else is read until a subject is loaded, and then runs are read one at a time and
    reduced to the units at once.

    Parameters
    ----------
    location : str
        The BIDS raw root (``dataset_description.json``, ``sub-*/``, ``stimuli/``).
    derivatives : str or None, default="derivatives/fmriprep"
        The derivatives folder with the preprocessed BOLD (relative to ``location``, or
        absolute). ``"none"`` (``--param derivatives=none`` on the command line,
        ``derivatives = "none"`` in a spec; None in Python) reads the raw BOLD (units: voxels
        whose first run varies).
    task : str or None, default=None
        The task (without ``task-``). None: the only task with BOLD runs.
    space : str, default="MNI152NLin2009cAsym"
        Volume spaces (any template, ``T1w``) read ``*_space-S_desc-preproc_bold.nii.gz``
        with ``*_desc-brain_mask.nii.gz``; ``fsaverage``, ``fsaverage5``, ``fsaverage6``,
        ``fsLR``, ``fsnative`` read ``*_space-S_hemi-{L,R}_bold.func.gii`` (vertex counts
        checked against the density). fMRIPrep's ``S:res-2`` / ``S:den-32k`` chooses a
        resolution or density when there are several.
    cifti : bool, default=False
        With ``space="fsLR"``, read ``*_space-fsLR_den-91k_bold.dtseries.nii`` instead.
    participants, sessions : list of str or None, default=None
        Subject and session labels to read (with or without ``sub-``/``ses-``); None reads
        all. (``participants``, as fMRIPrep's ``--participant-label``: ``subjects`` is the
        method every dataset has.)
    stimulus_column : str, default="auto"
        The events column naming each stimulus: ``auto`` is ``stim_file`` when the events
        have it, else ``trial_type``; any column may be named. Rows with ``n/a`` there are
        not trials.
    confounds : list of str, default=()
        Columns of fMRIPrep's ``*_desc-confounds_timeseries.tsv`` given to the GLM as extra
        regressors (``"motion6"``: the six motion parameters).
    confounds_na : {"error", "zero"}, default="error"
        What to do with ``n/a`` confound values (fMRIPrep's first row of derivative
        columns): refuse, or fill with 0.
    roi : str or None, default=None
        ROI labels for the units: an atlas NIfTI (dseg) with its ``.tsv`` (index, name), a
        binary mask NIfTI, or ``.label.gii`` files (``{hemi}`` in the path); ``{subject}`` is
        replaced by the subject label. Relative paths are also looked up under ``location``
        and ``derivatives``.
    embeddings : str or None, default="auto"
        Stimulus features (one row per ``stimuli/stimuli.tsv`` row): ``auto`` reads
        ``stimuli/stimuli_embeddings.npy`` when present; a path; or None.
    truth : str or None, default="auto"
        Ground truth of a simulated study: ``auto`` reads ``derivatives/ground-truth`` when
        present; a folder; or None.

    Examples
    --------
    >>> ds = BIDSDataset(location="study", space="fsaverage5")  # doctest: +SKIP
    >>> ds.subjects()  # doctest: +SKIP
    ['sub-01', 'sub-02']
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "location": [PathLike("dir", must_exist=False)],
        "derivatives": [PathLike("dir", must_exist=False), None],
        "task": [NonEmptyStr("a task label"), None],
        "space": [NonEmptyStr("a space label such as 'MNI152NLin2009cAsym', 'T1w' or "
                              "'fsaverage5'")],
        "cifti": [Boolean()],
        "participants": [NonEmptyStr("a subject label"),
                     SequenceOf(NonEmptyStr(), min_length=1, what="a list of subject labels"),
                     None],
        "sessions": [NonEmptyStr("a session label"),
                     SequenceOf(NonEmptyStr(), min_length=1, what="a list of session labels"),
                     None],
        "stimulus_column": [NonEmptyStr("'auto' or an events.tsv column name")],
        "confounds": [SequenceOf(NonEmptyStr(), what="a list of confound column names")],
        "confounds_na": [Options(("error", "zero"))],
        "roi": [PathLike("any", must_exist=False), None],
        "embeddings": [Options(("auto", "none")), PathLike("file", must_exist=False), None],
        "truth": [Options(("auto", "none")), PathLike("dir", must_exist=False), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "location": "Pass the BIDS root (the folder with dataset_description.json).",
        "derivatives": "Pass the fMRIPrep output folder, or derivatives=\"none\" (--param "
                       "derivatives=none) to read the raw BOLD.",
        "participants": "Use e.g. $participants=['01', '02'].",
        "sessions": "Use e.g. $sessions=['01'].",
        "confounds": "Use e.g. $confounds=['motion6', 'framewise_displacement'].",
    }

    def __init__(
        self,
        location: str | None = None,
        derivatives: str | None = "derivatives/fmriprep",
        task: str | None = None,
        space: str = "MNI152NLin2009cAsym",
        cifti: bool = False,
        participants: Sequence[str] | None = None,
        sessions: Sequence[str] | None = None,
        stimulus_column: str = "auto",
        confounds: Sequence[str] = (),
        confounds_na: str = "error",
        roi: str | None = None,
        embeddings: str | None = "auto",
        truth: str | None = "auto",
    ) -> None:
        self.location = location
        self.derivatives = derivatives
        self.task = task
        self.space = space
        self.cifti = cifti
        self.participants = participants
        self.sessions = sessions
        self.stimulus_column = stimulus_column
        self.confounds = confounds
        self.confounds_na = confounds_na
        self.roi = roi
        self.embeddings = embeddings
        self.truth = truth

    # ------------------------------------------------------------------ paths and state
    def _root(self) -> Path:
        return Path(str(self.location))

    def _derivatives_path(self) -> Path | None:
        if self.derivatives is None or str(self.derivatives).lower() == "none":
            return None
        path = Path(str(self.derivatives))
        return path if path.is_absolute() else self._root() / path

    def _space(self) -> tuple[str, dict[str, str]]:
        return parse_space(str(self.space))

    def _kind(self) -> str:
        """Return ``volume``, ``surface``, ``cifti`` or ``raw``."""
        if self._derivatives_path() is None:
            return "raw"
        name = self._space()[0]
        if name in SURFACE_SPACES:
            return "cifti" if self.cifti else "surface"
        return "volume"

    def _confound_columns(self) -> list[str]:
        out: list[str] = []
        for c in [self.confounds] if isinstance(self.confounds, str) else list(self.confounds):
            for name in (MOTION6 if c == "motion6" else (c,)):
                if name not in out:
                    out.append(name)
        return out

    def _state(self) -> _State:
        key = repr(sorted(self.get_params(deep=False).items(), key=lambda kv: kv[0]))
        cache: _State | None = getattr(self, "_cache", None)
        if cache is not None and cache.key == key:
            return cache
        root = check_existing_path(self.location, name="location", owner=self, kind="dir",
                                   fix=self._parameter_fixes["location"])
        deriv = self._derivatives_path()
        if deriv is not None and not deriv.is_dir():
            raise DataFileError(
                f"The derivatives folder {str(deriv)!r} does not exist. Pass derivatives= the "
                "fMRIPrep output folder (relative to location, or absolute), or read the raw "
                "BOLD with derivatives = \"none\" (on the command line: --param "
                "derivatives=none).")
        index = index_study(root, deriv, task=self.task, space=str(self.space),
                            cifti=bool(self.cifti), subjects=_labels(self.participants, "sub-"),
                            sessions=_labels(self.sessions, "ses-"),
                            need_confounds=bool(self._confound_columns()))
        cache = _State(key, index)
        self._cache = cache
        return cache

    def _index(self, *, strict: bool = True) -> StudyIndex:
        """Return the index; with ``strict``, ParameterError for an ambiguous or unknown task/space."""
        index = self._state().index
        if not strict:
            return index
        if index.task is None:
            raise ParameterError(param="task", value=self.task, owner=self,
                                 allowed=f"one of the tasks found ({', '.join(index.tasks)})"
                                 if index.tasks else "a task with BOLD runs",
                                 fix="Choose one with $task=..." if index.tasks else
                                 f"No *_bold file was found under {ParameterError.quote(str(self._root()))}.")
        if self.task is not None and self.task not in index.tasks:
            raise ParameterError(param="task", value=self.task, owner=self,
                                 allowed=f"a task found here ({', '.join(index.tasks)})",
                                 fix=suggest(str(self.task), index.tasks).strip())
        space = self._space()[0]
        if self._derivatives_path() is not None and index.spaces and space not in index.spaces:
            raise ParameterError(
                param="space", value=self.space, owner=self,
                allowed=f"a space of the derivatives ({', '.join(index.spaces)})",
                fix=suggest(space, index.spaces).strip())
        if not index.subjects():
            if self.participants is not None:
                raise ParameterError(
                    param="participants", value=self.participants, owner=self,
                    allowed="subject labels with usable runs",
                    fix="None of them has one; `conform data info bids DIR` lists the "
                        "subjects and why runs cannot be used.")
            if self.sessions is not None:
                raise ParameterError(
                    param="sessions", value=self.sessions, owner=self,
                    allowed="session labels with usable runs",
                    fix="No run is in those sessions (a study without ses- folders has none: "
                        "leave sessions unset); `conform data info bids DIR` lists them.")
            raise DataFileError(
                f"No usable BOLD run of task {index.task!r} in {str(self._root())!r}"
                f"{' (derivatives ' + repr(str(index.derivatives)) + ')' if index.derivatives else ''}"
                f" for space {self.space!r}. `conform data info bids {self._root()}` lists what "
                "was found and why it cannot be used.")
        return index

    def _runs(self, label: str) -> list[RunFiles]:
        return self._index().runs.get(label, [])

    def _raw_events(self, path: str) -> RawEvents:
        state = self._state()
        if path not in state.events:
            state.events[path] = read_events(path, self._stimulus_column())
        return state.events[path]

    def _stimulus_column(self) -> str:
        """Return the study's stimulus column (``auto`` decided over every events file)."""
        state = self._state()
        if state.column is None:
            state.column = choose_stimulus_column(state.index.task_events,
                                                  str(self.stimulus_column))
        return state.column

    def _catalog(self) -> StimulusCatalog:
        state = self._state()
        if state.catalog is None:
            emb = self.embeddings
            catalog = load_catalog(self._root(), None if emb is None else str(emb))
            if self._stimulus_column() == "stim_file":
                # ids from file names, over the whole study (stable whatever runs are read)
                listed = set() if catalog.table is None or catalog.table.files is None \
                    else set(catalog.table.files.tolist())
                values: set[str] = set()
                for path in state.index.task_events:
                    try:
                        table = read_tsv(path, "events")
                    except DataFileError:
                        continue  # reported when its run is read
                    if "stim_file" in table.columns:
                        values.update(v.strip() for v in table["stim_file"].astype(str))
                values -= {"", "n/a", "nan", "NaN"} | listed
                catalog.stems = stem_ids(sorted(values))
            state.catalog = catalog
        return state.catalog

    def _truth_folder(self) -> Path | None:
        if self.truth in (None, "none"):
            return None
        if self.truth == "auto":
            folder = self._root() / "derivatives" / "ground-truth"
            return folder if folder.is_dir() else None
        path = Path(str(self.truth))
        return path if path.is_absolute() or path.is_dir() else self._root() / path

    # ------------------------------------------------------------------ checks
    def _problems(self, label: str) -> list[str]:
        """Errors loading ``sub-<label>`` would raise (layout, events, stimuli, TR): no image read."""
        runs = self._runs(label)
        problems = [p for r in runs for p in r.problems]
        catalog = self._catalog()
        for r in runs:
            if r.events is None:
                continue
            try:
                catalog.ids_of(self._raw_events(r.events))
            except DataFileError as exc:
                problems.append(str(exc))
        trs = {r.tr for r in runs if r.tr is not None}
        if len(trs) > 1:
            by_tr: dict[float, RunFiles] = {}
            for r in runs:
                if r.tr is not None:
                    by_tr.setdefault(r.tr, r)
            shown = "; ".join(f"{tr:g} s in {r.tr_source}" for tr, r in sorted(by_tr.items()))
            problems.append(
                f"The runs of sub-{label} have different RepetitionTime ({shown}). One TR per "
                "subject is needed: fix the sidecars, or read runs of one TR with "
                "sessions=/task=.")
        return problems

    def _check_files(self, label: str) -> None:
        """Check ``sub-<label>``'s confound values and image headers (no image data read).

        The chosen confound columns are read (``confounds_na`` applied) and must have one row
        per volume; volumes: every brain mask on one grid and each BOLD run 4-D on its mask's
        grid; raw BOLD: 4-D, on the first run's grid; CIFTI: volumes from the header. GIFTI
        files hold their data inline (no separate header): surfaces are checked on load.
        """
        state = self._state()
        if label in state.checked:
            return
        runs = self._runs(label)
        columns = self._confound_columns()
        rows: list[int | None] = [None] * len(runs)
        if columns:
            for i, r in enumerate(runs):
                assert r.confounds is not None  # a problem of the index otherwise
                rows[i] = read_confounds(r.confounds, columns, str(self.confounds_na),
                                         None).shape[0]
        kind = self._kind()
        volumes: list[int | None] = [None] * len(runs)
        if kind == "volume":
            grids = [img.mask_grid(r.data["mask"]) for r in runs]  # masks first, as on load
            for r, g in zip(runs, grids):
                if not g.same_as(grids[0]):
                    raise DataFileError(
                        f"The brain mask {r.data['mask']!r} ({g.text()}) is on another grid than "
                        f"{runs[0].data['mask']!r} ({grids[0].text()}). All runs of a subject "
                        "must be in one space and resolution (choose space='S:res-X').")
            for i, (r, g) in enumerate(zip(runs, grids)):
                volumes[i] = int(img.open_volume(r.data["bold"], g, r.data["mask"]).shape[3])
        elif kind == "raw":
            first = img.load_image(runs[0].data["bold"])
            grid = img.grid_of(first)
            for i, r in enumerate(runs):
                image = img.open_volume(r.data["bold"], grid, runs[0].data["bold"])
                volumes[i] = int(image.shape[3])
        elif kind == "cifti":
            for i, r in enumerate(runs):
                shape = img.load_image(r.data["cifti"], "CIFTI").shape
                volumes[i] = int(shape[0]) if len(shape) == 2 else None
        for r, n_rows, n_vol in zip(runs, rows, volumes):
            if n_rows is not None and n_vol is not None and n_rows != n_vol:
                raise DataFileError(
                    f"Confounds file {r.confounds!r} has {n_rows} rows but its BOLD run "
                    f"{r.main_file!r} has {n_vol} volumes. Use the confounds fMRIPrep wrote "
                    "for this run.")
        state.checked.add(label)

    def _check_params_extra(self) -> None:
        """Check the layout, confounds and image headers before any work (no image data).

        Location, derivatives, task, space, participants, and every selected run's events,
        stimulus files, TR and mask (from file names, sidecars and events), then its
        confound values and image headers (:meth:`_check_files`).

        Raises
        ------
        ParameterError
            For an ambiguous or unknown task, a space not in the derivatives, unknown subjects.
        DataFileError
            For a missing folder, an unindexable layout, or a run that cannot be loaded
            (naming the file and the fix).
        """
        if self.roi is not None and roi_kind(str(self.roi)) == "surface" and \
                self._kind() not in ("surface",):
            raise ParameterError(param="roi", value=self.roi, owner=self,
                                 allowed="a NIfTI atlas or mask for a volume space",
                                 fix="Use .label.gii files with a surface $space.")
        index = self._index()
        wanted = _labels(self.participants, "sub-")
        if wanted is not None:
            unknown = [s for s in wanted if not index.runs.get(s)]
            if unknown:
                found = [f"sub-{s}" for s in index.subjects()]
                raise ParameterError(
                    param="participants", value=self.participants, owner=self,
                    allowed=f"subjects with usable runs ({', '.join(found[:10])})",
                    fix=f"sub-{ParameterError.quote(unknown[0])} has none; `conform data info "
                        "bids DIR` says why.")
        for label in index.subjects():
            problems = self._problems(label)
            if problems:
                more = (f" ({len(problems) - 1} more problem(s): `conform data info bids "
                        f"{self._root()}` lists them.)" if len(problems) > 1 else "")
                raise DataFileError(problems[0] + more)
        for label in index.subjects():
            self._check_files(label)
        if self.roi is not None:
            self.roi_labels()

    # ------------------------------------------------------------------ Dataset API
    def subjects(self) -> list[str]:
        """Subjects with at least one usable run: ``sub-01``, ``sub-02``, ..."""
        return [f"sub-{s}" for s in self._index().subjects()]

    def load_subject(self, name: str) -> Subject:
        """Load subject ``name`` (``sub-01``, or the label ``01``)."""
        if not str(name).startswith("sub-") and f"sub-{name}" in self.subjects():
            name = f"sub-{name}"
        return super().load_subject(name)

    def stimulus_set(self) -> StimulusSet:
        """Return every stimulus of the chosen runs, from the events and ``stimuli/`` only.

        The rows of ``stimuli/stimuli.tsv`` when it lists them all.
        """
        state = self._state()
        if state.stimuli is None:
            catalog = self._catalog()
            ids: list[str] = []
            sources: dict[str, str] = {}
            index = self._index()
            for label in index.subjects():
                for r in index.runs[label]:
                    if r.events is None:
                        continue
                    raw = self._raw_events(r.events)
                    run_ids = catalog.ids_of(raw)
                    ids.extend(run_ids.tolist())
                    sources.update(catalog.source_of(raw, run_ids))
            state.stimuli = catalog.stimulus_set(ids, sources)
        return state.stimuli

    def roi_labels(self) -> list[str] | None:
        """ROI labels ``roi`` can give (its table of names, or the mask's name); [] without roi.

        None when ``roi`` depends on the subject and the first subject's file is missing.
        """
        if self.roi is None:
            return []
        label = self._index().subjects()[0]
        hemis = ["L", "R"] if "{hemi}" in str(self.roi) else [None]
        names: set[str] = set()
        for hemi in hemis:
            path = resolve_roi_path(str(self.roi), subject=label, hemi=hemi, bases=self._bases())
            names.update(roi_names(path))
        return sorted(names)

    def _bases(self) -> list[Path]:
        deriv = self._derivatives_path()
        return [self._root()] + ([deriv] if deriv is not None else [])

    # ------------------------------------------------------------------ loading
    def _load_subject(self, name: str) -> Subject:
        label = name[len("sub-"):]
        runs = self._runs(label)
        problems = self._problems(label)
        if problems:
            raise DataFileError(problems[0])
        catalog = self._catalog()
        raws = [self._raw_events(str(r.events)) for r in runs]
        ids = [catalog.ids_of(raw) for raw in raws]
        events = []
        for r, raw, run_ids in zip(runs, raws, ids):
            onset = raw.onset
            if r.start_time:
                # Slice-timing corrected (fMRIPrep's StartTime: when the reference slice of
                # volume 0 was acquired): volume k samples time StartTime + k * TR, so onsets
                # move by -StartTime relative to the volumes (nilearn's slice_time_ref). Events
                # can start no earlier than volume 0: the few before StartTime are put at 0.
                onset = np.maximum(onset - float(r.start_time), 0.0)
            try:
                events.append(Events(onset=onset, duration=raw.duration,
                                     stimulus_ids=run_ids))
            except ConformError as exc:
                raise DataFileError(f"Events file {r.events!r}: {exc}") from None
        confounds = self._read_confounds(runs)  # small: before any image, to fail fast
        data, units = self._read_runs(label, runs)
        for r, d, c in zip(runs, data, confounds or []):
            if c.shape[0] != d.shape[1]:
                raise DataFileError(
                    f"Confounds file {r.confounds!r} has {c.shape[0]} rows but its BOLD run "
                    f"{r.main_file!r} has {d.shape[1]} volumes. Use the confounds fMRIPrep wrote "
                    "for this run.")
        sessions = sorted({r.session for r in runs})
        names = self._confound_columns()
        try:
            timeseries = TimeSeriesData(
                runs=data, events=events, tr=float(runs[0].tr or 0.0),
                sessions=np.array([sessions.index(r.session) for r in runs], dtype=np.int64),
                subject=name, units=units, confounds=confounds,
                confound_names=names if confounds is not None else None)
        except ConformError as exc:
            raise DataFileError(f"The runs of {name} ({runs[0].main_file} ...) do not fit their "
                                f"events: {exc}") from None
        seen = timeseries.stimulus_ids()
        stimuli = self.stimulus_set().select(np.unique(seen))
        train, test = catalog.split_of(seen)
        return Subject(name=name, stimuli=stimuli, timeseries=timeseries, train_ids=train,
                       test_ids=test, truth=self._read_truth(label, name, units, runs, events))

    def _read_runs(self, label: str, runs: list[RunFiles]
                   ) -> tuple[list[NDArray[np.float32]], Units]:
        """Read every run, one at a time, reduced to the units (:func:`read_unit_runs`)."""
        kind = self._kind()
        space, extra = self._space()
        read = read_unit_runs(runs, kind, space, extra.get("den"), label)
        self._n_left = read.n_left
        return read.data, self._units(label, kind, read.indices, read.grid)

    def output_space(self, name: str) -> dict[str, Any]:
        """Describe where subject ``name``'s units live, for writing per-unit maps.

        ``conform glmsingle --dataset bids`` writes its maps (betas, condition means, t)
        there: a NIfTI on the BOLD grid for volumes, one GIFTI per hemisphere for surfaces,
        a CIFTI ``.dscalar.nii`` with the first run's brain models (``brain_models``, a
        nibabel ``BrainModelAxis``) for CIFTI. ``indices`` are the units' positions in that
        space (``Units.indices``). Reads the first run's brain mask (volumes) or CIFTI
        header and nothing else.
        """
        label = name[len("sub-"):] if name.startswith("sub-") else name
        space, extra = self._space()
        return space_of(self._runs(label), self._kind(), space, extra.get("den"))

    def _units(self, label: str, kind: str, indices: NDArray[np.int64], grid: Any) -> Units:
        space = self._space()[0] if kind != "raw" else "native"
        if kind in ("volume", "raw"):
            ids = np.char.add("v", np.char.zfill(indices.astype(str), 7))
        elif kind == "surface":
            n_left = self._n_left
            ids = np.array([f"L{i:06d}" if i < n_left else f"R{i - n_left:06d}"
                            for i in indices.tolist()], dtype=str)
        else:
            ids = np.char.add("g", np.char.zfill(indices.astype(str), 6))
        roi = None
        if self.roi is not None:
            if kind in ("volume", "raw"):
                if roi_kind(str(self.roi)) == "surface":
                    raise ParameterError(param="roi", value=self.roi, owner=self,
                                         allowed="a NIfTI atlas or mask for a volume space")
                path = resolve_roi_path(str(self.roi), subject=label, hemi=None,
                                        bases=self._bases())
                roi = volume_roi(path, grid, indices)
            elif kind == "surface":
                hemis = ["L", "R"] if "{hemi}" in str(self.roi) else []
                if not hemis:
                    raise ParameterError(param="roi", value=self.roi, owner=self,
                                         allowed="a .label.gii path with {hemi} for a surface "
                                                 "space")
                paths = {h: resolve_roi_path(str(self.roi), subject=label, hemi=h,
                                             bases=self._bases()) for h in hemis}
                roi = surface_roi(paths, indices, self._n_left)
            else:
                raise ParameterError(param="roi", value=self.roi, owner=self,
                                     allowed="None with cifti=True (CIFTI ROIs are not read)")
        return Units(ids=ids, space=space, indices=indices, roi=roi)

    def _read_confounds(self, runs: list[RunFiles]) -> list[NDArray[np.float64]] | None:
        columns = self._confound_columns()
        if not columns:
            return None
        out = []
        for r in runs:
            assert r.confounds is not None  # a problem of the index otherwise
            out.append(read_confounds(r.confounds, columns, str(self.confounds_na), None))
        return out

    def _read_truth(self, label: str, name: str, units: Units, runs: list[RunFiles],
                    events: list[Events]) -> Any:
        folder = self._truth_folder()
        kind = self._kind()
        if folder is None or kind not in ("volume", "surface"):
            return None
        path = truth_file(folder, label)
        if not path.is_file():
            return None
        rows, total = self._truth_rows(label, runs)
        return read_truth(path, name, units, kind, rows, n_trials=total)

    def _truth_rows(self, label: str, runs: list[RunFiles]
                    ) -> tuple[NDArray[np.int64] | None, int | None]:
        """Rows of the truth's ``trial_amplitudes`` for the loaded runs' events, and their count.

        The truth numbers the trials of every run of the subject (any session), runs in BIDS
        order and events by onset: each loaded run's rows start after the trials of the runs
        before it, whether or not those are loaded (``sessions=``). (None, None) when a run's
        events cannot be read.
        """
        start, offsets = 0, {}
        try:
            for key, path in self._index().all_runs.get(label, []):
                raw = None if path is None else self._raw_events(path)
                offsets[key] = (start, raw)
                start += 0 if raw is None else raw.onset.size
        except ConformError:
            return None, None
        rows = []
        for r in runs:
            first, raw = offsets.get(r.key, (0, None))
            if raw is None:
                return None, None
            rank = np.argsort(np.argsort(raw.onset, kind="stable"), kind="stable")
            rows.append(first + rank)
        return (np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)), start

    # ------------------------------------------------------------------ summary
    def describe(self) -> dict[str, Any]:
        """Summarise what was found per subject, and what cannot be used and why.

        Runs, sessions, TR, events and stimuli; reads file names, sidecars and events only
        (no image).
        """
        from ._describe import describe_dataset

        return describe_dataset(self)
