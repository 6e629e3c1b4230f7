"""The state of a running multi-site study: pool, quotas, participants, collected data.

The registry keeps one :class:`StudyState` per study (as JSON, :meth:`StudyState.to_json`)
and moves it forward with pure functions that return a new state: :func:`allocate_more`
(new participants, committed by :func:`add_participants`), :func:`record_collected` (data
came in) and :func:`release_participants` (allocations given back, in ``_collected``).
The embeddings are never stored; they are passed in by reference and checked against the
SHA-256 recorded when the study was created.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ConformError, DataFileError, ParameterError, ShapeError

from ._inputs import normalise
from ._params import DesignParams
from ._select import select_kcenter

__all__ = ["AllocationConflictError", "StudyParticipant", "StudyState", "add_participants",
           "check_embeddings", "check_site", "check_state", "create_study"]

FORMAT = "conform-study/1"
_SITE = re.compile(r"[A-Za-z0-9]+")
_LABEL = re.compile(r"sub-[0-9]+")
Status = Literal["allocated", "collected", "released"]


class AllocationConflictError(ConformError, ValueError):
    """New participants do not fit the study state they are added to.

    Raised when two requests were computed from the same state and the second is committed
    on top of the first: labels clash, or images would go beyond their quota. The registry
    catches it and recomputes the request from the current state.
    """


@dataclass(frozen=True)
class StudyParticipant:
    """One allocated participant of the study.

    Parameters
    ----------
    label : str
        ``sub-NN``: participants are numbered globally over all sites, in allocation order.
    site : str
        The site's label (letters and digits; its protocol folder is ``site-<label>``).
    images : tuple of int
        Pool rows of the participant's non-core images, in allocation order (the shared core
        comes on top of these).
    per_participant : int
        Distinct images the participant sees, core included.
    session_minutes : float
        The session length the site offered (it decided ``per_participant``).
    request : int
        Number of the protocol request (1, 2, ...) that allocated the participant.
    status : {"allocated", "collected", "released"}, default="allocated"
        ``collected`` once the data are recorded; ``released`` once the allocation is given
        back (the label is never reused).
    """

    label: str
    site: str
    images: tuple[int, ...]
    per_participant: int
    session_minutes: float
    request: int
    status: Status = "allocated"

    def to_dict(self) -> dict[str, Any]:
        """Return the participant as plain JSON types."""
        return {"label": self.label, "site": self.site, "images": list(self.images),
                "per_participant": self.per_participant,
                "session_minutes": self.session_minutes, "request": self.request,
                "status": self.status}


@dataclass(frozen=True)
class StudyState:
    """Everything the incremental allocation needs between protocol requests (immutable).

    Parameters
    ----------
    ids : tuple of str
        Stimulus id of each pool row (the embeddings passed in later follow this order).
    params : DesignParams
        The study design: core, overlap, repeats, sessions, runs, timing, seed. Its
        ``per_participant`` is not used here: each request's session length decides it.
    core : tuple of int
        Pool rows of the shared core (every participant sees them).
    embeddings_sha256 : str
        SHA-256 of the L2-normalised float32 embeddings (as in ``design.json``).
    quota_overrides : tuple of (int, int)
        ``(row, quota)`` pairs, sorted by row, for images whose quota differs from
        ``params.overlap`` (0 excludes an image).
    participants : tuple of StudyParticipant
        Every participant allocated so far, in label order.
    collected : tuple of (int, int, int)
        ``(row, n_participants, n_presentations)``, sorted by row: data recorded per image.
    contributions : tuple of str
        Who delivered the recorded data (participant labels or other contributors' names).
    revision : int
        Incremented by every change (for optimistic concurrency in the registry).
    """

    ids: tuple[str, ...]
    params: DesignParams
    core: tuple[int, ...]
    embeddings_sha256: str
    quota_overrides: tuple[tuple[int, int], ...] = ()
    participants: tuple[StudyParticipant, ...] = ()
    collected: tuple[tuple[int, int, int], ...] = ()
    contributions: tuple[str, ...] = ()
    revision: int = 0

    @property
    def n_pool(self) -> int:
        """Number of pool images."""
        return len(self.ids)

    def quotas(self) -> NDArray[np.int64]:
        """Participants each pool image may be given to (-1 for the core: everyone)."""
        quota = np.full(self.n_pool, self.params.overlap, np.int64)
        for row, q in self.quota_overrides:
            quota[row] = q
        quota[list(self.core)] = -1
        return quota

    def active(self) -> tuple[StudyParticipant, ...]:
        """Participants whose allocation stands (not released)."""
        return tuple(p for p in self.participants if p.status != "released")

    def allocated_counts(self) -> NDArray[np.int64]:
        """Active participants per pool image (core rows: every active participant)."""
        active = self.active()
        rows = [r for p in active for r in p.images]
        counts = np.bincount(np.asarray(rows, np.int64), minlength=self.n_pool).astype(np.int64)
        counts[list(self.core)] = len(active)
        return counts

    def collected_counts(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Participants with data and presentations recorded, per pool image."""
        people = np.zeros(self.n_pool, np.int64)
        shown = np.zeros(self.n_pool, np.int64)
        for row, n_people, n_shown in self.collected:
            people[row], shown[row] = n_people, n_shown
        return people, shown

    def rows_of(self, which: Literal["allocated", "collected"]) -> NDArray[np.int64]:
        """Pool rows that are allocated to an active participant, or that have data."""
        counts = self.allocated_counts() if which == "allocated" else self.collected_counts()[0]
        return np.flatnonzero(counts > 0).astype(np.int64)

    def label(self, number: int) -> str:
        """``sub-NN`` of participant ``number`` (1-based), padded to the planned study size."""
        width = max(2, len(str(self.params.n_participants)))
        return f"sub-{number:0{width}d}"

    def to_dict(self) -> dict[str, Any]:
        """Return the state as plain JSON types (pool rows, not ids, outside ``ids``)."""
        return {"format": FORMAT, "ids": list(self.ids), "parameters": self.params.to_dict(),
                "core": list(self.core), "embeddings_sha256": self.embeddings_sha256,
                "quota_overrides": [list(q) for q in self.quota_overrides],
                "participants": [p.to_dict() for p in self.participants],
                "collected": [list(c) for c in self.collected],
                "contributions": list(self.contributions), "revision": self.revision}

    def to_json(self) -> str:
        """Return the state as compact, deterministic JSON (reload with :meth:`from_json`)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyState:
        """Rebuild a state from :meth:`to_dict` output, checking it.

        Raises
        ------
        DataFileError
            If it is not a study state or its content is inconsistent.
        """
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise DataFileError(f"Not a study state: format {got!r}; expected {FORMAT!r}. Pass "
                                "what StudyState.to_json() wrote.")
        try:
            state = cls(
                ids=tuple(str(i) for i in data["ids"]),
                params=DesignParams(**data["parameters"]),
                core=tuple(int(r) for r in data["core"]),
                embeddings_sha256=str(data["embeddings_sha256"]),
                quota_overrides=tuple((int(r), int(q)) for r, q in data["quota_overrides"]),
                participants=tuple(StudyParticipant(
                    label=str(p["label"]), site=str(p["site"]),
                    images=tuple(int(r) for r in p["images"]),
                    per_participant=int(p["per_participant"]),
                    session_minutes=float(p["session_minutes"]), request=int(p["request"]),
                    status=p["status"]) for p in data["participants"]),
                collected=tuple((int(r), int(a), int(b)) for r, a, b in data["collected"]),
                contributions=tuple(str(c) for c in data["contributions"]),
                revision=int(data["revision"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFileError(f"Study state is incomplete or corrupt ({type(exc).__name__}: "
                                f"{exc}). Pass what StudyState.to_json() wrote.") from None
        problems = check_state(state)
        if problems:
            raise DataFileError(f"Study state is inconsistent: {problems[0]} "
                                f"({len(problems)} problem(s)).")
        return state

    @classmethod
    def from_json(cls, text: str | bytes) -> StudyState:
        """Rebuild a state from :meth:`to_json` output (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataFileError(f"Study state is not valid JSON ({exc}).") from None
        return cls.from_dict(data)


def check_state(state: StudyState) -> list[str]:
    """List what is inconsistent in ``state`` (rows, labels, quotas); empty when sound."""
    out: list[str] = []
    n = state.n_pool
    if len(set(state.ids)) != n:
        out.append("stimulus ids are not unique.")
    if len(set(state.core)) != len(state.core) or len(state.core) != state.params.core:
        out.append(f"the core has {len(state.core)} distinct rows; params.core is "
                   f"{state.params.core}.")
    every = [r for p in state.participants for r in p.images] + list(state.core)
    every += [r for r, _ in state.quota_overrides] + [r for r, _, _ in state.collected]
    if any(not 0 <= r < n for r in every):
        out.append(f"a pool row is outside [0, {n}).")
        return out
    core = set(state.core)
    for i, p in enumerate(state.participants):
        if p.label != state.label(i + 1):
            out.append(f"participant {i + 1} is labelled {p.label!r}; expected "
                       f"{state.label(i + 1)!r}.")
        if len(set(p.images)) != len(p.images) or core & set(p.images):
            out.append(f"{p.label} has a repeated image or a core image among its non-core ones.")
        if len(p.images) != p.per_participant - state.params.core:
            out.append(f"{p.label} has {len(p.images)} non-core images; per_participant "
                       f"{p.per_participant} - core {state.params.core} expected.")
    quota, counts = state.quotas(), state.allocated_counts()
    over = np.flatnonzero((quota >= 0) & (counts > quota))
    if over.size:
        out.append(f"{over.size} image(s) are allocated beyond their quota, e.g. "
                   f"{state.ids[over[0]]!r}: {counts[over[0]]} > {quota[over[0]]}.")
    return out


def check_site(site: str, *, owner: str) -> str:
    """Return the site label (``oxford`` from ``oxford`` or ``site-oxford``), or raise."""
    label = site[5:] if isinstance(site, str) and site.startswith("site-") else site
    if not isinstance(label, str) or not _SITE.fullmatch(label):
        raise ParameterError(
            param="site", value=site, owner=owner,
            allowed="a BIDS label: letters and digits only, e.g. 'oxford' or '03' (a 'site-' "
                    "prefix is accepted and dropped)",
            fix="Remove spaces, dashes, underscores and other punctuation.")
    return label


def check_embeddings(state: StudyState, embeddings: NDArray[np.floating]) -> NDArray[np.float32]:
    """Return the L2-normalised embeddings after checking they are the study's.

    Raises
    ------
    ShapeError
        If the matrix is not (n_pool, n_features).
    ParameterError
        If its SHA-256 (after normalisation) differs from the one recorded at creation.
    """
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] != state.n_pool:
        raise ShapeError(f"embeddings must be a ({state.n_pool}, n_features) matrix, one row per "
                         f"pool image in the study's order; got shape {x.shape}. Pass the "
                         "embeddings the study was created with.")
    unit = normalise(x)
    digest = hashlib.sha256(unit.tobytes()).hexdigest()
    if digest != state.embeddings_sha256:
        raise ParameterError(
            f"The embeddings differ from the study's (SHA-256 {digest[:12]}... after "
            f"normalisation; the study was created with {state.embeddings_sha256[:12]}...).",
            param="embeddings", owner="StudyState",
            fix="Pass the same matrix, in the same row order, as to create_study.")
    return unit


def create_study(ids: Sequence[str], embeddings: NDArray[np.floating], params: DesignParams, *,
                 core: Sequence[str] | None = None,
                 quotas: Mapping[str, int] | None = None) -> StudyState:
    """Start a study over a pool: pick the shared core and record the design.

    Parameters
    ----------
    ids : sequence of str
        Unique stimulus id of each embedding row.
    embeddings : ndarray of shape (n_pool, n_features)
        The pool's features (L2-normalised here; only their SHA-256 is kept).
    params : DesignParams
        The design (``allocation="overlap"``, no ``stratify``). ``params.overlap`` is the
        overlap target: each non-core image may be given to that many participants.
    core : sequence of str or None, default=None
        Ids of the shared core (``params.core`` of them). Default: the first ``params.core``
        picks of greedy k-center with ``conform design``'s first pick for ``params.seed``,
        i.e. the core ``conform design`` would choose for the same pool and seed.
    quotas : mapping of str to int or None, default=None
        Per-image quotas that differ from ``params.overlap`` (0 keeps an image out).

    Returns
    -------
    StudyState
        With no participants yet (revision 0).

    Raises
    ------
    ParameterError
        For a prototypes or stratified design, a core that does not fit, unknown ids.
    ShapeError
        If ``embeddings`` does not have one row per id.
    """
    if params.allocation != "overlap" or params.stratify:
        bad = "allocation" if params.allocation != "overlap" else "stratify"
        raise ParameterError(param=bad, value=getattr(params, bad), owner="create_study",
                             allowed="'overlap' allocation without stratify",
                             fix="Incremental studies allocate with a per-image overlap quota.")
    names = tuple(str(i) for i in ids)
    bad_ids = [i for i in names if i == "n/a" or any(c in i for c in "\t\n\r")]
    if len(set(names)) != len(names) or bad_ids:
        raise ParameterError(param="ids", value=bad_ids[:3] or "repeated ids", owner="create_study",
                             allowed="unique ids without tabs or newlines, and not 'n/a'")
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] != len(names):
        raise ShapeError(f"embeddings must be a ({len(names)}, n_features) matrix, one row per "
                         f"id; got shape {x.shape}.")
    unit = normalise(x)
    if params.core > len(names):
        raise ParameterError(f"$core={params.core} is larger than the pool of {len(names)} "
                             "images.", param="core", value=params.core, owner="create_study",
                             fix="Lower $core or supply more images.")
    row_of = {s: j for j, s in enumerate(names)}
    if core is None:
        first = int(np.random.default_rng([params.seed, 0]).integers(len(names)))
        core_rows = (tuple(int(r) for r in select_kcenter(unit, params.core, first=first).order)
                     if params.core else ())
    else:
        core_rows = tuple(_rows(core, row_of, "core"))
        if len(set(core_rows)) != params.core:
            raise ParameterError(param="core", value=len(set(core_rows)), owner="create_study",
                                 allowed=f"{params.core} distinct ids (params.core)")
    overrides = tuple(sorted(zip(_rows(list(quotas or {}), row_of, "quotas"),
                                 (int(q) for q in (quotas or {}).values()))))
    if any(q < 0 for _, q in overrides):
        raise ParameterError(param="quotas", value=dict(quotas or {}), owner="create_study",
                             allowed="quotas of 0 or more")
    return StudyState(names, params, core_rows, hashlib.sha256(unit.tobytes()).hexdigest(),
                      overrides)


