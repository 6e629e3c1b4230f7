"""Docs that run: every code block of README.md and docs/*.md is executed by a test.

The convention, for a fenced block with a language (inline code and fences without a language,
such as folder listings, are not run; ``test_no_command_hides_in_an_unlabelled_block`` keeps
commands out of those):

- ```bash, ```sh, ```shell, ```console: every command line runs, in order, in one temporary folder
  per document, so a later command may use what an earlier one wrote. ``conform ...`` runs as
  ``python -m conform_core ...`` and ``python ...`` with this interpreter; each must exit 0.
  ``pip ...`` is not run (it installs packages) nor is ``pytest`` (the suite that runs this
  test); the commands after ``&&`` are. A line ending in ``\\`` continues on the next one,
  ``# comments`` are dropped, ``*`` and ``?`` expand in the folder as in a shell, and in a
  ```console block only the ``$ `` lines run.
- ```toml: an analysis spec, written to a file in the folder: ``conform fit SPEC --check``, then
  a real ``conform fit SPEC --out DIR`` whose every results.csv row has status ``ok``.
- ```python: executed in a fresh namespace with the document's folder as working directory.

An HTML comment on the line just before the fence changes that:

- ``<!-- doc-test: skip (REASON) -->``: not run; the block's test is skipped with REASON.
- ``<!-- doc-test: check (REASON) -->`` (toml): ``--check`` only, e.g. for a long analysis.
- ``<!-- doc-test: fragment -->`` (toml): part of a spec (a ``[denoiser]`` table, say), merged
  into ``FRAGMENT_BASE``, a small synthetic spec, and checked with ``--check``.
- ``<!-- doc-test: file PATH -->``: written to PATH in the folder for later commands (a toml
  block is parsed first).
- ``<!-- doc-test: excerpt PATH -->``: every non-blank, non-comment line of the block appears,
  in order, in PATH, a file an earlier command wrote (a file the docs quote).

Each block is one test, with the id ``DOC:LINE`` of its opening fence; ``pytest -rs`` lists the
skipped ones with their reasons. A document's blocks run once, in order, the first time one of
its tests asks; the folder is first given what the document assumes (``_prepare``): a copy of
``examples/``, as if run from the repository root, and per document the inputs that stand in
for the user's own data.
"""

from __future__ import annotations

import csv
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
RUN_LANGUAGES = SHELL | {"toml", "python"}
COMMAND_TIMEOUT = 300  # seconds; a hang fails the test instead of the whole suite
NOT_RUN = {"pip": "installs packages", "pytest": "runs the test suite, which includes this test"}
SHELL_SYNTAX = {"|", "||", ";", "&", ">", ">>", "<", "2>", "2>&1"}
FRAGMENT_BASE = {
    "denoiser": "trial-average",
    "encoder": "ridge",
    "features": "precomputed",
    "analysis": {"name": "doc-fragment", "seed": 0},
    "dataset": {"plugin": "synthetic",
                "params": {"n_subjects": 3, "n_units": 40, "n_stimuli": 60}},
}

_FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
_DIRECTIVE = re.compile(r"^(?:(skip|check)\s*\((.+)\)|(fragment)|(file|excerpt)\s+(\S+))$")


