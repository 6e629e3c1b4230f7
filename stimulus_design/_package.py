"""Writing the protocol package: design.json, stimuli.tsv, events, PsychoPy CSVs, READMEs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.io import sha256_file, write_json, write_text

from ._params import DesignParams, Plan
from ._schedule import NULL, ParticipantSchedule

__all__ = [
    "CONDITION_COLUMNS",
    "EVENT_COLUMNS",
    "TASK",
    "Layout",
    "StimulusTable",
    "write_checksums",
    "write_events",
    "write_readmes",
    "write_stimuli",
]

TASK = "conform"
EVENT_COLUMNS = ("onset", "duration", "trial_type", "stim_file", "stimulus_id", "repetition")
CONDITION_COLUMNS = ("trial", "image_file", "trial_type", "planned_onset", "duration", "image_id",
                     "rep_index", "is_old_expected")
EVENTS_SIDECAR = {
    "onset": {"Description": "Planned onset of the trial from the start of the run", "Units": "s"},
    "duration": {"Description": "Image on-screen time; for null trials the whole blank slot",
                 "Units": "s"},
    "trial_type": {"Description": "Kind of trial", "Levels": {
        "stimulus": "an image is shown", "null": "blank screen with fixation"}},
    "stim_file": {"Description": "Image file, relative to the stimulus folder (n/a for null)"},
    "stimulus_id": {"Description": "Row of stimuli.tsv in the protocol package (n/a for null)"},
    "repetition": {"Description": "How many times this participant has seen this image, "
                                  "counting this trial (1 = first time; n/a for null)"},
}


@dataclass(frozen=True)
class StimulusTable:
    """The distinct images of the design, core first (row = stimulus index)."""

    ids: NDArray[np.str_]
    files: NDArray[np.str_]
    sha256: NDArray[np.str_]
    group: NDArray[np.str_]
    participants: list[list[int]]
    categories: NDArray[np.str_] | None
    prototype: NDArray[np.str_] | None


@dataclass(frozen=True)
class Layout:
    """Names of sites, participants, sessions and runs."""

    params: DesignParams

    def width(self, n: int) -> int:
        """Zero-padding width for labels up to ``n``."""
        return max(2, len(str(n)))

    def site(self, participant: int) -> str:
        """``site-XX`` of a 0-based participant index."""
        return f"site-{participant // self.params.participants_per_site + 1:0{self.width(self.params.sites)}d}"

    def sub(self, participant: int) -> str:
        """``sub-YY`` (global numbering over sites)."""
        return f"sub-{participant + 1:0{self.width(self.params.n_participants)}d}"

    def ses(self, session: int) -> str:
        """``ses-ZZ``."""
        return f"ses-{session + 1:0{self.width(self.params.sessions)}d}"

    def run(self, run: int) -> str:
        """``run-WW``."""
        return f"run-{run + 1:0{self.width(self.params.runs)}d}"

    def events_path(self, participant: int, session: int, run: int, suffix: str = "events.tsv") -> str:
        """Relative path of one run's events (or conditions) file."""
        sub, ses = self.sub(participant), self.ses(session)
        return (f"{self.site(participant)}/{sub}/{ses}/{sub}_{ses}_task-{TASK}_"
                f"{self.run(run)}_{suffix}")


def sessions_text(n: int) -> str:
    """``session 1`` or ``sessions 1-n``."""
    return "session 1" if n == 1 else f"sessions 1-{n}"


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def write_events(root: Path, layout: Layout, participant: int, schedule: ParticipantSchedule,
                 table: StimulusTable, plan: Plan) -> None:
    """Write one participant's events TSVs and PsychoPy conditions CSVs."""
    p = layout.params
    slot = p.stim_duration + p.iti
    seen: dict[int, int] = {}
    for s in range(p.sessions):
        for r in range(p.runs):
            events = ["\t".join(EVENT_COLUMNS)]
            conditions = [",".join(CONDITION_COLUMNS)]
            for t, stim in enumerate(schedule.slots[s, r]):
                onset = _fmt(t * slot)
                if stim == NULL:
                    events.append("\t".join((onset, _fmt(slot), "null", "n/a", "n/a", "n/a")))
                    conditions.append(",".join((str(t + 1), "", "blank", onset, _fmt(slot), "",
                                                "", "0")))
                    continue
                stim = int(stim)
                seen[stim] = seen.get(stim, 0) + 1
                rep = seen[stim]
                sid, file = str(table.ids[stim]), str(table.files[stim])
                events.append("\t".join((onset, _fmt(p.stim_duration), "stimulus", file, sid,
                                         str(rep))))
                conditions.append(",".join((str(t + 1), _csv(file), "stim", onset,
                                            _fmt(p.stim_duration), _csv(sid), str(rep),
                                            "1" if rep > 1 else "0")))
            write_text(root / layout.events_path(participant, s, r), "\n".join(events) + "\n")
            write_text(root / layout.events_path(participant, s, r, "conditions.csv"),
                       "\n".join(conditions) + "\n")


