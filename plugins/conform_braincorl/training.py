"""Meta-training: the loop, its settings, the curriculum as data, checkpoints and resuming.

:func:`meta_train` trains a :class:`~conform_braincorl.network.BraInCoRLNetwork` on tasks
drawn by samplers (:mod:`conform_braincorl.tasks`), stage after stage::

    stages = [Stage("prior-fixed", "prior", steps=200, context=(64, 64)),
              Stage("prior-variable", "prior", steps=200, context=(8, 96)),
              Stage("subjects", "subjects", steps=400, context=(8, 96))]
    network, history = meta_train(preset_config("tiny", embed_dim=32), stages,
                                  {"prior": prior, "subjects": subjects},
                                  validation=validation_batch, out="model")

This is the curriculum of the paper as data: synthetic voxels at a fixed context size,
then at variable context sizes, then the voxels of real training subjects. The loss is the
mean squared error of the query predictions (``network.predict(readout, query_x)``);
AdamW with the learning rate decayed along a cosine from ``lr`` to ``min_lr`` over all
steps of all stages. The same fixed validation tasks are scored every ``validate_every``
steps (query MSE, mean Pearson r and mean explained variance over tasks): the validation
curve. ``conform braincorl train SPEC`` builds all of this from a TOML file
(:mod:`conform_braincorl.spec`).

With ``out``, every ``checkpoint_every`` steps and at the end the folder gets a checkpoint
(``model.safetensors``, ``config.json``, ``model_card.md``; see
:func:`~conform_braincorl.checkpoint.save_checkpoint`), ``loss_curve.png`` and
``training_state.pt`` (weights, optimizer state, step, curves and random state). Each file
is written to a temporary name and renamed, so a run killed while saving leaves the
previous files intact. ``resume=True`` continues from ``training_state.pt``: batches are a
pure function of ``(seed, stage, step)`` and the learning rate of the step, so a resumed run
computes exactly the steps an uninterrupted run would (on CPU with the same thread count,
bit for bit).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from conform_core.constraints import Interval, NonEmptyStr, check_constraints
from conform_core.exceptions import DataFileError, ParameterError
from conform_core.io import atomic_path

from ._torch import resolve_device, torch, torch_threads
from .checkpoint import Checkpoint, save_checkpoint
from .network import BraInCoRLConfig, BraInCoRLNetwork
from .tasks import TaskBatch, TaskSampler, draw_batch

__all__ = ["Stage", "TrainSettings", "History", "meta_train", "evaluate", "STATE_FILE",
           "CURVE_FILE", "learning_rate"]

STATE_FILE, CURVE_FILE = "training_state.pt", "loss_curve.png"
_STATE_FORMAT = {"name": "conform-braincorl-training-state", "version": 1}


@dataclass(frozen=True)
class Stage:
    """One stage of the curriculum: where tasks come from, for how long, at which context sizes.

    Parameters
    ----------
    name : str
        Label (in progress lines, the model card and the loss curve).
    source : str
        Key of the sampler in :func:`meta_train`'s ``samplers`` (the spec's are
        ``"prior"`` and ``"subjects"``).
    steps : int
        Optimiser steps of this stage (>= 1).
    context : (int, int)
        ``(lo, hi)``: each batch's context size is drawn from ``Uniform{lo..hi}``;
        ``lo == hi`` fixes it. ``lo >= 2``.
    """

    name: str
    source: str
    steps: int
    context: tuple[int, int]

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NonEmptyStr()], "source": [NonEmptyStr()], "steps": [Interval(int, 1, None)]}

    def __post_init__(self) -> None:
        owner = f"stage {self.name!r}" if isinstance(self.name, str) else "a stage"
        check_constraints(self._parameter_constraints, asdict(self), owner=owner)
        context = self.context
        if (not isinstance(context, (list, tuple)) or len(context) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                       for v in context)):
            raise ParameterError(param="context", value=context, owner=owner,
                                 allowed="a pair [lo, hi] of ints",
                                 fix="Write e.g. context = [8, 96] (or [64, 64] for a fixed size).")
        lo, hi = int(context[0]), int(context[1])
        if lo < 2:
            raise ParameterError(param="context", value=list(context), owner=owner,
                                 allowed="[lo, hi] with lo >= 2",
                                 fix="A readout needs at least 2 context images: raise lo to 2 "
                                     "or more.")
        if hi < lo:
            raise ParameterError(param="context", value=list(context), owner=owner,
                                 allowed="[lo, hi] with lo <= hi",
                                 fix=f"Swap them: context = [{hi}, {lo}].")
        object.__setattr__(self, "context", (lo, hi))

    def as_dict(self) -> dict[str, Any]:
        """Return the stage as a JSON-ready dict."""
        return {"name": self.name, "source": self.source, "steps": self.steps,
                "context": list(self.context)}


@dataclass(frozen=True)
class TrainSettings:
    """Settings of the optimisation (the spec's ``[training]`` table).

    Parameters
    ----------
    seed : int, default=0
        Seeds the network's initialisation, every batch and the validation tasks.
    batch_voxels : int, default=64
        Tasks (voxels) per step.
    n_query : int, default=32
        Query images per task.
    lr : float, default=1e-3
        Peak learning rate of AdamW.
    min_lr : float, default=1e-5
        Learning rate at the end of the cosine decay (at most ``lr``).
    weight_decay : float, default=0.01
        AdamW's decoupled weight decay.
    grad_clip : float or None, default=1.0
        Clip the gradient's global norm at this value (None: no clipping).
    validate_every : int, default=100
        Score the validation tasks every this many steps (and at the start and the end).
    checkpoint_every : int, default=500
        Write the checkpoint and training state every this many steps (and at the end).
    threads : int or None, default=1
        torch intra-op threads (None: torch's own setting). One thread is the fastest on a
        small shared machine.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; on a GPU the forward pass runs in bfloat16
        autocast.
    """

    seed: int = 0
    batch_voxels: int = 64
    n_query: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    validate_every: int = 100
    checkpoint_every: int = 500
    threads: int | None = 1
    device: str = "cpu"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "seed": [Interval(int, 0, 2**32 - 1)],
        "batch_voxels": [Interval(int, 1, None)],
        "n_query": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "min_lr": [Interval(float, 0, None)],
        "weight_decay": [Interval(float, 0, None)],
        "grad_clip": [Interval(float, 0, None, closed="neither"), None],
        "validate_every": [Interval(int, 1, None)],
        "checkpoint_every": [Interval(int, 1, None)],
        "threads": [Interval(int, 1, None), None],
        "device": [NonEmptyStr()],
    }
    #: Settings that do not change the weights a run computes (a resumed run may change them).
    RUN_ONLY: ClassVar[tuple[str, ...]] = ("validate_every", "checkpoint_every", "threads",
                                           "device")

    def __post_init__(self) -> None:
        check_constraints(self._parameter_constraints, asdict(self), owner="[training]",
                          fixes={"seed": "Use an integer seed, e.g. seed = 0.",
                                 "threads": "Use 1 on a small or shared machine."})
        if self.min_lr > self.lr:
            raise ParameterError(param="min_lr", value=self.min_lr, owner="[training]",
                                 allowed=f"at most lr={self.lr}",
                                 fix="The cosine decays from lr down to min_lr; lower min_lr.")

    @classmethod
    def names(cls) -> list[str]:
        """Return the setting names."""
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return asdict(self)


@dataclass
class History:
    """What a training run did so far.

    Attributes
    ----------
    step : int
        Optimiser steps done (over all stages).
    total_steps : int
        Steps of the whole curriculum.
    train : list of [int, float]
        ``[step, query MSE]`` of every training step.
    validation : list of dict
        ``{"step", "stage", "mse", "pearson_r", "ev"}`` at every validation.
    seconds : float
        Wall time spent training (summed over resumed runs).
    """

    step: int = 0
    total_steps: int = 0
    train: list[list[float]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the history as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> History:
        """Rebuild a history from :meth:`as_dict`."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def learning_rate(step: int, total: int, lr: float, min_lr: float) -> float:
    """Return the learning rate of 0-based ``step`` of ``total``: cosine from ``lr`` to ``min_lr``."""
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * step / max(total, 1)))