# ----------------------------------------------------------------------------- parsing
@dataclass
class Block:
    """One fenced code block: where it is, its language, text and doc-test directive."""

    doc: str
    line: int
    lang: str
    text: str
    directive: str = ""
    arg: str = ""

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _parse(doc: str, root: Path = ROOT) -> tuple[list[Block], list[str]]:
    """Every fenced block of ``doc`` (runnable or not) and the marker errors found."""
    lines = (root / doc).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    errors: list[str] = []
    i = 0
    while i < len(lines):
        mark = _MARK.match(lines[i])
        if mark and not (i + 1 < len(lines) and _FENCE.match(lines[i + 1])):
            errors.append(f"{doc}:{i + 1}: a doc-test marker must be on the line just before "
                          "a fence")
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        block = Block(doc, i + 1, fence.group(1).lower(), "\n".join(lines[i + 1:end]) + "\n")
        previous = _MARK.match(lines[i - 1]) if i > 0 else None
        if previous:
            found = _DIRECTIVE.match(previous.group(1))
            if found is None:
                errors.append(f"{block.id}: unknown doc-test marker {previous.group(1)!r}; use "
                              "skip (REASON), check (REASON), fragment, file PATH or excerpt PATH")
            else:
                block.directive = found.group(1) or found.group(3) or found.group(4)
                block.arg = (found.group(2) or found.group(5) or "").strip()
                if block.lang not in RUN_LANGUAGES:
                    errors.append(f"{block.id}: a doc-test marker on a ```{block.lang} block, "
                                  "which is never run")
                if block.directive in ("check", "fragment") and block.lang != "toml":
                    errors.append(f"{block.id}: '{block.directive}' applies to toml blocks only")
        blocks.append(block)
        i = end + 1
    return blocks, errors


def _runnable_blocks() -> list[Block]:
    return [b for doc in DOCS for b in _parse(doc)[0] if b.lang in RUN_LANGUAGES]


BLOCKS = _runnable_blocks()


def _command_lines(block: Block) -> list[str]:
    """The logical command lines of a shell block (continuations joined, comments dropped)."""
    out: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.strip()
        if block.lang == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line and not line.startswith("#"):
            out.append(line)
    return out


# ----------------------------------------------------------------------------- running
@dataclass
class Outcome:
    """What running one block gave: failures (empty when it passed), commands run and not run."""

    failures: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    ran: int = 1


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _env() -> dict[str, str]:
    return {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "120", "NO_COLOR": "1"}


