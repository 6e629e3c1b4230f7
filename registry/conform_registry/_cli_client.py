"""The client commands of ``conform registry``: login, submit, status, list, pull, publish.

Each builds a :class:`~conform_registry._client.RegistryClient` from the settings
(:mod:`._settings`: ``$CONFORM_REGISTRY_URL``/``_TOKEN``, else the file ``login`` wrote) and
lets :class:`~conform_registry._client.RegistryClientError` (a ConformError) reach
:func:`conform_core.cli.run_app`, which prints the server's message and fix and exits 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conform_core.cli import print_error
from conform_core.exceptions import DataFileError, ParameterError

from ._cli_output import (
    CliProgress,
    echo_json,
    help_text,
    human_bytes,
    interrupt_outcome,
    job_lines,
    note,
)
from ._client_types import RegistryClientError
from ._settings import TOKEN_ENV, URL_ENV, load_settings, save_settings

if TYPE_CHECKING:  # httpx is imported only when a command talks to a server
    from ._client import RegistryClient

__all__ = ["register_client_commands"]

Opt = typer.Option
Arg = typer.Argument
JsonOpt = Annotated[bool, Opt("--json", help="Print the result as JSON on stdout (progress and "
                                             "notes stay on stderr).")]
_KINDS = ("mosaic", "protocol", "bids", "other")


def _client() -> RegistryClient:
    from ._client import RegistryClient

    settings = load_settings()
    if settings.warning:
        print_error(settings.warning, warning=True)
    return RegistryClient(settings.url, settings.token)


def _ref(text: str) -> tuple[str, str]:
    name, at, version = text.partition("@")
    version = version or "latest"
    if not name or not (version in ("latest", "draft") or (version.isdigit() and int(version) > 0)):
        raise ParameterError(f"{text!r} is not DATASET or DATASET@VERSION. Give e.g. cam-mosaic, "
                             "cam-mosaic@2, cam-mosaic@latest or cam-mosaic@draft.")
    return name, version


def login(
    url: Annotated[str | None, Opt(help=f"The registry's URL. Default: ${URL_ENV}, the saved one, "
                                        "else http://127.0.0.1:8765.")] = None,
    token: Annotated[str | None, Opt(help=f"The token a curator gave you. Default: ${TOKEN_ENV}, "
                                          "else asked for (hidden), which keeps it out of your "
                                          "shell history.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a token against the registry and save the URL and token for the other commands.

    Writes ~/.config/conform/registry.toml ($XDG_CONFIG_HOME/conform/registry.toml),
    readable by you only (mode 0600), replaced atomically; nothing is saved if the server
    refuses the token. $CONFORM_REGISTRY_URL and $CONFORM_REGISTRY_TOKEN, when set, win
    over the saved values.

    For example:

      conform registry login --url https://registry.example.org

      echo "$TOKEN" | conform registry login --url http://127.0.0.1:8765
    """
    current = load_settings(url=url)
    if not token:
        token = os.environ.get(TOKEN_ENV) or typer.prompt("Registry token", hide_input=True)
    token = token.strip()
    if not token:
        raise ParameterError("No token given. Pass --token, or paste the token "
                             "`conform registry token create` printed.")
    from ._client import RegistryClient

    with RegistryClient(current.url, token) as client:
        me = client.me()
    path = save_settings(current.url, token, path=current.path)
    if as_json:
        echo_json({"url": current.url, "site": me["site"], "role": me["role"], "saved": str(path)})
    else:
        print(f"Logged in to {current.url} as site {me['site']!r} ({me['role']}); saved to {path} "
              "(readable by you only).", flush=True)
    if os.environ.get(URL_ENV) and current.url_from == "argument":
        print_error(f"${URL_ENV} is set: it wins over the URL saved here. Unset it to use the "
                    "saved one.", warning=True)


def _local_check(paths: list[Path], kind: str | None, client: RegistryClient) -> dict[str, Any]:
    """Run the registry's validator here (advisory); return its findings."""
    from ._validators import validate_files, validator_version

    errors, warnings = [], []
    for path in paths:
        report = validate_files(path, kind=kind)
        errors += [i.to_dict() for i in report.errors]
        warnings += [i.to_dict() for i in report.warnings]
    ours, theirs = validator_version(), client.health().get("validator_version")
    found = {"validator_version": ours, "server_validator_version": theirs,
             "errors": errors, "warnings": warnings}
    if theirs and theirs != ours:
        print_error(f"Your validator ({ours}) differs from the server's ({theirs}): the server's "
                    "job decides. Install the server's conform-fmri version to check the same "
                    "way here.", warning=True)
    if errors or warnings:
        note(f"Checked here before upload (advisory; the server's job decides): {len(errors)} "
             f"error(s), {len(warnings)} warning(s).")
        for line in job_lines({"id": "(local)", "state": "checked",
                               "report": {**found, "kind": kind or "detected"}})[1:]:
            note(line)
    return found


