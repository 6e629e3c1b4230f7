"""``conform simulate``: write a synthetic study with ground truth to a folder.

The command's options are derived from the fields of :class:`SimulationParams`: one option
per setting, named by :data:`FLAGS` (the field name without ``n_``, dashed), with the
field's default and help text. A setting added to ``SimulationParams`` appears here, in
``simulate_study`` and in the ``synthetic`` dataset at once.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from conform_core.cli import flag_table, parameter_flags
from conform_core.exceptions import ParameterError

from ._params import SimulationParams

__all__ = ["FLAGS", "simulate"]

#: Every SimulationParams field and its flag: how `conform simulate` spells each setting,
#: including in the messages of the simulator's parameter errors.
FLAGS = flag_table(SimulationParams.names(), drop_prefix="n_")


def _simulate(out: Path, layout: str = "conform", quiet: bool = False, **settings: Any) -> None:
    """Simulate a multi-subject study with known ground truth and write it to OUT.

    Writes (the format is described in docs/formats.md):

    - OUT/study.json: format, version, parameters, subjects, split
    - OUT/dataset_description.json, OUT/stimuli.tsv
    - OUT/stimuli_embeddings.npy (features), OUT/stimuli_latent.npy
    - OUT/sub-XX/sub-XX_trials.npz: betas, stimulus ids, sessions, runs, split, ground truth
    - with --timeseries: OUT/sub-XX/func/sub-XX_task-conform_run-YY_bold.nii.gz,
      _bold.json and _events.tsv, and OUT/sub-XX/sub-XX_runs.tsv

    The folder is built under a temporary name and renamed into place.
    An existing OUT is never overwritten.
    The options are the simulator's settings, with the defaults of simulate_study.
    Read it back with the `synthetic-folder` dataset: `conform data info synthetic-folder OUT`.

    With --layout fmriprep (needs --timeseries), OUT is instead a BIDS raw tree with
    fMRIPrep-style derivatives (preprocessed volumes and brain masks, fsaverage5 surfaces,
    confounds), the stimuli as images with their embeddings, and derivatives/ground-truth:
    read it with the `bids` dataset: `conform data info bids OUT`.
    """
    from ._writer import write_study

    if out.exists():
        raise ParameterError(
            f"Output folder {str(out)!r} already exists. Choose another OUT folder, or remove it "
            "first; conform simulate never overwrites a folder."
        )
    params = SimulationParams(**settings)  # its errors are printed with the flags of FLAGS
    write_study(out, params, progress=not quiet and params.n_subjects > 1, layout=layout)
    what = (" (BIDS with fMRIPrep-style derivatives)" if layout == "fmriprep"
            else " (with NIfTI runs)" if params.timeseries else "")
    typer.echo(f"Wrote a synthetic study of {params.n_subjects} subject(s) to {out}{what}.")


def _command_parameters() -> list[inspect.Parameter]:
    """OUT, one option per SimulationParams field (default and help from it), --layout, --quiet."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    out = inspect.Parameter("out", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
        Path, typer.Argument(help="Folder to create (must not exist yet).")])
    settings = [
        parameter.replace(annotation=Annotated[parameter.annotation, typer.Option(
            FLAGS[parameter.name], help=SimulationParams.help(parameter.name))])
        for parameter in SimulationParams.signature_parameters()]
    layout = inspect.Parameter("layout", keyword, default="conform", annotation=Annotated[
        str, typer.Option("--layout", help="conform: the folder format of synthetic-folder; "
                          "fmriprep: a BIDS tree with fMRIPrep-style derivatives, for the bids "
                          "dataset (needs --timeseries).")])
    quiet = inspect.Parameter("quiet", keyword, default=False, annotation=Annotated[
        bool, typer.Option("--quiet", help="No progress bar.")])
    return [out, *settings, layout, quiet]


_simulate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    _command_parameters(), return_annotation=None)
_simulate.__annotations__ = {p.name: p.annotation
                             for p in _simulate.__signature__.parameters.values()}  # type: ignore[attr-defined]

#: The ``conform simulate`` command (added to the root app by ``conform_register_commands``).
simulate = parameter_flags({**FLAGS, "layout": "--layout"})(_simulate)
