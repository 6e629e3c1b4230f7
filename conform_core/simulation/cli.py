"""``conform simulate``: write a synthetic study with ground truth to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..exceptions import ParameterError

__all__ = ["simulate"]


def _check_count(flag: str, value: int, low: int) -> int:
    if value < low:
        raise ParameterError(
            f"{flag} must be an integer >= {low}; got {value}. Pass {flag} {max(low, 1)} or more."
        )
    return value


def _check_fraction(flag: str, value: float, high: float) -> float:
    if not 0.0 <= value <= high:
        raise ParameterError(
            f"{flag} must be between 0 and {high}; got {value}. Pass e.g. {flag} 0.1."
        )
    return value


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

    _check_count("--subjects", subjects, 1)
    _check_count("--units", units, 1)
    _check_count("--stimuli", stimuli, 2)
    _check_count("--repeats", repeats, 1)
    _check_count("--features", features, 1)
    if snr < 0:
        raise ParameterError(
            f"--snr must be >= 0; got {snr}. Pass e.g. --snr 0.5 for a noisy study."
        )
    n_shared = round(stimuli / 3) if shared is None else _check_count("--shared", shared, 0)
    if n_shared > stimuli:
        raise ParameterError(
            f"--shared must be at most --stimuli ({stimuli}); got {n_shared}. "
            "Lower --shared or raise --stimuli."
        )
    if stimuli_per_subject is not None:
        _check_count("--stimuli-per-subject", stimuli_per_subject, 0)
        if stimuli_per_subject > stimuli - n_shared:
            raise ParameterError(
                f"--stimuli-per-subject must be at most --stimuli minus --shared "
                f"({stimuli} - {n_shared} = {stimuli - n_shared}); got {stimuli_per_subject}. "
                "Lower it, or leave it out to give every subject all stimuli."
            )
    _check_fraction("--test-fraction", test_fraction, 0.9)
    _check_fraction("--missing-fraction", missing_fraction, 0.9)
    _check_fraction("--individual-differences", individual_differences, 1.0)
    if random_state < 0:
        raise ParameterError(
            f"--random-state must be >= 0; got {random_state}. Pass e.g. --random-state 0."
        )
    if out.exists():
        raise ParameterError(
            f"Output folder {str(out)!r} already exists. Choose another OUT folder, or remove it "
            "first; conform simulate never overwrites a folder."
        )
    params = SimulationParams.from_kwargs(
        n_subjects=subjects, n_units=units, n_stimuli=stimuli, n_repeats=repeats, snr=snr,
        n_shared=n_shared, stimuli_per_subject=stimuli_per_subject, test_fraction=test_fraction,
        missing_fraction=missing_fraction, n_features=features, n_latent=min(8, features),
        individual_differences=individual_differences, timeseries=timeseries, tr=tr,
        random_state=random_state,
    )
    write_study(out, params, progress=not quiet and subjects > 1)
    typer.echo(f"Wrote a synthetic study of {subjects} subject(s) to {out}"
               f"{' (with NIfTI runs)' if timeseries else ''}.")