def submit(
    dataset: Annotated[str, Arg(help="The dataset to upload into (its draft).")],
    paths: Annotated[list[Path], Arg(help="Files (uploaded under their name) and folders (their "
                                          "files, under their path inside the folder).")],
    to: Annotated[str, Opt("--to", metavar="FOLDER", help="Folder in the dataset to upload "
                                                          "into (default: its top).")] = "",
    create: Annotated[bool, Opt("--create", help="Create the dataset first (if it exists and "
                                                 "is your site's, upload into it).")] = False,
    kind: Annotated[str | None, Opt(help="mosaic, protocol, bids or other, for --create and the "
                                         "check here. Default: detected.")] = None,
    protocol: Annotated[str | None, Opt(metavar="NAME@VERSION", help=(
        "With --create: the published protocol package the site ran; the server checks the "
        "uploaded events against it."))] = None,
    study: Annotated[str | None, Opt(metavar="STUDY", help=(
        "With --create: the study this dataset contributes to; once a curator publishes it, "
        "it joins the study's catalog and coverage."))] = None,
    check: Annotated[bool, Opt("--check/--no-check", help="Run the registry's validator here "
                                                          "before uploading (advisory).")] = True,
    wait: Annotated[bool, Opt("--wait", help="Wait for the validation job; exit 2 if it "
                                             "fails.")] = False,
    timeout: Annotated[float | None, Opt(help="With --wait: most seconds to wait, then exit 2 "
                                              "(the job goes on; default: no limit).")] = None,
    as_json: JsonOpt = False,
) -> None:
    r"""Upload files into a dataset's draft; the server then validates the draft in a job.

    Chunked, checked and resumable: run the same command again after an interruption and
    only what is missing is sent; files already in the draft with the same content are
    skipped. Many small files go up packed in one archive (a warning says when there are
    more than the server's threshold). Prints the validation job's id; --wait follows it.
    Exit 0 when uploaded (with --wait: and validation passed), 2 when refused or (--wait)
    validation failed.

    For example:

      conform registry submit cam-mosaic derivatives/mosaic --create --wait

      conform registry submit cam-protocol ./package --create --kind protocol

      conform registry submit cam-bids sub-01/ --to sub-01 --json

      conform registry submit cam-vision-1 upload/ --create --study vision-1 \
        --protocol vision-1-protocol-3@1 --wait
    """
    for path in paths:
        if not path.exists():
            raise DataFileError(f"{str(path)!r} does not exist. Give files or folders to upload.")
    if kind is not None and kind not in _KINDS:
        raise ParameterError(param="kind", value=kind, owner="conform registry submit",
                             allowed="one of " + ", ".join(_KINDS))
    if (protocol or study) and not create:
        print_error("--protocol and --study are only used with --create (they are set when the "
                    "dataset is created).", warning=True)
    with _client() as client:
        if create:
            _create(client, dataset, kind, protocol, study)
        checked = _local_check(paths, kind, client) if check else None
        label = "conform registry submit"
        try:
            with interrupt_outcome("the draft shows only the files that were complete (the "
                                   "chunks sent are kept); run the same command again to "
                                   "resume"), CliProgress(label) as progress:
                summary = client.upload_tree(dataset, paths, prefix=to, progress=progress)
        except RegistryClientError as exc:
            if exc.code == "dataset.not_found" and not create:
                raise RegistryClientError(exc.status, exc.code, exc.message,
                                          "Create it with --create, or check the name with "
                                          "`conform registry list`.") from None
            raise
        job = summary.job or client.validate(dataset)
        sent = [f for f in summary.files if f.action != "unchanged"]
        if not as_json:
            note(f"{label}: {len(sent)} file(s) uploaded to the draft of {dataset!r} "
                 f"({human_bytes(summary.network_bytes)} sent), "
                 f"{len(summary.files) - len(sent)} unchanged.")
            print(f"Validation job {job['id']} of {dataset!r}: {job['state']}. Follow it with "
                  f"`conform registry status {dataset} --job {job['id']}`.", flush=True)
        if wait:
            job = client.wait_job(job["id"], timeout=timeout,
                                  on_change=lambda j: note(f"validation job {j['id']}: {j['state']}"))
        out = {**summary.to_dict(), "job": job, "local_check": checked}
        if as_json:
            echo_json(out)
        elif wait:
            print("\n".join(job_lines(job)), flush=True)
    if wait and job["state"] != "passed":
        report = job.get("report") or {}
        found = (f"{len(report.get('errors') or [])} error(s)" if report else "it crashed")
        where = "in the JSON's job.report" if as_json else "listed above"
        raise RegistryClientError(None, "validation.failed", f"Validation job {job['id']} of "
                                  f"{dataset!r} failed: {found} ({where}).", "Fix the files and "
                                  "submit them again, or see `conform registry status "
                                  f"{dataset} --job {job['id']}` (with the job's log).")


def _create(client: RegistryClient, dataset: str, kind: str | None, protocol: str | None,
            study: str | None) -> None:
    try:
        made = client.create_dataset(dataset, kind, protocol, study)
        note(f"Created dataset {dataset!r} of site {made['site']!r}.")
    except RegistryClientError as exc:
        if exc.code != "dataset.exists" or "draft" not in client.get_dataset(dataset):
            raise
        note(f"Dataset {dataset!r} exists already; uploading into its draft.")


