"""Analysis specs: a small TOML file naming each stage's plugin and parameters.

A spec names a dataset, an optional GLM stage, the denoiser(s), optional aligner(s),
the encoder(s) and the features. A stage given as a list is compared: the analysis runs
the grid of all combinations. Example::

    denoiser = ["trial-average", "pca", "psn"]
    encoder = "ridge"
    features = "precomputed"

    [analysis]
    name = "quickstart"
    seed = 0

    [dataset]
    plugin = "synthetic"
    [dataset.params]
    n_subjects = 4

A stage entry is a plugin name, or a table ``{plugin = "psn", params = {...}, label = "..."}``.
``spec.lock.toml`` (written by ``conform fit``) has the same form with every parameter
spelled out, plus a ``[lock]`` table of versions and input checksums.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import SpecError, UnknownComponentError
from .validation import suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "StageEntry",
    "AnalysisSpec",
    "load_spec",
    "parse_spec",
    "apply_overrides",
    "check_spec",
    "check_seed",
    "check_context_sizes",
    "check_context_draws",
    "parse_value",
    "STAGES",
    "STAGE_KIND",
    "COMPARED_STAGES",
    "METRICS",
]

STAGES: tuple[str, ...] = ("dataset", "glm", "denoiser", "aligner", "encoder", "features")
"""Stage names, in pipeline order."""

STAGE_KIND: dict[str, str] = {
    "dataset": "dataset",
    "glm": "denoiser",
    "denoiser": "denoiser",
    "aligner": "aligner",
    "encoder": "encoder",
    "features": "features",
}
"""The component kind each stage takes."""

COMPARED_STAGES = ("denoiser", "aligner", "encoder")
"""Stages that may list several entries to compare."""

_TOP_KEYS = STAGES + ("analysis", "evaluation", "lock")
_ENTRY_KEYS = ("plugin", "params", "label", "none_params", "distribution", "version")
_DATASET_KEYS = _ENTRY_KEYS + ("location", "subjects", "rois")
_ANALYSIS_KEYS = ("name", "seed", "description")
_EVALUATION_KEYS = ("metrics", "truth", "split_fallback_test_fraction", "context_sizes",
                    "context_draws")
_DEFAULTS = {"denoiser": ["trial-average"], "encoder": ["ridge"], "features": ["precomputed"]}
METRICS = ("pearson_r", "r2", "nc_r2")
DEFAULT_CONTEXT_DRAWS = 5
"""Draws of N training stimuli per context size when ``context_draws`` is not given."""


@dataclass
class StageEntry:
    """One component of a stage: plugin name, parameters and a unique label.

    Parameters
    ----------
    plugin : str
        Registered component name.
    params : dict
        Constructor parameters (missing ones take the component's defaults).
    label : str
        Name used in results (defaults to ``plugin``).
    """

    plugin: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.plugin


@dataclass
class AnalysisSpec:
    """A parsed analysis spec (see the module docstring for the file format).

    Attributes
    ----------
    stages : dict of str to list of StageEntry
        Entries of every stage present (``glm`` and ``aligner`` may be empty).
    dataset : dict
        ``location``, ``subjects`` and ``rois`` of the dataset stage.
    analysis, evaluation : dict
        Name, seed; metrics and options of the evaluation.
    lock : dict
        The ``[lock]`` table of a locked spec (empty otherwise).
    base_dir : Path
        Folder that relative paths are resolved against (the spec's folder).
    """

    stages: dict[str, list[StageEntry]]
    dataset: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    lock: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def seed(self) -> int:
        """Seed of the analysis (default 0; checked by :func:`check_seed`)."""
        return check_seed(self.analysis.get("seed", 0))

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics to report."""
        return tuple(self.evaluation.get("metrics", METRICS))

    @property
    def context_sizes(self) -> tuple[int, ...]:
        """Numbers of training stimuli of the few-shot fits, ascending (empty: none).

        See :func:`check_context_sizes`.
        """
        value = self.evaluation.get("context_sizes")
        return () if value is None else check_context_sizes(value)

    @property
    def context_draws(self) -> int:
        """Draws of each context size (default 5; see :func:`check_context_draws`)."""
        return check_context_draws(self.evaluation.get("context_draws", DEFAULT_CONTEXT_DRAWS))

    def location(self) -> str | None:
        """Return the dataset location, resolved against the spec's folder (a URL as it is)."""
        loc = self.dataset.get("location")
        if loc in (None, ""):
            return None
        if is_url(str(loc)):
            return str(loc)
        path = Path(str(loc)).expanduser()
        return str(path if path.is_absolute() else (self.base_dir / path).resolve())

    def copy(self) -> AnalysisSpec:
        """Return a deep copy."""
        return copy.deepcopy(self)


def is_url(location: str) -> bool:
    """Return whether a dataset location is a URL (``https://...``), not a path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location) is not None


def check_seed(value: Any) -> int:
    """Return ``value`` as the analysis seed, or raise a :class:`SpecError` naming it.

    A seed is a non-negative integer (TOML ``seed = 3``); a string such as ``"3"`` or
    ``"abc"`` is refused rather than guessed at, since the seed decides every split.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(
            f"[analysis] seed must be a non-negative integer; got {value!r}. "
            "Write it without quotes, e.g. seed = 0 (or --set analysis.seed=0)."
        )
    return value


def check_context_sizes(value: Any) -> tuple[int, ...]:
    """Return ``[evaluation] context_sizes`` as sorted ints, or raise a :class:`SpecError`.

    Each size N is a number of a subject's training stimuli that every encoder is also
    fitted on (the few-shot curve of ``conform fit``): a list of distinct integers of 2 or
    more, e.g. ``context_sizes = [10, 20, 50]``.

    Parameters
    ----------
    value : Any
        The value read from the spec or from ``--set evaluation.context_sizes=[...]``.

    Returns
    -------
    tuple of int
        The sizes in ascending order.

    Raises
    ------
    SpecError
        For a value that is not a list, an empty list, an item that is not an integer or
        is below 2, or a size listed twice; the message names the value and the fix.

    Examples
    --------
    >>> check_context_sizes([50, 10, 20])
    (10, 20, 50)
    """
    example = "e.g. context_sizes = [10, 20, 50] (or --set evaluation.context_sizes=[10,20,50])"
    if not isinstance(value, (list, tuple)):
        raise SpecError(
            f"[evaluation] context_sizes must be a list of numbers of training stimuli; got "
            f"{value!r}. Write it as a list, {example}."
        )
    if not value:
        raise SpecError(
            "[evaluation] context_sizes is an empty list. List at least one number of "
            f"training stimuli, {example}, or remove the key to fit on all training stimuli only."
        )
    for size in value:
        if isinstance(size, bool) or not isinstance(size, int):
            raise SpecError(
                f"[evaluation] context_sizes: {size!r} is not an integer number of training "
                f"stimuli. Write whole numbers without quotes, {example}."
            )
        if size < 2:
            raise SpecError(
                f"[evaluation] context_sizes: {size} is below 2; an encoder needs at least 2 "
                f"training stimuli. Use sizes of 2 or more, {example}."
            )
    twice = sorted({size for size in value if list(value).count(size) > 1})
    if twice:
        raise SpecError(
            f"[evaluation] context_sizes lists {twice[0]} more than once ({list(value)}). List "
            f"each size once, {example}."
        )
    return tuple(sorted(int(size) for size in value))


def check_context_draws(value: Any) -> int:
    """Return ``[evaluation] context_draws``, or raise a :class:`SpecError` naming it.

    The number of draws of N training stimuli per context size: an integer of 1 or more
    (default 5).

    Raises
    ------
    SpecError
        If ``value`` is not an integer of 1 or more.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(
            f"[evaluation] context_draws must be an integer of 1 or more; got {value!r}. "
            f"Write e.g. context_draws = {DEFAULT_CONTEXT_DRAWS} (or --set "
            f"evaluation.context_draws={DEFAULT_CONTEXT_DRAWS})."
        )
    return value


def _check_evaluation(evaluation: Mapping[str, Any]) -> None:
    """Check the few-shot options of ``[evaluation]`` (see :func:`check_context_sizes`)."""
    if "context_sizes" in evaluation:
        check_context_sizes(evaluation["context_sizes"])
    if "context_draws" in evaluation:
        check_context_draws(evaluation["context_draws"])


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and parse a spec (or lock) file.

    Raises
    ------
    SpecError
        If the file is missing, is not valid TOML, or has unknown keys.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(
            f"Spec file {str(path)!r} does not exist. Pass the path of a TOML spec "
            "such as examples/quickstart.toml."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(
            f"Spec file {str(path)!r} is not valid TOML: {exc}. Fix the syntax."
        ) from None
    return parse_spec(raw, base_dir=path.resolve().parent, source=str(path))


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, source: str) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(
                f"Unknown key {key!r} in {where} of {source}.{suggest(key, allowed)} "
                f"Allowed keys: {', '.join(allowed)}."
            )


def _entry(value: Any, stage: str, source: str) -> StageEntry:
    if isinstance(value, str):
        return StageEntry(plugin=value)
    if not isinstance(value, Mapping):
        raise SpecError(
            f"Each {stage!r} entry in {source} must be a plugin name or a table with "
            f"'plugin' (and 'params'); got {value!r}."
        )
    _check_keys(value, _ENTRY_KEYS, f"a [{stage}] entry", source)
    if "plugin" not in value or not isinstance(value["plugin"], str):
        raise SpecError(
            f"A [{stage}] entry in {source} has no 'plugin' name; add plugin = \"NAME\"."
        )
    params = dict(value.get("params", {}))
    if not isinstance(value.get("params", {}), Mapping):
        raise SpecError(
            f"'params' of the {value['plugin']!r} {stage} entry in {source} must be a table."
        )
    for name in value.get("none_params", []):
        params[name] = None
    return StageEntry(plugin=value["plugin"], params=params, label=str(value.get("label", "")))


def parse_spec(
    raw: Mapping[str, Any], *, base_dir: Path | None = None, source: str = "the spec"
) -> AnalysisSpec:
    """Build an :class:`AnalysisSpec` from a parsed TOML mapping (checks keys and structure)."""
    _check_keys(raw, _TOP_KEYS, "the top level", source)
    stages: dict[str, list[StageEntry]] = {}
    dataset: dict[str, Any] = {}
    for stage in STAGES:
        value = raw.get(stage)
        if value is None:
            stages[stage] = [StageEntry(p) for p in _DEFAULTS.get(stage, [])]
            if stage == "dataset":
                raise SpecError(
                    f"{source} has no [dataset] table. Add one, e.g. [dataset] with "
                    'plugin = "synthetic".'
                )
            continue
        if stage == "dataset":
            if isinstance(value, str):
                value = {"plugin": value}
            if not isinstance(value, Mapping):
                raise SpecError(f"[dataset] in {source} must be a table with 'plugin'.")
            _check_keys(value, _DATASET_KEYS, "[dataset]", source)
            dataset = {k: value[k] for k in ("location", "subjects", "rois") if k in value}
            value = {k: v for k, v in value.items() if k in _ENTRY_KEYS}
        items = value if isinstance(value, list) else [value]
        if stage not in COMPARED_STAGES and len(items) > 1:
            raise SpecError(
                f"Stage {stage!r} takes one entry; got {len(items)} in {source}. "
                f"Only {', '.join(COMPARED_STAGES)} can be compared."
            )
        stages[stage] = [_entry(item, stage, source) for item in items]
        labels = [e.label for e in stages[stage]]
        dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
        if dupes:
            raise SpecError(
                f"Stage {stage!r} lists {dupes[0]!r} twice in {source}. Give each entry "
                'a distinct label, e.g. {plugin = "psn", label = "psn-wiener", ...}.'
            )
    analysis = dict(raw.get("analysis", {}))
    _check_keys(analysis, _ANALYSIS_KEYS, "[analysis]", source)
    if "seed" in analysis:
        check_seed(analysis["seed"])
    evaluation = dict(raw.get("evaluation", {}))
    _check_keys(evaluation, _EVALUATION_KEYS, "[evaluation]", source)
    for metric in evaluation.get("metrics", []):
        if metric not in METRICS:
            raise SpecError(
                f"Unknown metric {metric!r} in [evaluation] of {source}."
                f"{suggest(metric, METRICS)} Metrics: {', '.join(METRICS)}."
            )
    _check_evaluation(evaluation)
    return AnalysisSpec(
        stages=stages,
        dataset=dataset,
        analysis=analysis,
        evaluation=evaluation,
        lock=dict(raw.get("lock", {})),
        base_dir=base_dir or Path.cwd(),
    )


def parse_value(text: str) -> Any:
    """Read a command-line value as TOML (numbers, booleans, lists, quoted strings); else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(spec: AnalysisSpec, overrides: Sequence[str]) -> AnalysisSpec:
    """Apply ``--set`` overrides and return a new spec.

    ``STAGE=PLUGIN`` (or ``STAGE=P1,P2``) replaces a stage's entries with default-parameter
    instances of those plugins; ``STAGE.PARAM=VALUE`` sets a parameter on every entry of the
    stage, and ``STAGE[LABEL].PARAM=VALUE`` on the entry labelled ``LABEL`` only (a
    compared stage's entries are labelled by plugin name unless the spec gives a
    ``label``); values are read as TOML: numbers, booleans, quoted strings, lists;
    anything else is a string. ``analysis.seed=3``, ``dataset.location=DIR``,
    ``dataset.subjects=[...]`` and ``evaluation.KEY=VALUE`` set those tables. A relative
    ``dataset.location`` is resolved against the current folder (where the command was
    typed), whereas one written in the spec file is resolved against the spec's folder.
    """
    out = spec.copy()
    for item in overrides:
        if "=" not in item:
            raise SpecError(f"--set takes STAGE=PLUGIN or STAGE.PARAM=VALUE; got {item!r}.")
        key, text = (s.strip() for s in item.split("=", 1))
        head, _, param = key.partition(".")
        head, label = _split_label(head, item)
        allowed = STAGES + ("analysis", "evaluation")
        if head not in allowed:
            raise SpecError(
                f"--set {item!r}: unknown stage {head!r}.{suggest(head, allowed)} "
                f"Stages: {', '.join(allowed)}."
            )
        if label is not None and (head not in COMPARED_STAGES or not param):
            raise SpecError(
                f"--set {item!r}: [LABEL] picks one entry of a compared stage "
                f"({', '.join(COMPARED_STAGES)}) to set a parameter on, as in "
                f"--set {head if head in COMPARED_STAGES else 'denoiser'}[LABEL].PARAM=VALUE."
            )
        if head in ("analysis", "evaluation"):
            if not param:
                raise SpecError(f"--set {item!r}: use {head}.KEY=VALUE.")
            getattr(out, head)[param] = parse_value(text)
            continue
        if not param:
            names = [n.strip() for n in text.split(",") if n.strip()]
            if not names:
                raise SpecError(f"--set {item!r}: name at least one plugin.")
            if head not in COMPARED_STAGES and len(names) > 1:
                raise SpecError(f"--set {item!r}: stage {head!r} takes one plugin.")
            out.stages[head] = [StageEntry(n) for n in names]
            if head == "dataset":
                out.lock.pop("inputs", None)
            continue
        if head == "dataset" and param in ("location", "subjects", "rois"):
            value = parse_value(text)
            if param == "location" and isinstance(value, str) and value and not is_url(value):
                # typed on the command line: relative to where the command runs, not the spec
                value = str(Path(value).expanduser().resolve())
            out.dataset[param] = value
            out.lock.pop("inputs", None)
            continue
        if not out.stages.get(head):
            raise SpecError(
                f"--set {item!r}: stage {head!r} has no plugin to set {param!r} on. "
                f"Add one first, e.g. --set {head}=NAME."
            )
        entries = out.stages[head]
        if label is not None:
            labels = [e.label for e in entries]
            if label not in labels:
                raise SpecError(
                    f"--set {item!r}: stage {head!r} has no entry labelled {label!r}."
                    f"{suggest(label, labels)} Its entries: {', '.join(labels)}."
                )
            entries = [e for e in entries if e.label == label]
        for entry in entries:
            entry.params[param] = parse_value(text)
    if "seed" in out.analysis:
        check_seed(out.analysis["seed"])
    _check_evaluation(out.evaluation)
    return out


def _split_label(head: str, item: str) -> tuple[str, str | None]:
    """``"denoiser[pca]"`` -> ``("denoiser", "pca")``; ``"denoiser"`` -> ``("denoiser", None)``."""
    if "[" not in head and "]" not in head:
        return head, None
    stage, bracket, rest = head.partition("[")
    if not bracket or not rest.endswith("]") or not rest[:-1].strip():
        raise SpecError(
            f"--set {item!r}: write one entry of a stage as STAGE[LABEL], e.g. "
            "--set denoiser[pca].n_components=5."
        )
    return stage.strip(), rest[:-1].strip()


def check_spec(spec: AnalysisSpec, registry: Any) -> None:
    """Check plugins, parameters and stage compatibility before any work starts.

    Raises
    ------
    SpecError
        Naming the stage, the plugin or parameter, and the fix.
    """
    from .data import ConditionTrials, TimeSeriesData, TrialData

    for stage, entries in spec.stages.items():
        kind = STAGE_KIND[stage]
        for entry in entries:
            try:
                cls = registry.get(kind, entry.plugin)
            except UnknownComponentError as exc:
                raise SpecError(f"Stage {stage!r}: {exc}") from None
            accepted = list(cls.param_names())
            for param in entry.params:
                if param not in accepted:
                    raise SpecError(
                        f"Stage {stage!r}: {entry.plugin!r} has no parameter {param!r}."
                        f"{suggest(param, accepted)} Its parameters: {', '.join(accepted) or 'none'}."
                    )
            if stage == "glm" and not (
                TimeSeriesData in cls.consumes and cls.produces is TrialData
            ):
                raise SpecError(
                    f"Stage 'glm' needs a denoiser that turns time series into single "
                    f"trials; {entry.plugin!r} consumes "
                    f"{[t.__name__ for t in cls.consumes]}. Move it to 'denoiser'."
                )
            if stage == "denoiser" and not any(
                t in cls.consumes for t in (ConditionTrials, TrialData)
            ):
                raise SpecError(
                    f"Stage 'denoiser' needs a trial-level denoiser; {entry.plugin!r} "
                    f"consumes {[t.__name__ for t in cls.consumes]}. Put it in the "
                    "'glm' stage instead (glm = \"" + entry.plugin + '").'
                )