def _autocast(device: Any) -> Any:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=device.type == "cuda")


def evaluate(network: BraInCoRLNetwork, batch: TaskBatch, *, device: Any = "cpu",
             chunk: int = 256) -> dict[str, float]:
    """Score ``network`` on ``batch``: query MSE, mean Pearson r and mean explained variance.

    Pearson r and explained variance (``1 - Var(y - ŷ) / Var(y)``, the paper's metric) are
    computed per task over its query images and averaged over tasks (a task whose
    responses or predictions are constant counts as r = 0).
    """
    device = torch.device(device)
    was_training = network.training
    network.eval()
    predictions = []
    with torch.no_grad(), _autocast(device):
        for start in range(0, batch.n_tasks, chunk):
            part = batch.take(slice(start, start + chunk))
            cx, cy, qx, _ = part.to_torch(device)
            predictions.append(network.predict(network(cx, cy), qx).float().cpu().numpy())
    network.train(was_training)
    pred = np.concatenate(predictions).astype(np.float64)
    y = batch.query_y.astype(np.float64)
    yc, pc = y - y.mean(axis=1, keepdims=True), pred - pred.mean(axis=1, keepdims=True)
    denom = np.sqrt((yc**2).sum(axis=1) * (pc**2).sum(axis=1))
    r = np.where(denom > 0, (yc * pc).sum(axis=1) / np.where(denom > 0, denom, 1), 0.0)
    var_y = y.var(axis=1)
    ev = np.where(var_y > 0, 1.0 - (y - pred).var(axis=1) / np.where(var_y > 0, var_y, 1), 0.0)
    return {"mse": float(((pred - y) ** 2).mean()), "pearson_r": float(r.mean()),
            "ev": float(ev.mean())}