def _rows(names: Iterable[str], row_of: Mapping[str, int], param: str,
          owner: str = "create_study") -> list[int]:
    from conform_core.validation import suggest

    out = []
    for name in names:
        if name not in row_of:
            raise ParameterError(param=param, value=name, owner=owner,
                                 allowed="ids of pool images", fix=suggest(str(name), row_of))
        out.append(row_of[name])
    return out


def add_participants(state: StudyState,
                     participants: Sequence[StudyParticipant]) -> StudyState:
    """Commit new participants to ``state``, checking labels and quotas exactly.

    Parameters
    ----------
    state : StudyState
        The current state (not modified).
    participants : sequence of StudyParticipant
        Participants computed by :func:`allocate_more`, possibly from an older state.

    Returns
    -------
    StudyState
        With the participants appended and ``revision`` + 1.

    Raises
    ------
    AllocationConflictError
        If a label does not continue the numbering of ``state`` or an image would go beyond
        its quota (the request was computed from another state: recompute it).
    """
    new = tuple(participants)
    for i, p in enumerate(new):
        want = state.label(len(state.participants) + i + 1)
        if p.label != want:
            raise AllocationConflictError(
                f"Participant {p.label} does not continue the study's numbering (the next label "
                f"is {want}): the request was computed from another state (revision). Compute "
                "it again from the current state.")
    merged = replace(state, participants=state.participants + new, revision=state.revision + 1)
    problems = check_state(merged)
    if problems:
        raise AllocationConflictError(
            f"The new participants do not fit the current study state: {problems[0]} The "
            "request was computed from another state; compute it again from the current one.")
    return merged
