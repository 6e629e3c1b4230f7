"""The protocol package of one request: the new participants of one site, as ``conform design``.

The package has the files and format of a ``conform design`` package (design.json,
stimuli.tsv, events TSVs, PsychoPy CSVs, READMEs, coverage, SHA256SUMS), for the
participants of the request only, labelled with the study's global numbers. Its
design.json has a ``request`` block, so ``conform design check`` knows that each non-core
image is shared with participants elsewhere: it checks that none goes beyond its quota.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError
from conform_core.io import atomic_directory, write_json, write_text

from ._check import check_package
from ._coverage import coverage_unit
from ._design import DesignCheckError, _versions
from ._figure import plot_coverage
from ._incremental import _single
from ._metrics import compare_with_random, nearest_selected
from ._package import (
    Layout,
    StimulusTable,
    write_checksums,
    write_events,
    write_readmes,
    write_stimuli,
)
from ._params import DesignParams, Plan, plan_design
from ._schedule import schedule_participant
from ._study import _LABEL, _SITE, StudyParticipant, StudyState, check_embeddings

__all__ = ["RequestLayout", "request_plan", "write_protocol"]


@dataclass(frozen=True)
class RequestLayout(Layout):
    """Names of a request package: the participants' global labels and their site."""

    labels: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()

    def site(self, participant: int) -> str:
        """``site-<label>`` of a participant of the package (0-based)."""
        return f"site-{self.sites[participant]}"

    def sub(self, participant: int) -> str:
        """Return the participant's global label, ``sub-NN``."""
        return self.labels[participant]


def request_plan(params: DesignParams, request: Mapping[str, Any],
                 n_pool: int) -> tuple[Plan, RequestLayout]:
    """Plan and layout of a request package from its design.json blocks.

    Raises
    ------
    ValueError
        If the request block does not match the parameters (``check_package`` reports it).
    """
    people = request["participants"]
    if not all(isinstance(request.get(k), dict) for k in ("allocated_elsewhere",
                                                          "quota_overrides")):
        raise ValueError("the request block needs 'allocated_elsewhere' and 'quota_overrides' "
                         "tables")
    labels = tuple(str(p["label"]) for p in people)
    sites = tuple(str(p["site"]) for p in people)
    if (params.sites != 1 or params.participants_per_site != len(labels)
            or len(set(labels)) != len(labels)
            or not all(_LABEL.fullmatch(x) for x in labels)
            or not all(_SITE.fullmatch(s) for s in sites)):
        raise ValueError("the request block's participants do not match the parameters "
                         "(sites=1, participants_per_site = number of unique sub-NN labels)")
    plan = plan_design(_single(params, params.per_participant), n_pool)
    return replace(plan, n_participants=len(labels)), RequestLayout(params, labels, sites)


def _members(state: StudyState,
             participants: Sequence[StudyParticipant]) -> tuple[list[int], list[list[int]]]:
    """Non-core rows of the package (first-allocation order) and who of it sees each."""
    rows: dict[int, list[int]] = {}
    for i, p in enumerate(participants):
        for r in p.images:
            rows.setdefault(r, []).append(i)
    return list(rows), list(rows.values())


def _check_request(state: StudyState,
                   participants: Sequence[StudyParticipant]) -> tuple[StudyParticipant, ...]:
    people = tuple(participants)
    known = {p.label: p for p in state.participants}
    if not people:
        raise ParameterError(param="participants", value=[], owner="write_protocol",
                             allowed="the participants returned by allocate_more")
    for p in people:
        if known.get(p.label) != p or p.status == "released":
            raise ParameterError(param="participants", value=p.label, owner="write_protocol",
                                 allowed="participants of this state whose allocation stands",
                                 fix="Pass the state returned by allocate_more with them.")
    if len({(p.site, p.per_participant) for p in people}) != 1:
        raise ParameterError(param="participants", value=[p.label for p in people],
                             owner="write_protocol",
                             allowed="participants of one site with one session length",
                             fix="Write one package per request.")
    return people