def _fingerprint(config: BraInCoRLConfig, stages: Sequence[Stage], settings: TrainSettings,
                 samplers: Mapping[str, TaskSampler]) -> str:
    """Return a SHA-256 of what decides the weights a run computes (a resume must match it)."""
    used = sorted({s.source for s in stages})
    described = {
        "model": config.as_dict(), "stages": [s.as_dict() for s in stages],
        "settings": {k: v for k, v in settings.as_dict().items() if k not in settings.RUN_ONLY},
        "data": {source: samplers[source].fingerprint() for source in used}}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _check(network: BraInCoRLNetwork, stages: Sequence[Stage], samplers: Mapping[str, Any],
           settings: TrainSettings, validation: TaskBatch | None) -> None:
    """Refuse, before any work, what would fail later (names the value and the fix)."""
    if not stages:
        raise ParameterError(param="stages", value=[], owner="meta_train",
                             allowed="at least one Stage",
                             fix='Add one, e.g. Stage("subjects", "subjects", 500, (8, 96)).')
    names = [s.name for s in stages]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParameterError(param="stages", value=names, owner="meta_train",
                             allowed="stages with distinct names",
                             fix=f"Rename one of the stages called {twice[0]!r}.")
    e = network.config.embed_dim
    for stage in stages:
        if stage.source not in samplers:
            raise ParameterError(
                param="source", value=stage.source, owner=f"stage {stage.name!r}",
                allowed=f"one of {sorted(samplers)} (the samplers given)",
                fix="Name a source that has a sampler.")
        sampler = samplers[stage.source]
        if sampler.embed_dim != e:
            raise ParameterError(
                f"The {stage.source!r} tasks have {sampler.embed_dim}-d embeddings but the "
                f"network reads {e}-d ones.", param="embed_dim", value=e, owner="meta_train",
                fix="Build the network with embed_dim equal to the features' dimension.")
        sampler.check_capacity(stage.context[1] + settings.n_query, f" of stage {stage.name!r}")
    if validation is not None and validation.context_x.shape[-1] != e:
        raise ParameterError(
            f"The validation tasks have {validation.context_x.shape[-1]}-d embeddings but the "
            f"network reads {e}-d ones.", param="validation", value=validation.context_x.shape,
            owner="meta_train", fix="Draw them from the same features.")