def _run(argv: list[str], cwd: Path, shown: str) -> str | None:
    """Run one command; return a failure message, or None when it exited 0."""
    try:
        done = subprocess.run(argv, check=False, cwd=cwd, env=_env(), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"`{shown}` did not finish within {COMMAND_TIMEOUT} s"
    if done.returncode == 0:
        return None
    output = (done.stdout + done.stderr).strip()[-3000:]
    return f"`{shown}` exited {done.returncode} in {cwd}:\n{output}"


def _expand(tokens: list[str], cwd: Path) -> list[str]:
    """Expand ``*`` and ``?`` patterns relative to ``cwd``; a pattern without a match stays."""
    out: list[str] = []
    for token in tokens:
        matches = sorted(glob.glob(token, root_dir=cwd)) if ("*" in token or "?" in token) else []
        out.extend(matches or [token])
    return out


def _run_shell(block: Block, cwd: Path) -> Outcome:
    outcome = Outcome(ran=0)
    for line in _command_lines(block):
        tokens = shlex.split(line, comments=True)
        syntax = sorted(SHELL_SYNTAX.intersection(tokens))
        if syntax:
            outcome.failures.append(f"`{line}`: shell syntax {syntax} is not run by the doc test; "
                                    "split the command, or mark the block skip (REASON)")
            continue
        segments: list[list[str]] = [[]]
        for token in tokens:
            if token == "&&":
                segments.append([])
            else:
                segments[-1].append(token)
        for seg in filter(None, segments):
            shown = shlex.join(seg)
            program = seg[0]
            if program == "python" and seg[1:3] in (["-m", "pip"], ["-m", "pytest"]):
                program = seg[2]
            if program in NOT_RUN:
                outcome.not_run.append(f"`{shown}`: {NOT_RUN[program]}")
                continue
            if program == "conform":
                argv = [sys.executable, "-m", "conform_core", *_expand(seg[1:], cwd)]
            elif program == "python":
                argv = [sys.executable, *_expand(seg[1:], cwd)]
            else:
                outcome.failures.append(f"`{shown}`: the doc test runs conform and python "
                                        f"commands, not {program!r}; mark the block skip (REASON)")
                continue
            outcome.ran += 1
            failure = _run(argv, cwd, shown)
            if failure:
                outcome.failures.append(failure)
    return outcome


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if nested else value
    return out


def _bad_rows(results_csv: Path) -> list[str]:
    with results_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    bad = [f"{r['subject']} / {r['denoiser']} / {r['aligner']} / {r['encoder']}: {r['status']}"
           for r in rows if r["status"] != "ok"]
    return bad if rows else ["results.csv has no rows"]


def _run_toml(block: Block, cwd: Path) -> Outcome:
    outcome = Outcome()
    try:
        raw = tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as exc:
        return Outcome([f"not valid TOML: {exc}"])
    spec = cwd / f"doc-spec-{block.line}.toml"
    out = cwd / f"doc-spec-{block.line}-results"
    spec.write_text(tomli_w.dumps(_merge(FRAGMENT_BASE, raw)) if block.directive == "fragment"
                    else block.text, encoding="utf-8")
    base = [sys.executable, "-m", "conform_core", "fit", spec.name, "--out", out.name]
    failure = _run([*base, "--check"], cwd, f"conform fit {spec.name} --check")
    if failure or block.directive in ("fragment", "check"):
        outcome.failures.extend(filter(None, [failure]))
        return outcome
    failure = _run(base, cwd, f"conform fit {spec.name} --out {out.name}")
    if failure:
        outcome.failures.append(failure)
    elif bad := _bad_rows(out / "results.csv"):
        outcome.failures.append(f"conform fit {spec.name}: cells that did not succeed:\n"
                                + "\n".join(bad[:10]))
    return outcome


def _run_python(block: Block, cwd: Path) -> Outcome:
    namespace = {"__name__": "__doc_block__"}
    try:
        with _cwd(cwd):
            exec(compile(block.text, block.id, "exec"), namespace)  # noqa: S102 - the docs' code
    except Exception:  # noqa: BLE001 - any error is the doc's failure, reported in full
        return Outcome([traceback.format_exc(limit=-8)])
    return Outcome()


def _write_file(block: Block, cwd: Path) -> Outcome:
    if block.lang == "toml":
        try:
            tomllib.loads(block.text)
        except tomllib.TOMLDecodeError as exc:
            return Outcome([f"not valid TOML: {exc}"])
    target = cwd / block.arg
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.text, encoding="utf-8")
    return Outcome()


def _check_excerpt(block: Block, cwd: Path) -> Outcome:
    target = cwd / block.arg
    if not target.is_file():
        return Outcome([f"{block.arg} does not exist: an earlier block should have written it"])
    have = [line.strip() for line in target.read_text(encoding="utf-8").splitlines()]
    position = 0
    for line in (raw.strip() for raw in block.text.splitlines()):
        if not line or line.startswith("#"):
            continue
        try:
            position = have.index(line, position) + 1
        except ValueError:
            return Outcome([f"{line!r} is not in {block.arg} (after the lines before it)"])
    return Outcome()


def run_block(block: Block, cwd: Path) -> Outcome:
    """Run one block in ``cwd`` according to its language and directive."""
    if block.directive == "file":
        return _write_file(block, cwd)
    if block.directive == "excerpt":
        return _check_excerpt(block, cwd)
    if block.lang in SHELL:
        return _run_shell(block, cwd)
    if block.lang == "toml":
        return _run_toml(block, cwd)
    return _run_python(block, cwd)


# ----------------------------------------------------------------------------- setup
def _prepare(doc: str, folder: Path) -> None:
    """Give ``folder`` what ``doc`` assumes: the repository's examples, and stand-in data."""
    shutil.copytree(ROOT / "examples", folder / "examples")
    if doc == "docs/fit.md":
        _prepare_fit(folder)
    elif doc == "docs/glmsingle.md":
        _prepare_glmsingle(folder)
    elif doc == "docs/mosaic.md":
        _prepare_mosaic(folder)
    elif doc == "docs/design.md":
        _prepare_design(folder)


