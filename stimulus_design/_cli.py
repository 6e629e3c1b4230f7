"""``conform design`` and ``conform design check``: flags, TOML config (flags win), output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from conform_core.cli import flag_table, parameter_flags
from conform_core.exceptions import ParameterError
from conform_core.spec import parse_value
from conform_core.validation import suggest

from ._params import DesignParams

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["FLAGS", "design_app", "merge_settings"]

design_app = typer.Typer(
    help="Design a multi-site study: select images that cover embedding space, allocate them "
    "with controlled repeats and overlap, and write one protocol package.",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode="rich",
)

PATH_KEYS = ("images", "list", "embeddings", "ids", "metadata", "out", "weights", "cache_dir")
#: Flags kept from before ``--feature-param``: each sets the features plugin's parameter of
#: the same name (the clip plugin's); their defaults are the plugin's own.
FEATURE_ALIASES = ("model", "weights", "allow_untrained", "batch_size", "device", "cache_dir")
OTHER_DEFAULTS = {
    "images": None,
    "list": None,
    "embeddings": None,
    "ids": None,
    "metadata": None,
    "out": None,
    "overwrite": False,
    "features": "clip",
    "feature_params": {},
}

#: The library parameters `conform design` sets (DesignParams, DesignInputs, run_design and
#: the features plugin's parameters), and their flags: how their errors are shown on this command.
FLAGS = flag_table(
    [
        *DesignParams.names(),
        *FEATURE_ALIASES,
        "images",
        "list_file",
        "embeddings",
        "ids",
        "metadata",
        "out",
        "overwrite",
        "features",
        "feature_params",
    ],
    overrides={"list_file": "--list", "feature_params": "--feature-param"},
)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ParameterError(f"--config {str(path)!r} does not exist.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"--config {str(path)!r} is not valid TOML: {exc}.") from None
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key.replace("-", "_") == "feature_params":  # a table of the plugin's parameters
            if not isinstance(value, dict):
                raise ParameterError(
                    f"--config {str(path)!r}: 'feature_params' must be a table "
                    "([feature_params] with the plugin's parameters)."
                )
            flat["feature_params"] = {k.replace("-", "_"): v for k, v in value.items()}
            continue
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for k, v in items:
            flat[k.replace("-", "_")] = v
    known = set(DesignParams.names()) | set(FEATURE_ALIASES) | set(OTHER_DEFAULTS)
    for key in flat:
        if key not in known:
            raise ParameterError(
                f"--config {str(path)!r}: unknown key {key!r}.{suggest(key, sorted(known))} "
                "Keys are the flag names (dashes or underscores)."
            )
    for key in PATH_KEYS:
        if isinstance(flat.get(key), str) and not Path(flat[key]).is_absolute():
            flat[key] = str(path.parent / flat[key])
    return flat


def merge_settings(flags: dict[str, Any], config: Path | None) -> dict[str, Any]:
    """Built-in defaults, then the TOML config, then the flags that were given (flags win).

    The features plugin's parameters end up in ``feature_params``: the config's
    ``[feature_params]`` table and alias keys (``model``, ...), then the flags' ones.
    """
    settings: dict[str, Any] = {**DesignParams().to_dict(), **OTHER_DEFAULTS}
    params: dict[str, Any] = {}
    for source in ([_read_config(config)] if config is not None else []) + [flags]:
        given = {k: v for k, v in source.items() if v is not None}
        params.update(given.pop("feature_params", None) or {})
        params.update({k: given.pop(k) for k in FEATURE_ALIASES if k in given})
        settings.update(given)
    settings["feature_params"] = params
    return settings


def parse_feature_params(items: list[str] | None) -> dict[str, Any]:
    """Read ``KEY=VALUE`` items (values as TOML, like ``conform fit --set``) into a dict."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(
                param="feature_params",
                value=item,
                owner="conform design",
                allowed="KEY=VALUE (a parameter of the features plugin)",
                fix="e.g. batch_size=32; `conform plugins --kind features` lists the plugins.",
            )
        params[key.strip().replace("-", "_")] = parse_value(value)
    return params


def _path(value: Any) -> Path | None:
    return None if value in (None, "") else Path(value)


Opt = typer.Option