def status(
    dataset: Annotated[str, Arg(help="The dataset.")],
    job: Annotated[int | None, Opt("--job", metavar="ID", help="Show this job (with its log) "
                                                              "instead of the latest.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset: published versions, its draft, and the latest validation job's findings.

    The draft and its jobs are shown to the dataset's site and to curators. Exit 0 whatever
    the job's state (use `submit --wait` to exit on it).

    For example:

      conform registry status cam-mosaic

      conform registry status cam-mosaic --job 12 --json
    """
    with _client() as client:
        info = client.get_dataset(dataset)
        draft = info.get("draft")
        latest = (draft or {}).get("validation")
        shown = client.get_job(job) if job is not None else (
            client.get_job(latest["id"]) if latest else None)
    if as_json:
        echo_json({"dataset": info, "job": shown})
        return
    versions = ", ".join(map(str, info.get("versions") or [])) or "none"
    print(f"{info['name']} (site {info['site']}, kind {info.get('kind') or 'detected'}, protocol "
          f"{info.get('protocol') or 'none'})")
    print(f"published versions: {versions}")
    if draft is not None:
        print(f"draft: {draft['files']} file(s), {human_bytes(draft['bytes'])}, changed "
              f"{draft.get('changed_at')}")
    if shown is not None:
        print("\n".join(job_lines(shown, log=job is not None)), flush=True)
    elif draft is not None:
        print("validation: no job yet (upload files, or POST .../validate)", flush=True)


def list_command(as_json: JsonOpt = False) -> None:
    """List the datasets you may see: published ones, and your site's drafts (curators: all).

    For example:

      conform registry list

      conform registry list --json
    """
    with _client() as client:
        datasets = client.list_datasets()
    if as_json:
        echo_json({"datasets": datasets})
        return
    if not datasets:
        print("No datasets you can see yet.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("dataset", "site", "kind", "versions", "draft", "validation"):
        table.add_column(column)
    for d in datasets:
        draft, job = d.get("draft"), (d.get("draft") or {}).get("validation")
        table.add_row(d["name"], d["site"], d.get("kind") or "-",
                      ", ".join(map(str, d.get("versions") or [])) or "-",
                      f"{draft['files']} files, {human_bytes(draft['bytes'])}" if draft else "-",
                      f"job {job['id']} {job['state']}" if job else "-")
    Console(highlight=False, soft_wrap=True).print(table, markup=False)


def pull(
    ref: Annotated[str, Arg(metavar="DATASET[@VERSION]", help="The dataset and version: a "
                                                              "number, latest (default) or draft.")],
    out: Annotated[Path | None, Opt(help="Folder to write into (default: ./DATASET-vN).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a version, every file checked against its manifest sha256; resumable.

    Files arrive as PATH.part and are renamed into place once verified, so OUT holds only
    complete, verified files. Run it again after an interruption: verified files are
    skipped and partial ones resumed. Published versions need no token. Exit 0 when every
    file is verified, 2 otherwise.

    For example:

      conform registry pull cam-mosaic

      conform registry pull cam-mosaic@2 --out data/cam-mosaic
    """
    name, version = _ref(ref)
    with _client() as client:
        info = client.get_version(name, version)
        number = info["version"]
        dest = out or Path(f"{name}-v{number}" if number != "draft" else f"{name}-draft")
        with interrupt_outcome(f"the files verified so far are in {str(dest)!r}; run the same "
                               "command again to resume"), \
                CliProgress("conform registry pull") as progress:
            result = client.pull(name, number, dest, progress=progress)
    if as_json:
        echo_json(result.to_dict())
        return
    counts: dict[str, int] = {}
    for f in result.files:
        counts[f.action] = counts.get(f.action, 0) + 1
    done = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no files"
    total = sum(f.size for f in result.files)
    print(f"Pulled {name} version {number} into {dest}: {len(result.files)} file(s), "
          f"{human_bytes(total)} ({done}); manifest sha256 {result.manifest_sha256}.", flush=True)


def publish(
    dataset: Annotated[str, Arg(help="The dataset whose draft to publish.")],
    as_json: JsonOpt = False,
) -> None:
    """Publish the draft as the next immutable version (curators only).

    Refused (exit 2, with the reason) when the draft is empty or unchanged, when a
    validation job is still queued or running, or when the latest job did not pass on the
    draft's current content.

    For example:

      conform registry publish cam-mosaic
    """
    with _client() as client:
        version = client.publish(dataset)
    if as_json:
        echo_json(version)
        return
    files = version.get("files") or []
    print(f"Published {dataset} version {version['version']}: {len(files)} file(s), "
          f"{human_bytes(sum(f['size'] for f in files))}; manifest sha256 "
          f"{version.get('manifest_sha256')}.", flush=True)


def register_client_commands(app: typer.Typer) -> None:
    """Add login, submit, status, list, pull and publish to ``app``."""
    for name, func in (("login", login), ("submit", submit), ("status", status),
                       ("list", list_command), ("pull", pull), ("publish", publish)):
        app.command(name, help=help_text(func.__doc__))(func)
