"""The meta-training spec of ``conform braincorl train``: a TOML file, checked before any work.

Example (``examples/braincorl_sim.toml``)::

    features = "precomputed"          # or {plugin = "clip", params = {...}}

    [model]
    preset = "tiny"                   # tiny, small, clip, dino, siglip; sizes may be overridden

    [dataset]                         # as in a conform fit spec, plus:
    plugin = "synthetic"
    train_subjects = ["sub-01", "sub-02", "sub-03", "sub-04"]   # default: all but validation
    validation_subjects = ["sub-05"]  # default: the dataset's last subject
    exclude_test_stimuli = "all"      # or "own"
    [dataset.params]
    n_subjects = 5

    [training]
    seed = 0
    batch_voxels = 64

    [[stages]]
    name = "prior-fixed"
    source = "prior"                  # "prior" (synthetic voxels) or "subjects"
    steps = 200
    context = [64, 64]                # [lo, hi]: context size ~ Uniform{lo..hi} per batch

The ``[dataset]`` table and ``features`` are read by conform fit's own machinery
(:func:`conform_core.spec.parse_spec` and :func:`conform_core.analysis.make_plan`): any
dataset plugin and any features plugin, their parameters checked by the registry, the
subjects checked against the dataset. ``[dataset] seed`` (default 0) is the ``[analysis]
seed`` of the conform fit analyses the model is meant for: it fills the dataset's
``random_state`` when not set, and seeds conform fit's fallback train/test split of
subjects without a split of their own, so training leaves out exactly the stimuli conform
fit tests on; ``split_fallback_test_fraction`` (default 0.2) is its share, as in conform
fit's ``[evaluation]``.

``[training]`` takes the settings of :class:`~conform_braincorl.training.TrainSettings`
plus ``validation_voxels`` (default 256) and ``validation_context`` (default: the middle of
the last stage's context range): the fixed validation tasks, drawn from the validation
subjects once.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conform_core.exceptions import ConformError, ParameterError, SpecError
from conform_core.io import to_builtin
from conform_core.validation import suggest

from .checkpoint import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from .loading import feature_space_of, load_subject_pools
from .network import PRESETS, BraInCoRLConfig, preset_config
from .tasks import (
    PriorTaskSampler,
    SubjectTaskSampler,
    TaskBatch,
    TaskSampler,
    draw_validation,
)
from .training import CURVE_FILE, STATE_FILE, Stage, TrainSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TrainingSpec", "PreparedTraining", "load_training_spec", "parse_training_spec",
           "prepare_training", "train_from_spec", "check_out",
           "apply_data_overrides", "SOURCES", "OUTPUT_FILES"]

#: Task sources a spec's stages may name.
SOURCES = ("prior", "subjects")
#: Files a training run writes in its folder (``--overwrite`` removes these, nothing else).
OUTPUT_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE, STATE_FILE, CURVE_FILE)

_TOP = ("model", "dataset", "features", "training", "stages", "description")
_DATASET_OWN = ("train_subjects", "validation_subjects", "exclude_test_stimuli", "seed",
                "split_fallback_test_fraction")
_DATASET_SHARED = ("plugin", "params", "location", "rois", "none_params")
_VALIDATION = ("validation_voxels", "validation_context")
_STAGE_KEYS = ("name", "source", "steps", "context")


@dataclass
class TrainingSpec:
    """A parsed meta-training spec (see the module docstring for the file format).

    Attributes
    ----------
    preset : str
        Model preset; ``model_sizes`` overrides some of its sizes.
    model_sizes : dict
    analysis : conform_core.spec.AnalysisSpec
        The ``[dataset]`` and ``features`` of the spec, as conform fit reads them.
    train_subjects, validation_subjects : list of str or None
        None: the defaults (validation: the dataset's last subject; training: the others).
    exclude_test_stimuli : {"all", "own"}
    settings : TrainSettings
    validation_voxels : int
    validation_context : int or None
    stages : list of Stage
    text : str
        The spec file's text (recorded in the checkpoint).
    source : str
        Where it came from (for messages).
    """

    preset: str
    model_sizes: dict[str, Any]
    analysis: Any
    train_subjects: list[str] | None
    validation_subjects: list[str] | None
    exclude_test_stimuli: str
    settings: TrainSettings
    stages: list[Stage]
    validation_voxels: int = 256
    validation_context: int | None = None
    text: str = ""
    source: str = "the spec"
    description: str = ""

    @property
    def n_validation_context(self) -> int:
        """Context size of the validation tasks (default: middle of the last stage's range)."""
        if self.validation_context is not None:
            return self.validation_context
        lo, hi = self.stages[-1].context
        return (lo + hi) // 2


def _keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, source: str) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(f"Unknown key {key!r} in {where} of {source}.{suggest(key, allowed)} "
                            f"Allowed keys: {', '.join(allowed)}.")


def _int(value: Any, where: str, low: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"{where} must be an integer of {low} or more; got {value!r}. Write it "
                        f"without quotes, e.g. {example}.")
    return value


def _subjects(value: Any, key: str, source: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"[dataset] {key} in {source} must be a list of subject names; got "
                        f"{value!r}. Write e.g. {key} = [\"sub-01\", \"sub-02\"].")
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        raise SpecError(f"[dataset] {key} in {source} names subject {twice[0]!r} twice. List "
                        "each subject once.")
    return list(value)


def _model(table: Any, source: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(table, Mapping):
        raise SpecError(f"[model] in {source} must be a table, e.g. [model] with preset = \"tiny\".")
    sizes = dict(table)
    preset = sizes.pop("preset", "tiny")
    if not isinstance(preset, str) or preset not in PRESETS:
        raise SpecError(f"[model] preset in {source} must be one of {', '.join(PRESETS)}; got "
                        f"{preset!r}.{suggest(str(preset), PRESETS)} Use 'tiny' or 'small' on a "
                        "CPU, 'clip' for CLIP ViT-B/32 features.")
    if "embed_dim" in sizes:
        raise SpecError(f"[model] embed_dim in {source}: the embedding length comes from the "
                        "features (and a published preset fixes it). Remove the key.")
    try:  # sizes and their rules, with a stand-in embedding length where it comes from the data
        preset_config(preset, embed_dim=8 if PRESETS[preset]["embed_dim"] is None else None,
                      **sizes)
    except ConformError as exc:
        raise SpecError(f"[model] in {source}: {exc}") from None
    return preset, sizes


def _stages(value: Any, source: str) -> list[Stage]:
    if not isinstance(value, list) or not value:
        raise SpecError(
            f"{source} has no [[stages]]. Add at least one, e.g.\n[[stages]]\nname = \"subjects\"\n"
            "source = \"subjects\"\nsteps = 500\ncontext = [8, 96]")
    stages = []
    for i, table in enumerate(value, 1):
        if not isinstance(table, Mapping):
            raise SpecError(f"Stage {i} in {source} must be a [[stages]] table.")
        _keys(table, _STAGE_KEYS, f"stage {i} ([[stages]])", source)
        missing = [k for k in _STAGE_KEYS if k not in table]
        if missing:
            raise SpecError(f"Stage {i} ({table.get('name', 'unnamed')!r}) in {source} has no "
                            f"{missing[0]!r}. Each stage needs name, source, steps and context.")
        if table["source"] not in SOURCES:
            raise SpecError(
                f"Stage {table['name']!r} in {source}: source must be 'prior' (synthetic voxels "
                f"drawn from a prior fitted to the training subjects) or 'subjects' (their real "
                f"voxels); got {table['source']!r}.{suggest(str(table['source']), SOURCES)}")
        try:
            stages.append(Stage(name=table["name"], source=table["source"], steps=table["steps"],
                                context=tuple(table["context"])
                                if isinstance(table["context"], list) else table["context"]))
        except ParameterError as exc:
            raise SpecError(f"[[stages]] in {source}: {exc}") from None
    names = [s.name for s in stages]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"[[stages]] in {source} has two stages named {twice[0]!r}. Give each "
                        "stage its own name.")
    return stages


def parse_training_spec(raw: Mapping[str, Any], *, base_dir: Path | None = None,
                        source: str = "the spec", text: str = "") -> TrainingSpec:
    """Build a :class:`TrainingSpec` from a parsed TOML mapping, checking every value.

    Raises
    ------
    SpecError
        Naming the key, the value and the fix (unknown keys, a subject named twice or in
        both lists, a bad stage, a bad setting, an unknown preset...).
    """
    from conform_core.spec import parse_spec

    _keys(raw, _TOP, "the top level", source)
    preset, sizes = _model(raw.get("model", {}), source)
    dataset = raw.get("dataset")
    if not isinstance(dataset, Mapping):
        raise SpecError(f"{source} has no [dataset] table. Add one, e.g. [dataset] with "
                        'plugin = "synthetic".')
    _keys(dataset, _DATASET_SHARED + _DATASET_OWN, "[dataset]", source)
    train = _subjects(dataset.get("train_subjects"), "train_subjects", source)
    validation = _subjects(dataset.get("validation_subjects"), "validation_subjects", source)
    both = sorted(set(train or []) & set(validation or []))
    if both:
        raise SpecError(f"[dataset] in {source} names subject {both[0]!r} in both train_subjects "
                        "and validation_subjects. A validation subject must be held out of "
                        "training: remove it from one list.")
    exclude = dataset.get("exclude_test_stimuli", "all")
    if exclude not in ("all", "own"):
        raise SpecError(
            f"[dataset] exclude_test_stimuli in {source} must be 'all' (leave out every stimulus "
            f"of any subject's test split) or 'own' (each subject's own test stimuli); got "
            f"{exclude!r}. Training on test stimuli would leak them into the scores of conform "
            "fit, so they are always left out.")
    seed = _int(dataset.get("seed", 0), "[dataset] seed", 0, "seed = 0")
    analysis_raw: dict[str, Any] = {
        "dataset": {k: dataset[k] for k in _DATASET_SHARED if k in dataset},
        "features": raw.get("features", "precomputed"), "analysis": {"seed": seed}}
    if "split_fallback_test_fraction" in dataset:
        fraction = dataset["split_fallback_test_fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
                or not 0 < fraction < 1:
            raise SpecError(f"[dataset] split_fallback_test_fraction in {source} must be a number "
                            f"in (0, 1); got {fraction!r}. Use conform fit's value (default 0.2).")
        analysis_raw["evaluation"] = {"split_fallback_test_fraction": fraction}
    if isinstance(analysis_raw["features"], list):
        raise SpecError(f"features in {source} takes one plugin; got a list. Meta-train one model "
                        "per feature space.")
    analysis = parse_spec(analysis_raw, base_dir=base_dir, source=source)
    training = dict(raw.get("training", {}))
    _keys(training, TrainSettings.names() + list(_VALIDATION), "[training]", source)
    voxels = _int(training.pop("validation_voxels", 256), "[training] validation_voxels", 1,
                  "validation_voxels = 256")
    context = training.pop("validation_context", None)
    if context is not None:
        context = _int(context, "[training] validation_context", 2, "validation_context = 20")
    try:
        settings = TrainSettings(**training)
    except ParameterError as exc:
        raise SpecError(f"{source}: {exc}") from None
    description = raw.get("description", "")
    return TrainingSpec(preset=preset, model_sizes=sizes, analysis=analysis,
                        train_subjects=train, validation_subjects=validation,
                        exclude_test_stimuli=exclude, settings=settings,
                        stages=_stages(raw.get("stages"), source), validation_voxels=voxels,
                        validation_context=context, text=text, source=source,
                        description=str(description))


def load_training_spec(path: str | Path) -> TrainingSpec:
    """Read and check a meta-training spec file.

    Raises
    ------
    SpecError
        If the file is missing, not valid TOML, or any value is bad.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"Spec file {str(path)!r} does not exist. Pass the path of a TOML "
                        "meta-training spec such as examples/braincorl_sim.toml.")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"Spec file {str(path)!r} is not valid TOML: {exc}. Fix the syntax.") \
            from None
    return parse_training_spec(raw, base_dir=path.resolve().parent, source=str(path), text=text)


@dataclass
class PreparedTraining:
    """Everything :func:`~conform_braincorl.training.meta_train` needs, built from a spec.

    Attributes
    ----------
    config : BraInCoRLConfig
    stages : list of Stage
    samplers : dict of str to TaskSampler
    validation : TaskBatch
    settings : TrainSettings
    feature_space : str
    info : dict
        Recorded in the checkpoint: ``excluded_stimuli`` and ``training``.
    """

    config: BraInCoRLConfig
    stages: list[Stage]
    samplers: dict[str, TaskSampler]
    validation: TaskBatch
    settings: TrainSettings
    feature_space: str
    info: dict[str, Any] = field(default_factory=dict)


def _resolve_subjects(spec: TrainingSpec, available: Sequence[str]) -> tuple[list[str], list[str]]:
    for key, names in (("train_subjects", spec.train_subjects),
                       ("validation_subjects", spec.validation_subjects)):
        for name in names or []:
            if name not in available:
                shown = ", ".join(available[:10]) + (" ..." if len(available) > 10 else "")
                raise SpecError(f"[dataset] {key}: no subject {name!r} in this dataset."
                                f"{suggest(name, available)} Its subjects: {shown}.")
    train = spec.train_subjects
    validation = spec.validation_subjects
    if validation is None:
        rest = [s for s in available if s not in (train or [])]
        validation = rest[-1:]
    if train is None:
        train = [s for s in available if s not in validation]
    if not validation:
        raise SpecError(
            f"{spec.source}: no subject is left for validation (the dataset has "
            f"{len(available)}, all in train_subjects). Meta-training scores held-out subjects: "
            "name one in [dataset] validation_subjects and leave it out of train_subjects.")
    if not train:
        raise SpecError(
            f"{spec.source}: no training subject (the dataset has {len(available)} subject(s), "
            "all used for validation). Use a dataset with more subjects, or list "
            "train_subjects.")
    return list(train), list(validation)


def prepare_training(spec: TrainingSpec, *, registry: Any = None) -> PreparedTraining:
    """Check the spec against the registry and the data, then load the subjects and build tasks.

    Everything that can be checked without loading data is checked first (plugins and
    their parameters, subjects, device); then the subjects are loaded, their test stimuli
    left out, and each one's stimulus count checked against the stages' context sizes.

    Raises
    ------
    SpecError
        For a bad plugin, parameter or subject (naming it and the fix).
    ParameterError
        For a subject with too few stimuli for the stages, or an unusable device.
    """
    from conform_core.analysis import make_plan
    from conform_core.plugins import default_registry

    from ._torch import resolve_device

    registry = default_registry() if registry is None else registry
    resolve_device(spec.settings.device)
    plan = make_plan(spec.analysis, registry)
    train, validation = _resolve_subjects(spec, list(plan.subjects))
    entry = plan.stages["features"][0]
    features = plan.build("features", entry)
    pools, excluded = load_subject_pools(
        plan.dataset(), features, train + validation, exclude=spec.exclude_test_stimuli,
        rois=plan.rois, split_seed=plan.seed, test_fraction=plan.test_fraction,
        all_subjects=list(plan.subjects))
    embed_dim = pools[train[0]].embed_dim
    try:
        config = preset_config(spec.preset, embed_dim=embed_dim, **spec.model_sizes)
    except ConformError as exc:
        raise SpecError(f"[model] in {spec.source}: {exc}") from None
    n_query = spec.settings.n_query
    subjects = SubjectTaskSampler([pools[s] for s in train])
    samplers: dict[str, TaskSampler] = {}
    for stage in spec.stages:
        if stage.source == "subjects":
            subjects.check_capacity(stage.context[1] + n_query, f" of stage {stage.name!r}")
            samplers["subjects"] = subjects
    held_out = SubjectTaskSampler([pools[s] for s in validation])
    n_context = spec.n_validation_context
    held_out.check_capacity(n_context + n_query, " of the validation (validation_context + "
                                                 "n_query)")
    if any(stage.source == "prior" for stage in spec.stages):
        ridge = registry.get("encoder", "ridge")
        samplers["prior"] = PriorTaskSampler.from_pools(subjects.pools, encoder=ridge())
    batch = draw_validation(held_out, seed=spec.settings.seed, n_tasks=spec.validation_voxels,
                            n_context=n_context, n_query=n_query)
    dataset_entry = plan.stages["dataset"][0]
    info = {"excluded_stimuli": excluded, "training": {
        "datasets": [{"plugin": dataset_entry.plugin, "params": to_builtin(dataset_entry.params),
                      "set": to_builtin(spec.analysis.stages["dataset"][0].params),
                      "location": plan.location}],
        "features": {"plugin": entry.plugin, "params": to_builtin(entry.params)},
        "preset": spec.preset, "subjects": train, "validation_subjects": validation,
        "exclude_test_stimuli": spec.exclude_test_stimuli, "embeddings_normalized": True,
        "stimulus_counts": {name: pool.describe() for name, pool in pools.items()},
        "validation": {"voxels": spec.validation_voxels, "context": n_context, "query": n_query},
        "seed": spec.settings.seed, "description": spec.description, "spec": spec.text}}
    return PreparedTraining(config=config, stages=list(spec.stages), samplers=samplers,
                            validation=batch, settings=spec.settings,
                            feature_space=feature_space_of(features, entry.plugin), info=info)


_SET_HEADS = ("dataset", "features")


def apply_data_overrides(spec: TrainingSpec, overrides: Sequence[str]) -> TrainingSpec:
    """Apply ``--set`` items to the spec's dataset and features; return a new spec.

    The items conform fit takes for these stages: ``dataset.PARAM=VALUE``,
    ``dataset.location=DIR``, ``dataset.rois=[...]``, ``features=PLUGIN`` and
    ``features.PARAM=VALUE``. They are recorded in the checkpoint with the spec.

    Raises
    ------
    SpecError
        For an item of another stage, or one conform fit's parser refuses.
    """
    from conform_core.spec import apply_overrides

    if not overrides:
        return spec
    for item in overrides:
        head = item.split("=", 1)[0].split(".", 1)[0].split("[", 1)[0].strip()
        key = item.split("=", 1)[0].strip()
        if head not in _SET_HEADS or key == "dataset.subjects":
            raise SpecError(
                f"--set {item!r}: `conform braincorl train` sets the data only: "
                "dataset.PARAM=VALUE, dataset.location=DIR, dataset.rois=[...], features=PLUGIN, "
                "features.PARAM=VALUE. Edit the spec for the rest ([model], [training], "
                "[[stages]], [dataset] seed, train_subjects, validation_subjects).")
    analysis = apply_overrides(spec.analysis, list(overrides))
    return replace(spec, analysis=analysis,
                   text=spec.text + "".join(f"\n# --set {item}" for item in overrides))


def check_out(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a non-empty output folder unless resuming or overwriting.

    ``overwrite`` removes the files a run writes (:data:`OUTPUT_FILES`) and nothing else.

    Raises
    ------
    ParameterError
        For a file in place of the folder, a non-empty folder without ``resume`` or
        ``overwrite``, both flags at once, or ``resume`` without a training state.
    """
    if resume and overwrite:
        raise ParameterError("--resume and --overwrite contradict each other: --resume continues "
                             "the run in the folder, --overwrite starts a new one. Pass one.")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {str(out)!r} is a file. Pass a folder (it is created).")
    if resume:
        if not (out / STATE_FILE).is_file():
            raise ParameterError(
                f"Cannot resume: {str(out / STATE_FILE)!r} does not exist (a run writes it at "
                "each checkpoint). Start a new run without --resume.")
        return
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ParameterError(
                f"Output folder {str(out)!r} is not empty. Pass --resume to continue the run it "
                "holds, --overwrite to start again there, or choose another --out.")
        for name in OUTPUT_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def train_from_spec(spec: TrainingSpec | str | Path, out: str | Path, *, resume: bool = False,
                    overwrite: bool = False, device: str | None = None,
                    threads: int | None = None, quiet: bool = True, console: Any = None,
                    registry: Any = None, stop_after: int | None = None,
                    overrides: Sequence[str] = ()) -> tuple[Any, Any]:
    """Run ``conform braincorl train``: check, load, meta-train, write ``out``.

    Parameters
    ----------
    spec : TrainingSpec or path
        The spec (or its file).
    out : path
        Folder for the checkpoint (created); must be empty unless ``resume`` or
        ``overwrite``.
    resume, overwrite : bool
        Continue the run in ``out``, or start again there (removing only the files a run
        writes, :data:`OUTPUT_FILES`).
    device, threads : optional
        Override ``[training] device`` / ``threads``.
    quiet : bool, default=True
        No progress report.
    console : rich Console, optional
    registry : ComponentRegistry, optional
        Default: the installed plugins.
    stop_after : int, optional
        Stop after this global step (see :func:`~conform_braincorl.training.meta_train`).
    overrides : sequence of str, default=()
        ``--set`` items for the data, as conform fit reads them (see
        :func:`apply_data_overrides`).

    Returns
    -------
    network, history
    """
    from .training import meta_train

    if not isinstance(spec, TrainingSpec):
        spec = load_training_spec(spec)
    spec = apply_data_overrides(spec, overrides)
    changes = {k: v for k, v in (("device", device), ("threads", threads)) if v is not None}
    if changes:
        try:
            spec = replace(spec, settings=replace(spec.settings, **changes))
        except ParameterError as exc:
            raise ParameterError(f"--{next(iter(changes))}: {exc}") from None
    out = Path(out)
    check_out(out, resume=resume, overwrite=overwrite)
    prepared = prepare_training(spec, registry=registry)
    out.mkdir(parents=True, exist_ok=True)
    return meta_train(prepared.config, prepared.stages, prepared.samplers,
                      settings=prepared.settings, validation=prepared.validation, out=out,
                      resume=resume, stop_after=stop_after, feature_space=prepared.feature_space,
                      info=prepared.info, quiet=quiet, console=console)
