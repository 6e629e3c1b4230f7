"""``conform design check``: re-validate a protocol package and list every violation."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.io import sha256_file

from ._package import CONDITION_COLUMNS, EVENT_COLUMNS, Layout
from ._params import DesignParams, plan_design
from ._schedule import run_capacities

__all__ = ["check_package"]

_TOL = 1e-3


def _read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return [], []
    return lines[0].split("\t"), [ln.split("\t") for ln in lines[1:]]


def _checksums(root: Path, out: list[str]) -> None:
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        out.append("SHA256SUMS is missing.")
        return
    listed = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    present = {p.relative_to(root).as_posix() for p in root.rglob("*")
               if p.is_file() and p.name != "SHA256SUMS"}
    for name in sorted(set(listed) - present):
        out.append(f"{name}: listed in SHA256SUMS but missing.")
    for name in sorted(present - set(listed)):
        out.append(f"{name}: present but not listed in SHA256SUMS.")
    for name in sorted(present & set(listed)):
        if sha256_file(root / name) != listed[name]:
            out.append(f"{name}: SHA-256 differs from SHA256SUMS (the file was changed).")


def _stimuli(root: Path, params: DesignParams, layout: Layout, out: list[str],
             request: dict[str, Any] | None = None) -> dict[str, Any]:
    header, rows = _read_tsv(root / "stimuli.tsv")
    need = ["stimulus_id", "source", "sha256", "group", "participants", "n_participants", "repeats"]
    if header[: len(need)] != need:
        out.append(f"stimuli.tsv: columns {header} do not start with {need}.")
        return {}
    table = {r[0]: dict(zip(header, r)) for r in rows}
    if len(table) != len(rows):
        out.append("stimuli.tsv: stimulus ids are not unique.")
    everyone = {layout.sub(i) for i in range(params.n_participants)}
    groups = Counter(r["group"] for r in table.values())
    if groups.get("core", 0) != params.core:
        out.append(f"stimuli.tsv: {groups.get('core', 0)} core images; the design asks for "
                   f"{params.core}.")
    for sid, row in table.items():
        members = set(filter(None, row["participants"].split(",")))
        want = everyone if row["group"] == "core" else None
        if want is not None and members != want:
            out.append(f"stimuli.tsv: core image {sid} is not assigned to every participant.")
        if row["group"] == "overlap" and request is None and len(members) != params.overlap:
            out.append(f"stimuli.tsv: image {sid} is assigned to {len(members)} participants; "
                       f"--overlap is {params.overlap}.")
        if row["group"] == "overlap" and request is not None:
            quota = int(request["quota_overrides"].get(sid, params.overlap))
            elsewhere = int(request["allocated_elsewhere"].get(sid, 0))
            if not members or elsewhere + len(members) > quota:
                out.append(f"stimuli.tsv: image {sid} is assigned to {len(members)} participants "
                           f"here and {elsewhere} elsewhere; its quota is {quota}.")
        if row["group"] not in ("core", "overlap"):
            out.append(f"stimuli.tsv: image {sid} has unknown group {row['group']!r}.")
    return table


def _participant(root: Path, i: int, params: DesignParams, plan: Any, layout: Layout,
                 table: dict[str, Any], out: list[str]) -> None:
    sub = layout.sub(i)
    slot = params.stim_duration + params.iti
    caps = run_capacities(plan.presentations, params.sessions, params.runs)
    lo, hi = int(caps.min()), int(caps.max())
    counts: Counter[str] = Counter()
    sessions_of: dict[str, Counter[int]] = defaultdict(Counter)
    runs_of: dict[tuple[str, int], Counter[int]] = defaultdict(Counter)
    for s in range(params.sessions):
        for r in range(params.runs):
            rel = layout.events_path(i, s, r)
            path = root / rel
            if not path.is_file():
                out.append(f"{rel}: missing.")
                continue
            header, rows = _read_tsv(path)
            if tuple(header) != EVENT_COLUMNS:
                out.append(f"{rel}: columns {header}; expected {list(EVENT_COLUMNS)}.")
                continue
            if len(rows) != plan.trials_per_run:
                out.append(f"{rel}: {len(rows)} trials; every run has {plan.trials_per_run}.")
            previous, n_stim = None, 0
            for t, row in enumerate(rows):
                onset, duration, kind, file, sid, rep = row
                if abs(float(onset) - t * slot) > _TOL:
                    out.append(f"{rel} trial {t + 1}: onset {onset}; expected {t * slot:.3f}.")
                if kind == "null":
                    if (file, sid, rep) != ("n/a", "n/a", "n/a"):
                        out.append(f"{rel} trial {t + 1}: null trial must have n/a stim_file, "
                                   "stimulus_id and repetition.")
                    continue
                n_stim += 1
                if kind != "stimulus" or sid not in table:
                    out.append(f"{rel} trial {t + 1}: unknown trial_type {kind!r} or stimulus "
                               f"{sid!r} not in stimuli.tsv.")
                    continue
                if abs(float(duration) - params.stim_duration) > _TOL:
                    out.append(f"{rel} trial {t + 1}: duration {duration}; expected "
                               f"{params.stim_duration}.")
                if file != table[sid]["source"]:
                    out.append(f"{rel} trial {t + 1}: stim_file {file!r} differs from stimuli.tsv.")
                if sid == previous:
                    out.append(f"{rel} trial {t + 1}: {sid} shown in two consecutive stimulus "
                               "trials.")
                previous = sid
                counts[sid] += 1
                if rep != str(counts[sid]):
                    out.append(f"{rel} trial {t + 1}: repetition {rep}; this is presentation "
                               f"{counts[sid]} of {sid} for {sub}.")
                sessions_of[sid][s] += 1
                runs_of[(sid, s)][r] += 1
            if not lo <= n_stim <= hi:
                out.append(f"{rel}: {n_stim} stimulus trials; runs must hold {lo}-{hi} "
                           "(balanced).")
            _conditions(root, layout.events_path(i, s, r, "conditions.csv"), rows, out)
    _participant_rules(sub, params, plan, table, counts, sessions_of, runs_of, out)


def _conditions(root: Path, rel: str, events: list[list[str]], out: list[str]) -> None:
    path = root / rel
    if not path.is_file():
        out.append(f"{rel}: missing.")
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(rows[0]) != CONDITION_COLUMNS:
        out.append(f"{rel}: columns differ from {list(CONDITION_COLUMNS)}.")
        return
    ids = [r[5] or "n/a" for r in rows[1:]]
    if ids != [e[4] for e in events]:
        out.append(f"{rel}: trials differ from the events file.")


def _participant_rules(sub: str, params: DesignParams, plan: Any, table: dict[str, Any],
                       counts: Counter[str], sessions_of: dict[str, Counter[int]],
                       runs_of: dict[tuple[str, int], Counter[int]], out: list[str]) -> None:
    own = {sid for sid, row in table.items() if sub in row["participants"].split(",")}
    if set(counts) != own:
        out.append(f"{sub}: sees {len(set(counts))} distinct images; stimuli.tsv assigns "
                   f"{len(own)} ({len(set(counts) - own)} extra, {len(own - set(counts))} missing).")
    if len(own) != params.per_participant:
        out.append(f"{sub}: {len(own)} images assigned; --per-participant is "
                   f"{params.per_participant}.")
    pairs_in: Counter[int] = Counter()
    for sid, n in counts.items():
        core = table.get(sid, {}).get("group") == "core"
        want = params.core_repeats if core else params.repeats
        if n != want:
            out.append(f"{sub}: {sid} shown {n} times; {'core' if core else 'non-core'} images "
                       f"are shown {want} times.")
        sess = sessions_of[sid]
        allowed = plan.core_sessions if core else params.sessions
        if core and max(sess) >= plan.core_sessions:
            out.append(f"{sub}: core image {sid} shown in session {max(sess) + 1}; the core "
                       f"belongs in sessions 1-{plan.core_sessions}.")
        if len(sess) < min(allowed, n - 1):
            out.append(f"{sub}: {sid} ({n} presentations) is shown in only {len(sess)} "
                       "session(s); repeats must be spread across sessions.")
        if max(sess.values()) > max(2, math.ceil(n / allowed)):
            out.append(f"{sub}: {sid} shown {max(sess.values())} times in one session.")
        for s, k in sess.items():
            if k >= 2:
                pairs_in[s] += 1
                if params.runs >= k and max(runs_of[(sid, s)].values()) > 1:
                    out.append(f"{sub}: {sid} repeated within one run of session {s + 1}; "
                               "within-session repeats belong in different runs.")
    for s in range(params.sessions):
        if pairs_in[s] < params.min_session_repeats:
            out.append(f"{sub} session {s + 1}: {pairs_in[s]} images repeated within the "
                       f"session; GLMsingle needs at least {params.min_session_repeats}.")


def check_package(root: str | Path, *, images: str | Path | None = None) -> list[str]:
    """Re-validate a protocol package written by ``conform design``.

    A package of one request of a running study (:func:`write_protocol`; design.json has a
    ``request`` block) gets the same checks, except that its non-core images are shared with
    participants elsewhere: each must have at least one participant here and, with those
    elsewhere, no more than its quota.

    Parameters
    ----------
    root : path-like
        The package folder.
    images : path-like or None
        The image folder; when given, every image's SHA-256 is checked against stimuli.tsv.

    Returns
    -------
    list of str
        One message per violation (empty when the package is valid).

    Raises
    ------
    DataFileError
        If the folder or its design.json is missing or unreadable.
    """
    root = Path(root)
    meta = root / "design.json"
    if not meta.is_file():
        raise DataFileError(f"{str(root)!r} is not a protocol package: design.json is missing. "
                            "Pass the folder written by `conform design --out`.")
    try:
        design = json.loads(meta.read_text(encoding="utf-8"))
        params = DesignParams(**design["parameters"])
        request = design.get("request")
        layout: Layout
        if request is None:
            plan = plan_design(params, int(design["inputs"]["n_usable"]))
            layout = Layout(params)
        else:   # one request of a running study (stimulus_design.write_protocol)
            from ._protocol import request_plan

            plan, layout = request_plan(params, request, int(design["inputs"]["n_usable"]))
    except (ValueError, KeyError, TypeError, ParameterError) as exc:
        raise DataFileError(f"{meta}: unreadable or inconsistent design ({exc}).") from None
    out: list[str] = []
    _checksums(root, out)
    for name in ("stimuli.tsv", "coverage.json", "coverage.png"):
        if not (root / name).is_file():
            out.append(f"{name} is missing.")
    if not (root / "stimuli.tsv").is_file():
        return out
    table = _stimuli(root, params, layout, out, request)
    if request is None and len(table) != plan.n_distinct:
        out.append(f"stimuli.tsv: {len(table)} images; the design needs {plan.n_distinct}.")
    for i in range(params.n_participants):
        _participant(root, i, params, plan, layout, table, out)
    expected = {layout.events_path(i, s, r, suffix)
                for i in range(params.n_participants) for s in range(params.sessions)
                for r in range(params.runs) for suffix in ("events.tsv", "conditions.csv")}
    for path in sorted(root.glob("site-*/sub-*/ses-*/*")):
        rel = path.relative_to(root).as_posix()
        if rel not in expected:
            out.append(f"{rel}: unexpected file (not part of this design).")
    if images is not None:
        for sid, row in table.items():
            path = Path(images) / row["source"]
            if not path.is_file():
                out.append(f"image {row['source']} (stimulus {sid}) not found under {images}.")
            elif row["sha256"] not in ("", "n/a") and sha256_file(path) != row["sha256"]:
                out.append(f"image {row['source']}: SHA-256 differs from stimuli.tsv.")
    return out