def _rng_state(device: Any) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _load_state(path: Path, fingerprint: str) -> dict[str, Any]:
    if not path.is_file():
        raise DataFileError(
            f"Cannot resume: {str(path)!r} does not exist. Start a new run without --resume "
            "(a run writes its training state at each checkpoint).")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataFileError(f"Cannot read the training state {str(path)!r}: {exc}. It is "
                            "corrupt; start a new run with --overwrite.") from None
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        raise DataFileError(f"{str(path)!r} is not a conform BraInCoRL training state. Start a "
                            "new run with --overwrite.")
    if state["fingerprint"] != fingerprint:
        raise ParameterError(
            f"The training state in {str(path.parent)!r} was written by a run with another "
            "model, curriculum, optimisation settings or data, so resuming would not give the "
            "run it started.", param="resume", value=True, owner="meta_train",
            fix="Resume with the spec (and data) it started with, or start again with "
                "--overwrite.")
    return state


def _save(out: Path, network: BraInCoRLNetwork, optimizer: Any, history: History,
          fingerprint: str, device: Any, feature_space: str, info: Mapping[str, Any],
          stages: Sequence[Stage], settings: TrainSettings,
          samplers: Mapping[str, TaskSampler]) -> None:
    """Write the checkpoint, the model card, the loss curve and the training state."""
    from conform_core import __version__

    from ._report import model_card, plot_loss_curve

    training = dict(info.get("training", {}))
    training.update({
        "stages": [s.as_dict() for s in stages], "settings": settings.as_dict(),
        "steps": history.step, "total_steps": history.total_steps,
        "seconds": round(history.seconds, 3), "conform_version": __version__,
        "sources": {s: samplers[s].describe() for s in sorted({st.source for st in stages})}})
    full = {**info, "excluded_stimuli": list(info.get("excluded_stimuli", [])),
            "training": training, "validation": history.validation}
    checkpoint = Checkpoint(network=network, feature_space=feature_space, info=full, path=out)
    save_checkpoint(checkpoint, out, card=model_card(checkpoint.describe(), out))
    plot_loss_curve(history, stages, out / CURVE_FILE)
    state = {"format": _STATE_FORMAT, "fingerprint": fingerprint,
             "model": {k: v.detach().cpu() for k, v in network.state_dict().items()},
             "optimizer": optimizer.state_dict(), "history": history.as_dict(),
             "rng": _rng_state(device)}
    with atomic_path(out / STATE_FILE) as tmp:
        torch.save(state, str(tmp))