@design_app.callback()
@parameter_flags(FLAGS)
def design(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        Opt(
            help="TOML file with any of these options (keys = flag names); flags given on the command line win."
        ),
    ] = None,
    images: Annotated[
        Path | None,
        Opt(
            help="Folder of candidate images (searched recursively); embedded with the --features plugin."
        ),
    ] = None,
    list_file: Annotated[
        Path | None,
        Opt(
            "--list",
            help=(
                "List file of image paths (.txt one per line, or .csv/.tsv with a 'path' column and "
                "optional 'category', 'exclude')."
            ),
        ),
    ] = None,
    embeddings: Annotated[
        Path | None,
        Opt(
            help=(
                "Precomputed embeddings: FILE.npy (rows = images, with --ids) or FILE.parquet ('id' + "
                "'embedding' columns)."
            )
        ),
    ] = None,
    ids: Annotated[
        Path | None, Opt(help="Text file with one stimulus id per row of --embeddings FILE.npy.")
    ] = None,
    metadata: Annotated[
        Path | None,
        Opt(
            help=(
                "CSV/TSV/Parquet with 'id' and optional 'category' (for --stratify), 'exclude' (1/true: "
                "never use), 'source', 'sha256'."
            )
        ),
    ] = None,
    sites: Annotated[int | None, Opt(help="Number of sites. Default 1.")] = None,
    participants_per_site: Annotated[
        int | None, Opt(help="Participants at each site. Default 4.")
    ] = None,
    core: Annotated[
        int | None, Opt(help="Images every participant sees (the shared core). Default 200.")
    ] = None,
    per_participant: Annotated[
        int | None, Opt(help="Distinct images per participant, core included. Default 1000.")
    ] = None,
    overlap: Annotated[
        int | None, Opt(help="Participants who see each non-core image (K). Default 2.")
    ] = None,
    core_repeats: Annotated[
        int | None, Opt(help="Presentations of each core image per participant. Default 3.")
    ] = None,
    repeats: Annotated[
        int | None, Opt(help="Presentations of each non-core image per participant. Default 1.")
    ] = None,
    sessions: Annotated[int | None, Opt(help="Sessions per participant. Default 1.")] = None,
    runs: Annotated[int | None, Opt(help="Runs per session. Default 8.")] = None,
    trials_per_run: Annotated[
        int | None,
        Opt(
            help="Trial slots per run, null trials included. Default: the stimulus trials needed plus --null-trials."
        ),
    ] = None,
    null_trials: Annotated[
        int | None,
        Opt(help="Null (blank) trials per run. Default: 10% of the stimulus trials, at least 2."),
    ] = None,
    stim_duration: Annotated[
        float | None, Opt(help="Seconds each image is shown. Default 3.")
    ] = None,
    iti: Annotated[
        float | None,
        Opt(help="Seconds of blank after each image (one slot = stim-duration + iti). Default 1."),
    ] = None,
    core_sessions: Annotated[
        int | None,
        Opt(
            help="Show the core only in sessions 1..N (front-loaded against drop-out). Default ceil(sessions/3)."
        ),
    ] = None,
    min_session_repeats: Annotated[
        int | None,
        Opt(
            help="Images shown twice within every session, for GLMsingle's cross-validation. Default 5."
        ),
    ] = None,
    allocation: Annotated[
        str | None,
        Opt(
            help=(
                "'overlap' (balanced partial overlap) or 'prototypes' (LAION-fMRI: one near neighbour of "
                "every prototype per participant group). Default overlap."
            )
        ),
    ] = None,
    stratify: Annotated[
        bool | None,
        Opt(
            "--stratify/--no-stratify",
            help="Select within each category in proportion to its size (needs a category column). Default off.",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        Opt(help="Random seed; the same inputs and seed give a byte-identical package. Default 0."),
    ] = None,
    out: Annotated[
        Path | None,
        Opt(help="Folder to write the protocol package to (must not exist unless --overwrite)."),
    ] = None,
    overwrite: Annotated[
        bool | None,
        Opt(
            "--overwrite",
            help="Replace an existing --out folder (only once the new package is complete).",
        ),
    ] = None,
    features: Annotated[
        str | None,
        Opt(
            help="Features plugin that embeds --images/--list (`conform plugins --kind features`). Default clip."
        ),
    ] = None,
    feature_param: Annotated[
        list[str] | None,
        Opt(
            "--feature-param",
            metavar="K=V",
            help=(
                "KEY=VALUE parameter of the --features plugin (repeatable; values read as TOML, like "
                "`conform fit --set`), e.g. batch_size=32. Its defaults are the plugin's."
            ),
        ),
    ] = None,
    model: Annotated[
        str | None,
        Opt(
            help="Same as --feature-param model=NAME (clip: open_clip model name or model-config .json)."
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        Opt(
            help="Same as --feature-param weights=FILE (clip: local checkpoint; nothing is ever downloaded)."
        ),
    ] = None,
    allow_untrained: Annotated[
        bool | None,
        Opt(
            "--allow-untrained",
            help="Same as --feature-param allow_untrained=true (clip: random model, for tests only).",
        ),
    ] = None,
    batch_size: Annotated[int | None, Opt(help="Same as --feature-param batch_size=N.")] = None,
    device: Annotated[
        str | None, Opt(help="Same as --feature-param device=NAME ('auto', 'cpu', 'cuda[:N]').")
    ] = None,
    cache_dir: Annotated[
        Path | None, Opt(help="Same as --feature-param cache_dir=DIR (the embedding cache folder).")
    ] = None,
) -> None:
    """Design the study and write the protocol package to --out.

    Writes OUT/design.json, stimuli.tsv, coverage.json, coverage.png, README.md, SHA256SUMS,
    and per site OUT/site-XX/README.md plus, per participant, session and run,
    OUT/site-XX/sub-YY/ses-ZZ/sub-YY_ses-ZZ_task-conform_run-WW_events.tsv and a PsychoPy
    ..._conditions.csv. Impossible designs are rejected before anything is written.
    """
    if ctx.invoked_subcommand is not None:
        return
    flags = {
        k: v
        for k, v in locals().items()
        if k not in ("ctx", "config", "list_file", "feature_param")
    }
    flags["list"] = list_file
    flags["feature_params"] = parse_feature_params(feature_param)
    s = merge_settings(
        {k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items()}, config
    )
    if not s["out"]:
        raise ParameterError("--out DIR is required: the folder to write the package to.")
    from ._design import DesignInputs, run_design

    params = DesignParams(**{k: s[k] for k in DesignParams.names()})
    inputs = DesignInputs(
        images=_path(s["images"]),
        list_file=_path(s["list"]),
        embeddings=_path(s["embeddings"]),
        ids=_path(s["ids"]),
        metadata=_path(s["metadata"]),
        features=str(s["features"]),
        feature_params=s["feature_params"],
    )
    result = run_design(params, inputs, s["out"], overwrite=bool(s["overwrite"]))
    _report(result, Path(s["out"]))


def _report(design: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    inputs, cov = design["inputs"], design["coverage"]
    for bad in inputs.get("unreadable", []):  # file names and reasons are text, not markup
        console.print(
            f"[yellow]Skipped unreadable image[/] {escape(str(bad['file']))}: "
            f"{escape(str(bad['reason']))}"
        )
    if inputs.get("duplicates"):
        console.print(
            f"[yellow]{len(inputs['duplicates'])} duplicate file(s) (same SHA-256) "
            "counted once[/]; see design.json."
        )
    sel, rnd = cov["selected"], cov["random"]
    console.print(
        f"Selected {cov['n_selected']} of {cov['n_pool']} images. Covering radius "
        f"{sel['radius']:.4f} vs random {rnd['radius']:.4f} (p95 {sel['p95']:.4f} vs "
        f"{rnd['p95']:.4f}; mean {sel['mean']:.4f} vs {rnd['mean']:.4f}); Vendi "
        f"{sel['vendi']:.1f} vs {rnd['vendi']:.1f}."
    )
    console.print(f"Wrote the protocol package to {escape(str(out))}")


@design_app.command("check")
def check(
    package: Annotated[
        Path, typer.Argument(help="Protocol package folder written by `conform design`.")
    ],
    images: Annotated[
        Path | None,
        Opt(
            help="Also verify every image's SHA-256 against stimuli.tsv, reading it from this folder."
        ),
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the violations as a JSON list.")] = False,
) -> None:
    """Re-validate a protocol package: counts, repeats, overlap, schedule rules, checksums.

    Writes nothing. Prints every violation and exits with status 2 if there is any.
    """
    from ._check import check_package
    from ._design import DesignCheckError

    problems = check_package(package, images=images)
    if as_json:
        typer.echo(json.dumps(problems, indent=2))
    else:
        for problem in problems:
            typer.echo(f"- {problem}")
    if problems:
        raise DesignCheckError(
            f"{package}: {len(problems)} violation(s) (listed above). "
            "Regenerate the package with `conform design`, or restore the "
            "changed files."
        )
    if not as_json:
        typer.echo(f"{package}: OK, no violations.")