def _prepare_fit(folder: Path) -> None:
    """``spec.toml``: a small synthetic analysis; ``data/study``: a simulated study (4 subjects)."""
    from conform_synthetic import write_study

    (folder / "spec.toml").write_text(tomli_w.dumps({
        "denoiser": ["trial-average", "pca"], "encoder": "ridge", "features": "precomputed",
        "analysis": {"name": "spec", "seed": 0},
        "dataset": {"plugin": "synthetic",
                    "params": {"n_subjects": 2, "n_units": 40, "n_stimuli": 60}},
    }), encoding="utf-8")
    write_study(folder / "data" / "study", {"n_subjects": 4, "random_state": 0}, progress=False)


def _prepare_glmsingle(folder: Path) -> None:
    """A BIDS-like subject ``sub-01/func/*_bold.nii.gz`` + ``*_events.tsv`` (simulated, 4 runs)."""
    from conform_synthetic import write_study

    study = folder / "simulated"
    write_study(study, {"n_subjects": 1, "n_units": 50, "n_stimuli": 40, "timeseries": True},
                progress=False)
    shutil.move(str(study / "sub-01"), str(folder / "sub-01"))


def _prepare_mosaic(folder: Path) -> None:
    """``mosaic_dataset/`` with two toy subjects ``sub-01_NSD``, ``sub-02_NSD`` (18 trials each),
    and ``hcp_mmp_labels.npy``, a made-up HCP-MMP label vector (NOT the real atlas)."""
    from conform_mosaic import write_subject
    from conform_mosaic.testing import TOY_METADATA, synthetic_atlas_labels, toy_trials

    from conform_core.io import save_npy

    for seed, name in enumerate(["sub-01", "sub-02"]):
        trials, splits = toy_trials(seed=seed)
        write_subject(folder / "mosaic_dataset", trials, phases=splits, subject=name, code="NSD",
                      metadata={**TOY_METADATA, "subjectID": name, "dataset_name": "NSD"})
    save_npy(folder / "hcp_mmp_labels.npy", synthetic_atlas_labels())


