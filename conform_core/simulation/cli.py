"""``conform simulate``: write a synthetic study with ground truth to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli import flag_table, parameter_flags
from ..exceptions import ParameterError

__all__ = ["FLAGS", "simulate"]

#: The SimulationParams fields `conform simulate` sets, and their flags (the field name
#: without ``n_``, dashed): how a parameter error of the simulator is shown on this command.
FLAGS = flag_table(("n_subjects", "n_units", "n_stimuli", "n_repeats", "snr", "n_shared",
                    "stimuli_per_subject", "test_fraction", "missing_fraction", "n_features",
                    "individual_differences", "timeseries", "tr", "random_state"),
                   drop_prefix="n_")


@parameter_flags(FLAGS)
def simulate(
    out: Annotated[Path, typer.Argument(help="Folder to create (must not exist yet).")],
    subjects: Annotated[int, typer.Option(
        "--subjects", help="Number of subjects.")] = 4,
    units: Annotated[int, typer.Option(
        "--units", help="Units (voxels) per subject, laid on a 2-D grid.")] = 100,
    stimuli: Annotated[int, typer.Option(
        "--stimuli", help="Stimuli in the study.")] = 120,
    repeats: Annotated[int, typer.Option(
        "--repeats", help="Trials per stimulus and subject.")] = 3,
    snr: Annotated[float, typer.Option(
        "--snr", help="Median single-trial signal sd / noise sd over units.")] = 1.0,
    shared: Annotated[Optional[int], typer.Option(
        "--shared", help="Stimuli seen by every subject (default: a third of --stimuli).")] = None,
    stimuli_per_subject: Annotated[Optional[int], typer.Option(
        "--stimuli-per-subject",
        help="Stimuli per subject beyond the shared ones (default: all the others).")] = None,
    test_fraction: Annotated[float, typer.Option(
        "--test-fraction",
        help="Share of stimuli held out for testing (shared ones first).")] = 0.2,
    missing_fraction: Annotated[float, typer.Option(
        "--missing-fraction", help="Share of trials dropped at random.")] = 0.0,
    features: Annotated[int, typer.Option(
        "--features", help="Length of each stimulus feature vector.")] = 64,
    individual_differences: Annotated[float, typer.Option(
        "--individual-differences",
        help="0: all subjects share one tuning; 1: unrelated tunings.")] = 0.3,
    timeseries: Annotated[bool, typer.Option(
        "--timeseries",
        help="Also write BIDS-style NIfTI runs and events.tsv files (for GLMsingle).")] = False,
    tr: Annotated[float, typer.Option(
        "--tr", help="Repetition time in seconds (with --timeseries).")] = 1.0,
    random_state: Annotated[int, typer.Option(
        "--random-state", help="Seed; the same seed writes the same study.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
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
    Read it back with the `synthetic` dataset: `conform data info synthetic OUT`.
    """
    from ._params import SimulationParams
    from ._writer import write_study

    if out.exists():
        raise ParameterError(
            f"Output folder {str(out)!r} already exists. Choose another OUT folder, or remove it "
            "first; conform simulate never overwrites a folder."
        )
    # simulate_study's own checks; run_app prints their errors with the flags of FLAGS
    params = SimulationParams.from_kwargs(
        n_subjects=subjects, n_units=units, n_stimuli=stimuli, n_repeats=repeats, snr=snr,
        n_shared=shared, stimuli_per_subject=stimuli_per_subject,
        test_fraction=test_fraction, missing_fraction=missing_fraction, n_features=features,
        n_latent=max(1, min(8, features)), individual_differences=individual_differences,
        timeseries=timeseries, tr=tr, random_state=random_state,
    )
    write_study(out, params, progress=not quiet and subjects > 1)
    typer.echo(f"Wrote a synthetic study of {subjects} subject(s) to {out}"
               f"{' (with NIfTI runs)' if timeseries else ''}.")