def meta_train(network: BraInCoRLNetwork | BraInCoRLConfig, stages: Sequence[Stage],
               samplers: Mapping[str, TaskSampler], *, settings: TrainSettings | None = None,
               validation: TaskBatch | None = None, out: str | os.PathLike[str] | None = None,
               resume: bool = False, stop_after: int | None = None, feature_space: str = "",
               info: Mapping[str, Any] | None = None, quiet: bool = True,
               console: Any = None) -> tuple[BraInCoRLNetwork, History]:
    """Meta-train a BraInCoRL network through a curriculum of stages.

    Parameters
    ----------
    network : BraInCoRLNetwork or BraInCoRLConfig
        The network to train (changed in place), or its sizes (initialised from
        ``settings.seed``).
    stages : sequence of Stage
        The curriculum, in order.
    samplers : mapping of str to TaskSampler
        Task source of each stage's ``source``.
    settings : TrainSettings, optional
        Optimisation settings (default ``TrainSettings()``).
    validation : TaskBatch, optional
        Fixed validation tasks (e.g. :func:`~conform_braincorl.tasks.draw_validation` on
        held-out subjects), scored at step 0, every ``validate_every`` steps and at the end.
    out : path, optional
        Folder for checkpoints, the model card, the loss curve and the training state.
    resume : bool, default=False
        Continue from ``out/training_state.pt`` (which must come from the same network
        sizes, stages, settings and data).
    stop_after : int, optional
        Stop after this global step (and save, with ``out``); resume later for the rest.
    feature_space : str, default=""
        Id of the embeddings (recorded in the checkpoint).
    info : mapping, optional
        More to record in the checkpoint: ``excluded_stimuli``, ``training`` (datasets,
        subjects, stimulus counts, spec)...
    quiet : bool, default=True
        No progress report.
    console : rich Console, optional
        Where progress goes (stderr by default).

    Returns
    -------
    network : BraInCoRLNetwork
        The trained network, in eval mode.
    history : History
        Training loss of every step and the validation curve.

    Raises
    ------
    ParameterError
        Before any step, for a stage without sampler, too few images for a stage's
        context, embeddings of another dimension, or a training state that does not match.
    """
    from conform_core.progress import progress

    settings = TrainSettings() if settings is None else settings
    stages = list(stages)
    device = resolve_device(settings.device)
    out_path = None if out is None else Path(out)
    if resume and out_path is None:
        raise ParameterError(param="resume", value=True, owner="meta_train",
                             allowed="False without an out folder",
                             fix="Pass out=FOLDER, the folder of the run to resume.")
    total = sum(s.steps for s in stages)
    if stop_after is not None and not 0 <= stop_after <= total:
        raise ParameterError(param="stop_after", value=stop_after, owner="meta_train",
                             allowed=f"an int in [0, {total}] (the curriculum's steps)",
                             fix="Use None to train through every stage.")
    end = total if stop_after is None else stop_after
    info = dict(info or {})
    ends = np.cumsum([s.steps for s in stages])
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch_threads(settings.threads), torch.random.fork_rng(devices=devices):
        torch.manual_seed(settings.seed)
        if isinstance(network, BraInCoRLConfig):
            network = BraInCoRLNetwork(network)
        config = network.config
        _check(network, stages, samplers, settings, validation)
        fingerprint = _fingerprint(config, stages, settings, samplers)
        network.to(device).train()
        optimizer = torch.optim.AdamW(network.parameters(), lr=settings.lr,
                                      weight_decay=settings.weight_decay)
        history = History(total_steps=total)
        if resume:
            assert out_path is not None
            state = _load_state(out_path / STATE_FILE, fingerprint)
            network.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history = History.from_dict(state["history"])
            torch.set_rng_state(state["rng"]["torch"])
            if device.type == "cuda" and "cuda" in state["rng"]:
                torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        elif validation is not None:
            history.validation.append({"step": 0, "stage": stages[0].name,
                                       **evaluate(network, validation, device=device)})

        def save() -> None:
            if out_path is not None:
                _save(out_path, network, optimizer, history, fingerprint, device,
                      feature_space, info, stages, settings, samplers)

        chunk = max(1, math.ceil(total / 20))
        started = time.perf_counter()
        seconds_before = history.seconds
        smoothed = float("nan")
        with progress("conform braincorl train", total=total, quiet=quiet,
                      console=console) as tick:
            if history.step:
                tick("resumed", advance=history.step)
            for step in range(history.step, end):
                s = int(np.searchsorted(ends, step, side="right"))
                stage = stages[s]
                batch = draw_batch(samplers[stage.source], seed=settings.seed, stage=s,
                                   step=step - int(ends[s] - stage.steps),
                                   n_tasks=settings.batch_voxels, context=stage.context,
                                   n_query=settings.n_query)
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step, total, settings.lr, settings.min_lr)
                cx, cy, qx, qy = batch.to_torch(device)
                optimizer.zero_grad(set_to_none=True)
                with _autocast(device):
                    predicted = network.predict(network(cx, cy), qx)
                loss = torch.mean((predicted.float() - qy) ** 2)
                loss.backward()
                if settings.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(network.parameters(), settings.grad_clip)
                optimizer.step()
                value = float(loss.detach())
                smoothed = value if smoothed != smoothed else 0.9 * smoothed + 0.1 * value
                history.step = step + 1
                history.train.append([step + 1, value])
                if validation is not None and (history.step % settings.validate_every == 0
                                               or history.step == total):
                    history.validation.append({"step": history.step, "stage": stage.name,
                                               **evaluate(network, validation, device=device)})
                history.seconds = seconds_before + time.perf_counter() - started
                if history.step % settings.checkpoint_every == 0 or history.step == end:
                    save()
                if history.step % chunk == 0 or history.step == end:
                    last = history.validation[-1] if history.validation else None
                    shown = f", validation r {last['pearson_r']:.3f}" if last else ""
                    tick(f"{stage.name}: loss {smoothed:.4g}{shown}",
                         advance=history.step - tick.done)
    network.eval()
    return network, history