def _prepare_design(folder: Path) -> None:
    """A pool of 2,000 random 32-d "CLIP" embeddings: ``clip.npy`` + ``ids.txt``, ``clip.parquet``,
    ``meta.csv`` (id, category, source) and ``pool/``, one tiny PNG per source."""
    import pandas as pd
    from PIL import Image

    x = np.random.default_rng(0).normal(size=(2000, 32)).astype(np.float32)
    ids = [f"img{i:05d}" for i in range(len(x))]
    np.save(folder / "clip.npy", x)
    (folder / "ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    pd.DataFrame({"id": ids, "embedding": list(x)}).to_parquet(folder / "clip.parquet")
    pd.DataFrame({"id": ids, "category": [f"cat{i % 5}" for i in range(len(ids))],
                  "source": [f"{i}.png" for i in ids]}).to_csv(folder / "meta.csv", index=False)
    (folder / "pool").mkdir()
    Image.new("RGB", (8, 8), (90, 120, 200)).save(folder / "pool" / f"{ids[0]}.png")
    png = (folder / "pool" / f"{ids[0]}.png").read_bytes()
    for i in ids[1:]:
        (folder / "pool" / f"{i}.png").write_bytes(png)


class DocRun:
    """One document's blocks, run lazily and in order in one prepared folder."""

    def __init__(self, doc: str, folder: Path) -> None:
        self.doc = doc
        self.folder = folder
        self.blocks = [b for b in BLOCKS if b.doc == doc]
        self.outcomes: dict[int, Outcome] = {}
        self.prepared = False

    def outcome(self, block: Block) -> Outcome:
        if not self.prepared:
            _prepare(self.doc, self.folder)
            self.prepared = True
        for b in self.blocks:
            if b.line not in self.outcomes and b.directive != "skip":
                self.outcomes[b.line] = run_block(b, self.folder)
            if b.line == block.line:
                break
        return self.outcomes[block.line]


@pytest.fixture(scope="session")
def doc_runs(tmp_path_factory: pytest.TempPathFactory):
    runs: dict[str, DocRun] = {}

    def get(doc: str) -> DocRun:
        if doc not in runs:
            runs[doc] = DocRun(doc, tmp_path_factory.mktemp(doc.replace("/", "-")))
        return runs[doc]

    return get


# ----------------------------------------------------------------------------- tests
# One document's blocks run in order in one folder (``doc_runs``), so under pytest-xdist
# (``--dist loadgroup``) they all go to one worker instead of each worker re-running the document.
@pytest.mark.parametrize("block", [pytest.param(b, id=b.id, marks=pytest.mark.xdist_group(b.doc))
                                   for b in BLOCKS])
def test_doc_block_runs(block: Block, doc_runs) -> None:
    if block.directive == "skip":
        pytest.skip(f"{block.id}: {block.arg}")
    outcome = doc_runs(block.doc).outcome(block)
    assert not outcome.failures, f"{block.id}:\n" + "\n\n".join(outcome.failures)
    if not outcome.ran:
        pytest.skip(f"{block.id}: nothing to run; " + "; ".join(outcome.not_run))


def test_doc_test_markers_are_well_formed() -> None:
    errors = [e for doc in DOCS for e in _parse(doc)[1]]
    assert not errors, "\n".join(errors)


def test_no_command_hides_in_an_unlabelled_block() -> None:
    """A command in a fence without a runnable language would never be run: label it."""
    hidden = []
    for doc in DOCS:
        for block in _parse(doc)[0]:
            if block.lang in RUN_LANGUAGES:
                continue
            for line in block.text.splitlines():
                if re.match(r"^\s*(\$ )?(conform|python|pip)\s", line):
                    hidden.append(f"{block.id}: {line.strip()}")
    assert not hidden, ("give these blocks a language (```bash) so tests/test_docs.py runs them:\n"
                        + "\n".join(hidden))


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    first = next(b for b in BLOCKS if b.doc == "README.md")
    lines = _command_lines(first)
    assert first.lang == "bash" and len(lines) == 2
    assert "conform fit examples/quickstart.toml" in lines[0]
    assert "pytest" in lines[1]
    assert lines[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_pip_and_pytest_are_not_run_but_what_follows_and_is(tmp_path: Path) -> None:
    block = Block("example.md", 1, "bash", "pip install -e . && python -c 'open(\"ran\", \"w\")'\n"
                                           "python -m pytest -x\n")
    outcome = _run_shell(block, tmp_path)
    assert outcome.failures == []
    assert (tmp_path / "ran").is_file()
    assert [n.split("`: ")[1] for n in outcome.not_run] == [NOT_RUN["pip"], NOT_RUN["pytest"]]


def test_a_failing_command_fails_its_block(tmp_path: Path) -> None:
    block = Block("example.md", 1, "bash", "conform fit missing.toml\n")
    (failure,) = _run_shell(block, tmp_path).failures
    assert "`conform fit missing.toml` exited 2" in failure


def test_markers_need_a_reason_and_a_fence(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text("<!-- doc-test: skip -->\n```bash\nconform plugins\n```\n"
                                   "<!-- doc-test: fragment -->\n\ntext\n", encoding="utf-8")
    blocks, errors = _parse("x.md", root=tmp_path)
    assert [b.directive for b in blocks] == [""]
    assert [e.split(": ", 1)[1][:30] for e in errors] == [
        "unknown doc-test marker 'skip'", "a doc-test marker must be on t"]
