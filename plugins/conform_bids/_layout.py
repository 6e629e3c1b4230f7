"""Index a BIDS raw folder and its derivatives with pybids, into plain run records.

Why pybids and not a small parser of our own: BIDS metadata follows the *inheritance
principle* (a ``RepetitionTime`` in a top-level ``task-X_bold.json`` applies to every run
below it unless a closer sidecar overrides it, as in ds001), derivatives folders are BIDS
datasets of their own with extra entities (``space``, ``res``, ``den``, ``hemi``, ``desc``),
and file names must be parsed by the specification's entity table (``run-01`` and ``run-1``
are the same run). pybids implements all three, as the reference implementation used by
fMRIPrep's own tools; reimplementing them would be a second, less tested copy of the
specification. pybids is used only here: everything after indexing works on the plain
:class:`RunFiles` records below, so the rest of the plugin reads files directly.

Indexing reads file names and JSON sidecars only: no image is opened.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conform_core.exceptions import DataFileError

__all__ = [
    "SURFACE_SPACES",
    "Finding",
    "RunFiles",
    "StudyIndex",
    "index_study",
    "parse_space",
]

#: Spaces read as surfaces (one GIFTI per hemisphere, or CIFTI for fsLR with cifti=True).
SURFACE_SPACES = ("fsaverage", "fsaverage5", "fsaverage6", "fsLR", "fsnative")

#: Entities that identify one acquisition (a run) across raw and derivative files.
_KEY_ENTITIES = ("subject", "session", "task", "acquisition", "ceagent", "reconstruction",
                 "direction", "run", "echo", "part")

_NIFTI = [".nii.gz", ".nii"]

RunKey = tuple[Any, ...]


@dataclass(frozen=True)
class Finding:
    """Something found that cannot be used (or a run that can, but has a problem)."""

    subject: str
    path: str
    reason: str

    def text(self) -> str:
        """One line: ``path: reason``."""
        return f"{self.path}: {self.reason}"


@dataclass
class RunFiles:
    """The files of one BOLD run, as found (nothing read).

    ``data`` holds the image(s) to read: ``{"bold": path, "mask": path}`` for volumes,
    ``{"L": path, "R": path}`` for GIFTI surfaces, ``{"cifti": path}`` for CIFTI.
    ``problems`` are errors to raise when this run is loaded (missing events, TR, mask...).
    """

    subject: str
    session: str
    task: str
    run: int | None
    key: RunKey
    raw_bold: str | None
    data: dict[str, str] = field(default_factory=dict)
    events: str | None = None
    confounds: str | None = None
    tr: float | None = None
    tr_source: str = ""
    start_time: float | None = None
    problems: list[str] = field(default_factory=list)
    no_derivative: str | None = None

    @property
    def label(self) -> str:
        """``sub-01 ses-02 task-x run-3`` (for messages)."""
        parts = [f"sub-{self.subject}"]
        if self.session:
            parts.append(f"ses-{self.session}")
        parts.append(f"task-{self.task}")
        if self.run is not None:
            parts.append(f"run-{self.run}")
        return " ".join(parts)

    @property
    def main_file(self) -> str:
        """The file that names this run in messages (the first data file, else the raw BOLD)."""
        return next(iter(self.data.values()), self.raw_bold or self.label)


@dataclass
class StudyIndex:
    """What the layout holds for the chosen task, space and subjects."""

    root: Path
    derivatives: Path | None
    tasks: list[str]
    task: str | None
    spaces: list[str]
    runs: dict[str, list[RunFiles]]
    findings: list[Finding]
    #: Every func ``*_events.tsv`` of the chosen task, any subject or session (study-wide
    #: choices: the stimulus column, stimulus ids from file names).
    task_events: list[str] = field(default_factory=list)
    #: Per kept subject, every BOLD run of the chosen task in any session, in BIDS order:
    #: (run key, events file or None); the ground truth numbers trials over all of them.
    all_runs: dict[str, list[tuple[RunKey, str | None]]] = field(default_factory=dict)
    #: Subject and session labels of the chosen task's BOLD files (before any selection).
    found_subjects: list[str] = field(default_factory=list)
    found_sessions: list[str] = field(default_factory=list)
    #: Problems of the selection itself (e.g. sessions= on a study without sessions).
    problems: list[str] = field(default_factory=list)

    def subjects(self) -> list[str]:
        """Subject labels (without ``sub-``) with at least one usable run, sorted."""
        return sorted(s for s, runs in self.runs.items() if runs)


def parse_space(space: str) -> tuple[str, dict[str, str]]:
    """Split fMRIPrep's ``SPACE[:res-X][:den-Y]`` into the space and its extra entities."""
    name, *rest = space.split(":")
    extra = {}
    for part in rest:
        key, _, value = part.partition("-")
        if key in ("res", "den") and value:
            extra[key] = value
    return name, extra


