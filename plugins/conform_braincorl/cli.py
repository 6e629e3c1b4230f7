"""``conform braincorl``: meta-train a BraInCoRL model, or import official weights.

:data:`braincorl_app` is a typer group; the plugin adds it to the root command as
``conform braincorl`` (``app.add_typer(braincorl_app, name="braincorl")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conform_core.cli import parameter_flags
from conform_core.exceptions import Interrupted

__all__ = ["braincorl_app", "train", "import_official", "HELP"]

HELP = (
    "BraInCoRL: an in-context encoder that predicts a new person's voxels from a few of their "
    "images, without fine-tuning. `train` meta-trains one on any conform dataset; "
    "`import-official` converts weights of the official implementation you already have. "
    "Use the result in conform fit with "
    'encoder = {plugin = "braincorl", params = {checkpoint = "DIR"}}.'
)

braincorl_app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)


@braincorl_app.command("train")
@parameter_flags({"device": "--device", "threads": "--threads"})
def train(
    spec: Annotated[Path, typer.Argument(
        help="Meta-training spec (TOML): [model] preset, [dataset] (any dataset plugin, with "
             "train_subjects and validation_subjects), features, [training] and the [[stages]] "
             "of the curriculum. Example: examples/braincorl_sim.toml.")],
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for the model (created). It must be empty unless --resume or "
                      "--overwrite.")],
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="Change the data without editing the spec, as in conform fit: "
                      "dataset.PARAM=VALUE, dataset.location=DIR, features=PLUGIN, "
                      "features.PARAM=VALUE. Repeatable; recorded with the model.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the interrupted run in --out from its last training state; "
                         "the result equals an uninterrupted run. Needs the same spec and "
                         "data.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Start again in a non-empty --out: its model files are replaced "
                            "(other files are left alone).")] = False,
    device: Annotated[str | None, typer.Option(
        "--device", help="cpu, cuda or cuda:N (default: [training] device, else cpu). On a GPU "
                         "the forward pass runs in bfloat16 autocast.")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="torch threads (default: [training] threads, else 1; one "
                                 "thread is fastest on a small shared machine).")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="No progress (no bar on a terminal, no step lines on stderr "
                        "otherwise); the summary is still printed.")] = False,
) -> None:
    """Meta-train a BraInCoRL model on the subjects of any dataset.

    Tasks are voxels of the training subjects (and synthetic voxels drawn from a prior
    fitted to them), each with a context of N images and query images drawn from the
    subject's stimuli; every stimulus of a test split is left out (the list is stored with
    the model). The curriculum's stages run in order; the validation subjects' fixed tasks
    are scored along the way.

    Writes OUT/model.safetensors (weights; configuration in the header), OUT/config.json
    (sizes, feature space, excluded stimuli, training data, validation curve),
    OUT/model_card.md, OUT/loss_curve.png and OUT/training_state.pt (for --resume), every
    [training] checkpoint_every steps and at the end; each file is replaced atomically, so
    an interrupted run leaves the previous checkpoint intact. Everything that can be checked
    is checked before training starts (exit 2 with the fix).
    """
    from .spec import train_from_spec
    from .training import STATE_FILE

    try:
        _, history = train_from_spec(spec, out, resume=resume, overwrite=overwrite,
                                     device=device, threads=threads, quiet=quiet,
                                     overrides=sets or [])
    except (KeyboardInterrupt, Interrupted) as exc:
        code = 128 + (exc.signum if isinstance(exc, Interrupted) else 2)
        if (out / STATE_FILE).is_file():
            message = (f"Interrupted. The last checkpoint in {out} is intact; continue with "
                       f"`conform braincorl train {spec} --out {out} --resume`.")
        else:
            message = "Interrupted before the first checkpoint; nothing was written."
        typer.echo(message, err=True)
        raise typer.Exit(code) from None
    last = history.validation[-1] if history.validation else None
    scores = (f"; validation at step {last['step']}: mean r {last['pearson_r']:.3f}, mean EV "
              f"{last['ev']:.3f}" if last else "")
    typer.echo(f"Meta-trained {history.step} steps in {history.seconds:.0f} s{scores}. Wrote "
               f"{out}/model.safetensors, config.json, model_card.md, loss_curve.png and "
               f"training_state.pt.")


@braincorl_app.command("import-official")
@parameter_flags({"preset": "--preset", "feature_space": "--feature-space",
                  "embed_dim": "--embed-dim"})
def import_official(
    path: Annotated[Path, typer.Argument(
        help="Weights saved by the official BraInCoRL code (.pth or Lightning .ckpt) that you "
             "already have; nothing is downloaded.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the converted model (created).")],
    preset: Annotated[str, typer.Option(
        "--preset", help="The published configuration of the weights: clip (512-d CLIP "
                         "ViT-B/32 features), dino (768-d) or siglip (1152-d).")] = "clip",
    feature_space: Annotated[str, typer.Option(
        "--feature-space", help="Id of the embeddings the weights read, as conform's features "
                                "report it, e.g. clip:ViT-B-32:<sha256 of the CLIP weights "
                                "file>. Recorded so the model is never applied to another "
                                "backbone's features; without it only the dimension is "
                                "checked.")] = "",
    embed_dim: Annotated[int | None, typer.Option(
        "--embed-dim", min=1, help="Embedding length, for the tiny and small presets (whose "
                                   "width follows the features); the published presets fix "
                                   "it.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the model files in a non-empty --out.")] = False,
) -> None:
    """Convert official BraInCoRL weights into a conform checkpoint folder.

    The state dict is loaded as it is (the parameter names are the official ones) and its
    shapes are checked against the preset. Writes OUT/model.safetensors, OUT/config.json and
    OUT/model_card.md; use it in conform fit with
    encoder = {plugin = "braincorl", params = {checkpoint = "OUT"}}.
    """
    from ._report import official_card
    from .checkpoint import load_official_checkpoint, save_checkpoint
    from .spec import check_out

    check_out(out, resume=False, overwrite=overwrite)
    sizes = {} if embed_dim is None else {"embed_dim": embed_dim}
    checkpoint = load_official_checkpoint(path, preset, feature_space=feature_space, **sizes)
    save_checkpoint(checkpoint, out, card=official_card(checkpoint.describe(), out))
    if not feature_space:
        typer.echo("Warning: no --feature-space given; the model is checked against features "
                   "by dimension only.", err=True)
    typer.echo(f"Wrote {out}/model.safetensors, config.json and model_card.md ({preset} "
               f"preset, {checkpoint.config.n_parameters():,} parameters).")
