"""`conform registry study ...`, `protocol request` and `coverage`: the study loop's commands.

A curator creates a study from a pool (the embeddings and ids `conform design` takes);
a site asks for a protocol with the participants and session length it can offer and gets
the package in a folder (`conform design check` accepts it); anyone reads the coverage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.spec import parse_value

from ._cli_client import JsonOpt, _client
from ._cli_output import CliProgress, echo_json, help_text, interrupt_outcome, note

__all__ = ["register_study_commands"]

Opt = typer.Option
Arg = typer.Argument

study_app = typer.Typer(help="Studies: a design pool whose protocols sites request "
                             "(create, list, show).", no_args_is_help=True)
protocol_app = typer.Typer(help="Protocol packages of a study (request).", no_args_is_help=True)


def _design_params(items: list[str] | None, config: Path | None) -> dict[str, Any]:
    """Return the design parameters: defaults, then --config (TOML), then --design KEY=VALUE."""
    from stimulus_design import DesignParams
    from stimulus_design._cli import merge_settings

    given: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in DesignParams.names():
            raise ParameterError(param="design", value=item, owner="conform registry study create",
                                 allowed="KEY=VALUE with KEY one of " + ", ".join(DesignParams.names()),
                                 fix="e.g. --design core=200 --design overlap=3 (the flags of "
                                     "`conform design`, without the dashes).")
        given[key] = parse_value(value)
    settings = merge_settings(given, config)
    return {k: settings[k] for k in DesignParams.names()}


def _read_pool(embeddings: Path, ids: Path) -> tuple[np.ndarray, list[str]]:
    for path in (embeddings, ids):
        if not path.is_file():
            raise DataFileError(f"{str(path)!r} does not exist.")
    try:
        x = np.load(embeddings, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataFileError(f"{str(embeddings)!r} is not a .npy array ({exc}). Save the "
                            "embeddings with numpy.save.") from None
    names = [line.strip() for line in ids.read_text(encoding="utf-8").splitlines() if line.strip()]
    if x.ndim != 2 or x.shape[0] != len(names):
        raise DataFileError(f"{str(embeddings)!r} has shape {x.shape} but {str(ids)!r} lists "
                            f"{len(names)} ids: give one id per row.")
    return x, names


def _read_images(path: Path | None) -> list[dict[str, str]] | None:
    if path is None:
        return None
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t" if path.suffix != ".csv" else ","))
    if not rows or "source" not in rows[0]:
        raise DataFileError(f"{str(path)!r} needs a 'source' column (and optionally 'sha256'), "
                            "one row per pool image in the order of --ids.")
    return [{"source": r["source"], "sha256": r.get("sha256") or "n/a"} for r in rows]


def study_create(
    name: Annotated[str, Arg(help="The study's name, e.g. vision-1 (its catalog: NAME-catalog).")],
    embeddings: Annotated[Path, Opt(help="The pool's embeddings: FILE.npy, one row per image.")],
    ids: Annotated[Path, Opt(help="Text file: one stimulus id per row of --embeddings.")],
    images: Annotated[Path | None, Opt(help="TSV/CSV with 'source' (path or URL of each image, "
                                            "as sites' stimulus computers use it) and 'sha256', "
                                            "in the order of --ids.")] = None,
    design: Annotated[list[str] | None, Opt("--design", metavar="KEY=VALUE",
                                            help="A `conform design` parameter, e.g. core=200, "
                                                 "overlap=3, repeats=2, sessions=2 (repeatable).")
                      ] = None,
    config: Annotated[Path | None, Opt(help="TOML of `conform design` parameters (the file "
                                            "`conform design --config` reads); --design wins.")
                      ] = None,
    description: Annotated[str, Opt(help="Shown on the study's page.")] = "",
    as_json: JsonOpt = False,
) -> None:
    r"""Create a study from a pool of images (a curator's token). Sites then request protocols.

    The registry picks the shared core as `conform design` would for the same pool and
    seed, and keeps the allocation state. Nothing is allocated until a site asks.

    For example:

      conform registry study create vision-1 --embeddings clip.npy --ids ids.txt \
        --design core=200 --design overlap=3 --design sessions=2
    """
    params = _design_params(design, config)
    x, names = _read_pool(embeddings, ids)
    refs = _read_images(images)
    with _client() as client:
        study = client.create_study(name, x, names, params=params, images=refs,
                                    description=description)
    if as_json:
        echo_json(study)
        return
    print(f"Study {study['name']!r}: {study['n_pool']} images, core of {len(study['core'])}, "
          f"catalog {study['catalog']!r}. Sites ask for protocols with "
          f"`conform registry protocol request {study['name']} --participants N "
          "--session-minutes M --out DIR`.", flush=True)


def study_list(as_json: JsonOpt = False) -> None:
    """List the studies: pool size, participants allocated and collected, catalog version."""
    with _client() as client:
        studies = client.list_studies()
    if as_json:
        echo_json({"studies": studies})
        return
    for s in studies:
        p = s["participants"]
        print(f"{s['name']:<24} {s['n_pool']:>7} images  {p['allocated']:>4} allocated  "
              f"{p['collected']:>4} collected  {s['requests']:>3} requests  catalog "
              f"{s['catalog']}@{s['catalog_version'] or '-'}", flush=True)
    if not studies:
        note("No studies yet (a curator creates one with `conform registry study create`).")


def study_show(name: Annotated[str, Arg(help="The study.")], as_json: JsonOpt = False) -> None:
    """Show a study: its design, datasets and every protocol request."""
    with _client() as client:
        study = client.get_study(name)
    if as_json:
        echo_json(study)
        return
    p = study["participants"]
    print(f"{study['name']}: {study['n_pool']} images, core {len(study['core'])}, "
          f"{p['allocated']} allocated, {p['collected']} collected, {p['released']} released; "
          f"catalog {study['catalog']}@{study['catalog_version'] or '-'}", flush=True)
    for r in study["requests_list"]:
        print(f"  request {r['request']:>3}  site {r['site']:<12} {r['n_participants']} x "
              f"{r['session_minutes']:g} min  {', '.join(r['participants'])}  -> {r['dataset']}",
              flush=True)


def protocol_request(
    study: Annotated[str, Arg(help="The study.")],
    participants: Annotated[int, Opt(help="New participants your site will scan.")],
    session_minutes: Annotated[float, Opt(help="Scanning minutes you can offer per session.")],
    out: Annotated[Path, Opt(help="Folder to write the package to (must not exist).")],
    as_json: JsonOpt = False,
) -> None:
    r"""Ask the study for a protocol for your site's next participants; download the package.

    The registry allocates images to the new participants (the shared core, then images
    that extend coverage and meet the overlap target, never an image beyond its quota),
    writes and checks the package, publishes it as STUDY-protocol-N@1, and this command
    pulls it into --out, every file checked against its sha256 (`conform design check
    OUT` accepts it). Upload what you collect with `conform registry submit ... --study
    STUDY --protocol STUDY-protocol-N@1`.

    For example:

      conform registry protocol request vision-1 --participants 4 --session-minutes 60 \
        --out protocol-cam
    """
    if out.exists():
        raise ParameterError(f"--out {str(out)!r} exists. Give a new folder for the package.")
    with _client() as client:
        done = client.request_protocol(study, participants, session_minutes)
        with interrupt_outcome(f"the protocol {done['dataset']}@{done['version']} is allocated to "
                               "you; pull it with `conform registry pull "
                               f"{done['dataset']}@{done['version']} --out {out}`"), \
                CliProgress("conform registry protocol request") as progress:
            pulled = client.pull(done["dataset"], done["version"], out, progress=progress)
    done["out"], done["verified"] = str(out), len(pulled.files)
    if as_json:
        echo_json(done)
        return
    print(f"Request {done['request']} of {study!r}: participants {', '.join(done['participants'])} "
          f"of site {done['site']!r}; package {done['dataset']}@{done['version']} in {out} "
          f"({len(pulled.files)} files verified).", flush=True)
    note(f"Upload the data with: conform registry submit DATASET FILES --create --study {study} "
         f"--protocol {done['dataset']}@{done['version']}")


def coverage_command(
    study: Annotated[str, Arg(help="The study.")],
    as_json: JsonOpt = False,
) -> None:
    """Show how well the study's images cover the pool: allocated and collected.

    The covering radius is the largest distance (Euclidean, between L2-normalised embeddings,
    so sqrt(2 - 2 cos)) from any pool image to its nearest image in the set: it shrinks as the
    set covers the space. The study's web page (/studies/STUDY) draws it. With --json: every
    count, including images by participants and presentations.

    For example:

      conform registry coverage vision-1 --json
    """
    with _client() as client:
        found = client.study_coverage(study, table=as_json)
    if as_json:
        echo_json(found)
        return

    def num(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}"

    print(f"{study}: {found['n_pool']} pool images", flush=True)
    print(f"{'':<10} {'images':>7} {'participants':>12} {'radius':>8} {'p95':>8} {'median':>8}")
    for which in ("allocated", "collected"):
        part = found[which]
        print(f"{which:<10} {part['n_images']:>7} {part['n_participants']:>12} "
              f"{num(part['radius']):>8} {num(part['p95']):>8} {num(part['median']):>8}")
    by = found["collected"]["by_participants"]
    if by:
        print("collected images by participants: " + ", ".join(f"{k}: {v}" for k, v in by.items()))


def register_study_commands(app: typer.Typer) -> None:
    """Add ``study``, ``protocol`` and ``coverage`` to ``app``."""
    for name, func in (("create", study_create), ("list", study_list), ("show", study_show)):
        study_app.command(name, help=help_text(func.__doc__))(func)
    protocol_app.command("request", help=help_text(protocol_request.__doc__))(protocol_request)
    app.add_typer(study_app, name="study")
    app.add_typer(protocol_app, name="protocol")
    app.command("coverage", help=help_text(coverage_command.__doc__))(coverage_command)