def _entities(f: Any) -> dict[str, Any]:
    return dict(f.get_entities(metadata=False))


def _key(entities: dict[str, Any]) -> RunKey:
    out = []
    for name in _KEY_ENTITIES:
        value = entities.get(name)
        if name in ("run", "echo") and value is not None:
            value = int(value)
        out.append(None if value is None else str(value) if name not in ("run", "echo") else value)
    return tuple(out)


def _open_layout(root: Path, derivatives: Path | None) -> Any:
    """Index ``root`` (and ``derivatives``) with pybids; DataFileError naming the problem."""
    import bids

    for folder, what in ((root, "BIDS root"), (derivatives, "derivatives folder")):
        if folder is None:
            continue
        description = folder / "dataset_description.json"
        if not description.is_file():
            raise DataFileError(
                f"The {what} {str(folder)!r} has no dataset_description.json. Every BIDS "
                "dataset (and derivatives folder) starts with one; check the path"
                + (", or read the raw BOLD with derivatives = \"none\" (--param "
                   "derivatives=none)." if folder == derivatives else ".")
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bids.BIDSLayout(str(root), validate=False,
                                   derivatives=[str(derivatives)] if derivatives else False)
    except Exception as exc:  # pybids raises ValueError and its own BIDS*Error types
        where = str(derivatives) if derivatives and "deriv" in str(exc).lower() else str(root)
        raise DataFileError(
            f"pybids cannot index {where!r}: {exc}. A derivatives folder's "
            "dataset_description.json needs \"DatasetType\": \"derivative\" and "
            "\"GeneratedBy\": [{\"Name\": ...}]; fix it, or read the raw BOLD with "
            "derivatives = \"none\" (--param derivatives=none)."
        ) from None


def _tr_of(layout: Any, path: str, name: str = "RepetitionTime") -> float | None:
    try:
        value = layout.get_metadata(path).get(name)
    except Exception:  # noqa: BLE001 (pybids: no metadata for an unindexed file)
        return None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def index_study(root: Path, derivatives: Path | None, *, task: str | None, space: str,
                cifti: bool, subjects: list[str] | None, sessions: list[str] | None,
                need_confounds: bool) -> StudyIndex:
    """Index the study: the BOLD runs of ``task`` in ``space`` per subject, and what is unusable.

    Parameters
    ----------
    root, derivatives : Path
        The BIDS raw root and the derivatives folder (None: read raw BOLD).
    task : str or None
        The task; None: the only task with BOLD runs (several: ``task`` stays None and the
        caller reports the choice).
    space : str
        ``SPACE[:res-X][:den-Y]``.
    cifti : bool
        Read ``*_bold.dtseries.nii`` (fsLR) instead of GIFTI hemispheres.
    subjects, sessions : list of str or None
        Labels (without ``sub-``/``ses-``) to keep; None keeps all.
    need_confounds : bool
        Whether a run without a confounds TSV is a problem.
    """
    layout = _open_layout(root, derivatives)
    findings: list[Finding] = []
    raw_bold = layout.get(scope="raw", datatype="func", suffix="bold", extension=_NIFTI)
    tasks = sorted({str(_entities(f).get("task", "")) for f in raw_bold} - {""})
    deriv_bold: list[Any] = []
    if derivatives is not None:
        deriv_bold = layout.get(scope="derivatives", datatype="func", suffix="bold",
                                extension=[*_NIFTI, ".func.gii", ".dtseries.nii"])
        tasks = sorted(set(tasks) | ({str(_entities(f).get("task", "")) for f in deriv_bold}
                                     - {""}))
    chosen = task if task is not None else (tasks[0] if len(tasks) == 1 else None)
    space_name, extra = parse_space(space)
    spaces = sorted({str(_entities(f)["space"]) for f in deriv_bold if "space" in _entities(f)})
    runs: dict[str, list[RunFiles]] = {}
    keep_subject = set(subjects) if subjects is not None else None
    keep_session = set(sessions) if sessions is not None else None
    task_bold = [_entities(f) for f in [*raw_bold, *deriv_bold]]
    task_bold = [e for e in task_bold if e.get("task") == chosen and e.get("subject")]
    found_subjects = sorted({str(e["subject"]) for e in task_bold})
    found_sessions = sorted({str(e["session"]) for e in task_bold if e.get("session")})
    processed = {str(_entities(f).get("subject")) for f in deriv_bold
                 if _entities(f).get("task") == chosen}  # subjects the derivatives hold BOLD of
    problems: list[str] = []
    no_sessions = keep_session is not None and chosen is not None and not found_sessions
    if no_sessions:
        problems.append(
            f"sessions={sorted(keep_session or [])} selects nothing: this study has no sessions "
            "(no ses- level in its file names). Leave sessions unset.")
    left_out: dict[RunKey, tuple[dict[str, Any], str]] = {}  # runs sessions= leaves out

    def selected(entities: dict[str, Any], path: str) -> bool:
        sub = str(entities.get("subject", ""))
        if keep_subject is not None and sub not in keep_subject:
            return False
        if entities.get("task") != chosen:
            if chosen is not None:
                findings.append(Finding(sub, path, f"task {entities.get('task')!r} is not the "
                                        f"chosen task {chosen!r}"))
            return False
        ses = str(entities.get("session") or "")
        if keep_session is not None and ses not in keep_session:
            left_out.setdefault(_key(entities), (entities, path))
            if not no_sessions:  # said once, in ``problems``
                findings.append(Finding(sub, path, f"session {ses!r} not in sessions="
                                        f"{sorted(keep_session)}"))
            return False
        return True

    # raw runs: one record per raw BOLD file
    by_key: dict[RunKey, RunFiles] = {}
    for f in raw_bold:
        ent = _entities(f)
        if not selected(ent, f.path):
            continue
        rec = RunFiles(subject=str(ent["subject"]), session=str(ent.get("session") or ""),
                       task=str(ent.get("task")), run=None if ent.get("run") is None
                       else int(ent["run"]), key=_key(ent), raw_bold=f.path)
        by_key[rec.key] = rec
    raw_keys = set(by_key)
    # derivative runs may exist without a raw file (a derivatives-only copy)
    if derivatives is not None:
        _attach_derivatives(layout, deriv_bold, by_key, findings, selected, space_name, extra,
                            cifti, spaces, processed)
    else:
        for rec in by_key.values():
            assert rec.raw_bold is not None
            rec.data = {"bold": rec.raw_bold}
    # events, confounds and TR
    events = layout.get(scope="raw", suffix="events", extension=".tsv")
    matched: set[str] = set()
    for rec in by_key.values():
        source = rec.raw_bold
        if source is not None:
            ev = layout.get_nearest(source, suffix="events", extension=".tsv", strict=True,
                                    full_search=False)
            if ev is not None:
                rec.events = str(ev)
                matched.add(str(Path(ev)))
        if rec.events is None:
            rec.events = _events_by_key(events, rec.key)
            if rec.events is not None:
                matched.add(str(Path(rec.events)))
        if rec.no_derivative is not None:
            if rec.events is None:  # nothing to misalign: not a run of this analysis
                findings.append(Finding(rec.subject, str(rec.raw_bold), rec.no_derivative))
                continue
            rec.problems.append(
                f"{rec.label} has a raw BOLD run with events ({Path(str(rec.raw_bold)).name}) "
                f"but {rec.no_derivative} in {str(derivatives)!r}: its trials would be left "
                f"out of sub-{rec.subject}. Choose a space every run has (space=...), "
                f"preprocess this run, or leave sub-{rec.subject} out with participants= (the "
                "other subjects' labels).")
            runs.setdefault(rec.subject, []).append(rec)
            continue
        if rec.events is None:
            rec.problems.append(
                f"{rec.label} has a BOLD run ({Path(rec.main_file).name}) but no events.tsv. "
                f"Add {_expected_events(rec)} (onset, duration and the stimulus column), or "
                "leave the run out with participants=/sessions=.")
        tr_path = next(iter(rec.data.values()), None)
        tr = _tr_of(layout, tr_path) if tr_path is not None else None
        rec.tr_source = tr_path or ""
        if tr is None and rec.raw_bold is not None:
            tr, rec.tr_source = _tr_of(layout, rec.raw_bold), rec.raw_bold
        rec.tr = tr
        if derivatives is not None and tr_path is not None:
            rec.start_time = _tr_of(layout, tr_path, "StartTime")
        if tr is None or tr <= 0:
            rec.problems.append(
                f"No RepetitionTime for {rec.label}: none in the JSON sidecars of "
                f"{Path(rec.main_file).name} (nor of its raw BOLD, nor inherited from a "
                f"top-level task-{rec.task}_bold.json). Add \"RepetitionTime\": <seconds> to "
                f"task-{rec.task}_bold.json at the dataset root.")
        if derivatives is not None:
            conf = _derivative_match(layout, rec.key, desc="confounds", suffix="timeseries",
                                     extension=".tsv")
            rec.confounds = conf
            if conf is None and need_confounds:
                rec.problems.append(
                    f"confounds= asks for confounds but {rec.label} has no "
                    "*_desc-confounds_timeseries.tsv in the derivatives. Run fMRIPrep on it, "
                    "or set confounds=[].")
        runs.setdefault(rec.subject, []).append(rec)
    for f in events:
        ent = _entities(f)
        if str(Path(f.path)) in matched or _key(ent) in raw_keys or _key(ent) in left_out:
            continue  # used, or its BOLD run is reported already (or left out by sessions=)
        sub = str(ent.get("subject", ""))
        if keep_subject is not None and sub not in keep_subject:
            continue
        if ent.get("datatype") not in (None, "func"):
            reason = f"events of a {ent.get('datatype')} recording, not of a BOLD run"
        elif ent.get("task") != chosen and chosen is not None:
            reason = f"task {ent.get('task')!r} is not the chosen task {chosen!r}"
        elif ent.get("subject") is None:
            continue  # a top-level events file inherited by runs
        else:
            reason = "events without a BOLD run (no *_bold file of the same entities)"
        findings.append(Finding(sub, f.path, reason))
    for recs in runs.values():
        recs.sort(key=lambda r: (r.session, r.run if r.run is not None else -1, r.key))
    if subjects is not None:
        for sub in subjects:
            runs.setdefault(sub, [])
    all_runs: dict[str, list[tuple[RunKey, str | None]]] = {}
    every = [(rec.subject, rec.session, rec.run, rec.key, rec.events) for rec in by_key.values()]
    for key, (ent, path) in left_out.items():
        if key in by_key:
            continue
        ev = _events_by_key(events, key)
        if ev is None and ent.get("space") is None:
            near = layout.get_nearest(path, suffix="events", extension=".tsv", strict=True,
                                      full_search=False)
            ev = None if near is None else str(near)
        every.append((str(ent["subject"]), str(ent.get("session") or ""),
                      None if ent.get("run") is None else int(ent["run"]), key, ev))
    for sub, _ses, _run, key, ev in sorted(every, key=lambda t: (t[0], t[1], -1 if t[2] is None
                                                                 else t[2], repr(t[3]))):
        all_runs.setdefault(sub, []).append((key, ev))
    task_events = sorted(str(f.path) for f in events if _entities(f).get("task") == chosen
                         and _entities(f).get("datatype") in (None, "func"))
    return StudyIndex(root=root, derivatives=derivatives, tasks=tasks, task=chosen,
                      spaces=spaces, runs=runs, findings=findings, task_events=task_events,
                      all_runs=all_runs, found_subjects=found_subjects,
                      found_sessions=found_sessions, problems=problems)


def _expected_events(rec: RunFiles) -> str:
    if rec.raw_bold is not None:
        name = Path(rec.raw_bold).name
        for ext in (".nii.gz", ".nii"):
            if name.endswith("_bold" + ext):
                return str(Path(rec.raw_bold).with_name(name[: -len("_bold" + ext)]
                                                        + "_events.tsv"))
    return "an *_events.tsv beside the raw BOLD"


def _events_by_key(events: list[Any], key: RunKey) -> str | None:
    for f in events:
        ent = _entities(f)
        if ent.get("datatype") not in (None, "func"):
            continue
        if _key(ent) == key:
            return str(f.path)
    return None


def _derivative_match(layout: Any, key: RunKey, **filters: Any) -> str | None:
    for f in layout.get(scope="derivatives", datatype="func", **filters):
        if _key(_entities(f)) == key:
            return str(f.path)
    return None


def _attach_derivatives(layout: Any, deriv_bold: list[Any], by_key: dict[RunKey, RunFiles],
                        findings: list[Finding], selected: Any, space: str,
                        extra: dict[str, str], cifti: bool, spaces: list[str],
                        processed: set[str]) -> None:
    """Fill each run's ``data`` from the derivatives in ``space``; note what cannot be used.

    A raw run without a file in ``space`` is left out when its subject has no preprocessed
    BOLD at all (``processed``: fMRIPrep was not run on it); otherwise it is marked
    (``no_derivative``) and becomes a problem of its subject when it has events.
    """
    surface = space in SURFACE_SPACES
    wanted: dict[RunKey, dict[str, list[str]]] = {}
    for f in deriv_bold:
        ent = _entities(f)
        path = str(f.path)
        if not selected(ent, path):
            continue
        key = _key(ent)
        if key not in by_key:
            by_key[key] = RunFiles(
                subject=str(ent["subject"]), session=str(ent.get("session") or ""),
                task=str(ent.get("task")), run=None if ent.get("run") is None
                else int(ent["run"]), key=key, raw_bold=None)
        fspace = ent.get("space")
        ext = str(ent.get("extension", ""))
        if fspace != space:
            what = "no space entity" if fspace is None else f"space {fspace!r}"
            findings.append(Finding(str(ent["subject"]), path,
                                    f"{what}, not the chosen space {space!r}"))
            continue
        if any(str(ent.get(k)) != v for k, v in extra.items()):
            findings.append(Finding(str(ent["subject"]), path, "another res-/den- than "
                                    f"{':'.join(f'{k}-{v}' for k, v in extra.items())}"))
            continue
        if surface:
            if cifti and ext == ".dtseries.nii":
                wanted.setdefault(key, {}).setdefault("cifti", []).append(path)
            elif not cifti and ext == ".func.gii" and ent.get("hemi") in ("L", "R"):
                wanted.setdefault(key, {}).setdefault(str(ent["hemi"]), []).append(path)
            else:
                findings.append(Finding(str(ent["subject"]), path,
                                        "not read: " + ("cifti=True reads *_bold.dtseries.nii"
                                                        if cifti else
                                                        "surfaces are read from "
                                                        "*_hemi-{L,R}_bold.func.gii (or set "
                                                        "cifti=True for CIFTI)")))
        elif ext in _NIFTI and ent.get("desc") == "preproc":
            wanted.setdefault(key, {}).setdefault("bold", []).append(path)
        else:
            findings.append(Finding(str(ent["subject"]), path,
                                    "not a *_desc-preproc_bold.nii[.gz] volume"))
    for key, rec in list(by_key.items()):
        files = wanted.get(key)
        if not files:
            where = (f"spaces here: {', '.join(spaces)}" if spaces
                     else "the derivatives hold no BOLD for it")
            if rec.raw_bold is not None and rec.subject in processed:
                rec.no_derivative = f"no preprocessed BOLD in space {space!r} ({where})"
                continue
            findings.append(Finding(rec.subject, rec.raw_bold or rec.label,
                                    f"no preprocessed BOLD in space {space!r} ({where})"))
            del by_key[key]
            continue
        several = {k: v for k, v in files.items() if len(v) > 1}
        if several:
            k, v = next(iter(several.items()))
            rec.problems.append(
                f"{rec.label} has several {space} files ({', '.join(Path(p).name for p in v)}). "
                f"Choose one with space='{space}:res-X' (or ':den-X').")
        rec.data = {k: sorted(v)[0] for k, v in files.items()}
        if surface and not cifti:
            missing = [h for h in ("L", "R") if h not in rec.data]
            if missing:
                rec.problems.append(
                    f"{rec.label} has no hemi-{missing[0]} surface file in space {space} (found "
                    f"{Path(rec.main_file).name}). Both hemispheres are read; add it.")
        if not surface:
            ent = _entities(layout.get_file(rec.data["bold"]))
            masks = [f for f in layout.get(scope="derivatives", datatype="func", suffix="mask",
                                           desc="brain", space=space, extension=_NIFTI)
                     if _key(_entities(f)) == key
                     and _entities(f).get("res") == ent.get("res")]
            if masks:
                rec.data["mask"] = str(masks[0].path)
            else:
                rec.problems.append(
                    f"{rec.label}: no brain mask (*_space-{space}_desc-brain_mask.nii.gz) beside "
                    f"{Path(rec.data['bold']).name}. fMRIPrep writes one per run; copy it too.")