def write_protocol(state: StudyState, participants: Sequence[StudyParticipant],
                   out: str | Path, *, embeddings: NDArray[np.floating],
                   sources: Sequence[str] | None = None, sha256: Sequence[str] | None = None,
                   overwrite: bool = False) -> dict[str, Any]:
    """Write the protocol package of newly allocated participants (one site, one request).

    Parameters
    ----------
    state : StudyState
        The study state that holds ``participants`` (what :func:`allocate_more` returned).
    participants : sequence of StudyParticipant
        The request's participants.
    out : path-like
        The package folder (written atomically, then checked by :func:`check_package`).
    embeddings : ndarray of shape (n_pool, n_features)
        The pool's features, as passed to :func:`create_study` (for coverage.json/png).
    sources, sha256 : sequence of str or None, default=None
        Per pool row, the image file as written into the events (``stim_file``) and its
        SHA-256. Default: the stimulus id, and ``n/a``.
    overwrite : bool, default=False
        Replace an existing ``out``.

    Returns
    -------
    dict
        The contents of design.json.

    Raises
    ------
    ParameterError
        If the participants are not one request of ``state``, or a per-row list has the
        wrong length.
    DesignCheckError
        If the package breaks a rule (a bug; nothing is written).
    """
    people = _check_request(state, participants)
    x = check_embeddings(state, embeddings)
    n_pool = state.n_pool
    for name, values in (("sources", sources), ("sha256", sha256)):
        if values is not None and len(values) != n_pool:
            raise ParameterError(param=name, value=len(values), owner="write_protocol",
                                 allowed=f"one entry per pool row ({n_pool})")
    ids = np.array(state.ids)
    files = ids if sources is None else np.array([str(s) for s in sources])
    shas = np.full(n_pool, "") if sha256 is None else np.array([str(s) for s in sha256])
    study, n = state.params, len(people)
    params = replace(study, sites=1, participants_per_site=n,
                     per_participant=people[0].per_participant)
    others, members = _members(state, people)
    core = np.asarray(state.core, np.int64)
    rows = np.concatenate([core, np.asarray(others, np.int64)])
    plan = replace(plan_design(_single(study, params.per_participant), n_pool),
                   n_participants=n, n_overlap_images=len(others),
                   n_distinct=int(rows.size))
    layout = RequestLayout(params, tuple(p.label for p in people),
                           tuple(p.site for p in people))
    table = StimulusTable(ids=ids[rows], files=files[rows], sha256=shas[rows],
                          group=np.array(["core"] * core.size + ["overlap"] * len(others)),
                          participants=[list(range(n))] * core.size + members,
                          categories=None, prototype=None)
    position = {int(r): j for j, r in enumerate(rows)}
    schedules = [schedule_participant(np.arange(core.size),
                                      np.array([position[r] for r in p.images], np.int64),
                                      params, plan, [study.seed, 1, _number(p.label) - 1])
                 for p in people]
    allocated = state.rows_of("allocated")
    nearest = nearest_selected(x, allocated)
    rng = np.random.default_rng([study.seed, 4, _number(people[0].label)])
    coverage = compare_with_random(x, nearest, allocated, rng=rng)
    random_nearest = coverage.pop("random_nearest")
    coverage["study"] = {which: coverage_unit(state, x, which)
                         for which in ("allocated", "collected")}
    counts, quota = state.allocated_counts(), state.quotas()
    design: dict[str, Any] = {
        "format": "conform-design/1",
        "parameters": params.to_dict(),
        "plan": plan.to_dict(),
        "inputs": {"kind": "study", "n_found": n_pool, "n_usable": n_pool,
                   "embeddings_sha256": state.embeddings_sha256,
                   "manifest_sha256": hashlib.sha256("\n".join(
                       f"{i}\t{s}" for i, s in zip(ids, shas)).encode()).hexdigest()},
        "coverage": coverage,
        "versions": _versions(),
        "selection": {"algorithm": "incremental: partly filled images first, then weighted "
                                   "farthest-first (greedy k-center) from the collected and "
                                   "allocated images", "stratified": False,
                      "allocation": "overlap",
                      "distance": "euclidean between L2-normalised embeddings"},
        "request": {
            "request": people[0].request, "site": people[0].site,
            "session_minutes": people[0].session_minutes, "study_revision": state.revision,
            "participants": [{"label": p.label, "site": p.site} for p in people],
            "allocated_elsewhere": {str(ids[r]): int(counts[r]) - len(m)
                                    for r, m in zip(others, members) if counts[r] > len(m)},
            "quota_overrides": {str(ids[r]): int(quota[r]) for r in others
                                if quota[r] != study.overlap},
        },
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        write_json(tmp / "design.json", design)
        write_json(tmp / "coverage.json", coverage)
        write_stimuli(tmp, table, layout, params)
        for i, schedule in enumerate(schedules):
            write_events(tmp, layout, i, schedule, table, plan)
        write_readmes(tmp, layout, plan, design, schedules[0].slots[0, 0])
        _request_readme(tmp / "README.md", state, people, design["request"])
        plot_coverage(tmp / "coverage.png", x, core, np.setdiff1d(allocated, core), nearest,
                      random_nearest, seed=study.seed)
        write_checksums(tmp)
        problems = check_package(tmp)
        if problems:
            raise DesignCheckError(
                f"The request package breaks {len(problems)} rule(s), so nothing was written; "
                f"first: {problems[0]} This is a bug in stimulus_design; please report it.")
    return design


def _number(label: str) -> int:
    return int(label.split("-", 1)[1])


def _request_readme(path: Path, state: StudyState, people: Sequence[StudyParticipant],
                    request: Mapping[str, Any]) -> None:
    shared = len(request["allocated_elsewhere"])
    text = path.read_text(encoding="utf-8") + (
        "\n## This request\n\n"
        f"Protocol request {request['request']} of a running study (state revision "
        f"{state.revision}): site `{people[0].site}`, participants {people[0].label} to "
        f"{people[-1].label} (numbered over all sites), {people[0].session_minutes:g}-minute "
        "sessions. Non-core images are shared with participants elsewhere, each up to "
        f"{state.params.overlap} participants in all; {shared} of this package's images are "
        "already allocated elsewhere. Coverage figures are for every image allocated in the "
        "study so far.\n")
    write_text(path, text)