def _csv(value: str) -> str:
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"') else value


def write_stimuli(root: Path, table: StimulusTable, layout: Layout, params: DesignParams) -> None:
    """Write stimuli.tsv and the events sidecar."""
    header = ["stimulus_id", "source", "sha256", "group", "participants", "n_participants",
              "repeats"]
    if table.categories is not None:
        header.append("category")
    if table.prototype is not None:
        header.append("prototype")
    lines = ["\t".join(header)]
    for i in range(table.ids.size):
        members = table.participants[i]
        reps = params.core_repeats if table.group[i] == "core" else params.repeats
        row = [str(table.ids[i]), str(table.files[i]), str(table.sha256[i]) or "n/a",
               str(table.group[i]), ",".join(layout.sub(m) for m in members), str(len(members)),
               str(reps)]
        if table.categories is not None:
            row.append(str(table.categories[i]))
        if table.prototype is not None:
            row.append(str(table.prototype[i]))
        lines.append("\t".join(row))
    write_text(root / "stimuli.tsv", "\n".join(lines) + "\n")
    write_json(root / f"task-{TASK}_events.json", EVENTS_SIDECAR)


def _schedule_line(slots: NDArray[np.int64]) -> str:
    return "".join("." if s == NULL else "S" for s in slots)


def write_readmes(root: Path, layout: Layout, plan: Plan, design: dict[str, Any],
                  first_run: NDArray[np.int64]) -> None:
    """Write one README.md per site (and a short one at the top of the package)."""
    p = layout.params
    slot = p.stim_duration + p.iti
    run_seconds = plan.trials_per_run * slot
    cov = design["coverage"]
    common = (
        f"- {p.sessions} session(s) x {p.runs} run(s); each run has {plan.trials_per_run} trial "
        f"slots of {slot:g} s ({p.stim_duration:g} s image + {p.iti:g} s blank) = "
        f"{run_seconds:g} s, of which about {plan.stim_per_run} show an image and the rest "
        "are null (blank) trials.\n"
        f"- Each participant sees {p.per_participant} distinct images: {p.core} shared core "
        f"images x {p.core_repeats} presentations (all in {sessions_text(plan.core_sessions)}) and "
        f"{plan.n_unique_per_participant} further images x {p.repeats}, each of which "
        f"{p.overlap} participant(s) see.\n"
        f"- Trial pattern of run 1 (S = image, . = null): `{_schedule_line(first_run)}`\n")
    by_site: dict[str, list[int]] = {}
    for i in range(plan.n_participants):
        by_site.setdefault(layout.site(i), []).append(i)
    for site, members in by_site.items():
        subs = ", ".join(layout.sub(m) for m in members)
        text = (
            f"# CONFORM protocol for {site}\n\n"
            f"Participants: {subs}.\n\n## The study\n\n{common}\n"
            "## Files\n\n"
            f"- `<sub>/<ses>/<sub>_<ses>_task-{TASK}_<run>_events.tsv`: BIDS events to copy "
            "next to the BOLD run (onset, duration, trial_type, stim_file, stimulus_id, "
            "repetition; null trials have stimulus_id `n/a`).\n"
            f"- `<sub>/<ses>/<sub>_<ses>_task-{TASK}_<run>_conditions.csv`: the same run as a "
            "PsychoPy conditions file (loop over it; `image_file` is empty on blank trials).\n"
            "- `../stimuli.tsv`: every image with its SHA-256; check your copies against it.\n"
            "- `../design.json`: all parameters and the seed; `../coverage.png`: coverage.\n\n"
            "## Running it\n\n"
            "1. Run sessions in order; within a session run the runs in order. The shared core "
            f"is concentrated in {sessions_text(plan.core_sessions)}, so a participant who stops "
            "early has still seen it.\n"
            "2. Start each run on the scanner trigger; show each image for "
            f"{p.stim_duration:g} s at the planned onset, fixation otherwise.\n"
            "3. Record actual onsets; if a run is aborted, repeat it whole and note it.\n"
            "4. Before collecting, run `conform design check <package>`; it must report no "
            "violations.\n")
        write_text(root / site / "README.md", text)
    summary = (
        "# CONFORM stimulus-design package\n\n"
        f"{p.sites} site(s) x {p.participants_per_site} participant(s); seed {p.seed}.\n\n"
        f"{common}\n"
        f"Coverage of the {cov['n_pool']}-image pool by the {cov['n_selected']} selected images: "
        f"radius {cov['selected']['radius']:.4f} (random: {cov['random']['radius']:.4f}), mean "
        f"nearest distance {cov['selected']['mean']:.4f} (random: {cov['random']['mean']:.4f}).\n\n"
        "Each `site-XX/README.md` says how to run that site's sessions.\n")
    write_text(root / "README.md", summary)


def write_checksums(root: Path) -> None:
    """Write SHA256SUMS over every file of the package (sorted paths)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{sha256_file(p)}  {p.relative_to(root).as_posix()}" for p in files]
    write_text(root / "SHA256SUMS", "\n".join(lines) + "\n")
