"""``conform registry ...``: the server and its administration (here) and the client commands.

Server side, run on the registry's machine: ``serve``, ``token create``, ``fsck``. Client
side (:mod:`._cli_client`): ``login``, ``submit``, ``status``, ``list``, ``pull``,
``publish``. Exit codes follow conform's (see ``HELP``): refusals print the server's message
and fix in one line, without a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conform_core.exceptions import ParameterError

from ._cli_client import register_client_commands
from ._cli_output import echo_json, help_text, human_bytes, interrupt_outcome, note
from ._cli_studies import register_study_commands

if TYPE_CHECKING:
    from ._config import RegistryConfig

__all__ = ["HELP", "registry_app"]

HELP = (
    "The CONFORM registry: sites upload what they collected, curators publish versions, "
    "everyone pulls them.\n\n"
    "On the server's machine: `serve`, `token create`, `fsck`. Everywhere else: `login` once, "
    "then `submit`, `status`, `list`, `pull`, `publish`. The client reads the server's URL "
    "and the token from $CONFORM_REGISTRY_URL and $CONFORM_REGISTRY_TOKEN, else from the "
    "file `login` writes (~/.config/conform/registry.toml, readable by you only).\n\n"
    "Exit codes: 0 success; 2 a refused request or a user error (the server's message and "
    "fix, in one line; set CONFORM_DEBUG=1 for a traceback), also `submit --wait` when "
    "validation failed; 3 `fsck` found damaged or missing blobs; 1 a bug; 130 interrupted "
    "(Ctrl-C). An interrupted `submit` or `pull` resumes where it stopped when run again."
)

registry_app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode="rich")
token_app = typer.Typer(help="Manage API tokens (on the server's machine, against its database).",
                        no_args_is_help=True, rich_markup_mode="rich")

Opt = typer.Option
DbOpt = Annotated[str | None, Opt("--db", metavar="URL", help=(
    "Database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB. Default: "
    "$CONFORM_REGISTRY_DB_URL, else a SQLite file in the data folder."))]
StoreOpt = Annotated[str | None, Opt("--store", metavar="URL", help=(
    "Blob store: a folder, file:///PATH, or any fsspec URL (memory://, s3://...). Default: "
    "$CONFORM_REGISTRY_STORE_URL, else DATA_DIR/blobs."))]
DataOpt = Annotated[Path | None, Opt("--data-dir", metavar="DIR", help=(
    "Data folder of the default database and store. Default: $CONFORM_REGISTRY_HOME, else "
    "~/.local/share/conform/registry."))]
ConfigOpt = Annotated[Path | None, Opt("--config", metavar="FILE", help=(
    "TOML file of server settings (keys at top level or under [registry]; sizes like "
    "\"64 MiB\"); flags win over it. Default: $CONFORM_REGISTRY_CONFIG."))]
JsonOpt = Annotated[bool, Opt("--json", help="Print the result as JSON on stdout.")]


def server_config(config: Path | None, data_dir: Path | None, db: str | None,
                  store: str | None) -> RegistryConfig:
    """Return the server settings: flags, then --config FILE, else the environment."""
    from ._config import RegistryConfig

    if config is not None:
        return RegistryConfig.from_toml(config, data_dir=data_dir, db_url=db, store_url=store)
    return RegistryConfig.from_env(data_dir=data_dir, db_url=db, store_url=store)


def _shown_db(url: str) -> str:
    try:
        from sqlalchemy import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url.split("@")[-1]


def _check_port(host: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise ParameterError(param="port", value=port, owner="conform registry serve",
                             allowed="an int in [0, 65535]", fix="The default is 8765.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ParameterError(f"Cannot listen on --host {host!r}: {exc}. Give an address of this "
                             "machine, e.g. 127.0.0.1 or 0.0.0.0 (every interface).") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ParameterError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Another "
                                 "program (another registry?) uses that port: stop it, or choose "
                                 "another --port.") from None


def serve_command(
    db: DbOpt = None,
    store: StoreOpt = None,
    data_dir: DataOpt = None,
    host: Annotated[str, Opt(help="Address to listen on; 0.0.0.0 listens on every interface.")
                    ] = "127.0.0.1",
    port: Annotated[int, Opt(help="Port to listen on.")] = 8765,
    config: ConfigOpt = None,
    workers: Annotated[int, Opt(help="Validation job threads of this server (0: none; "
                                     "another server on the same database runs the jobs).")] = 1,
) -> None:
    r"""Run the registry server until Ctrl-C (HTTP API under /api/v1, documentation at /docs).

    On start it creates the database or applies new migrations, and queues again the
    validation jobs a killed server left running. Writes the database and the blobs (by
    default under the data folder) and nothing else.

    For example:

      conform registry serve

      conform registry serve --data-dir /srv/conform --host 0.0.0.0

      conform registry serve --db postgresql+psycopg://conform@db/conform \
        --store file:///srv/blobs
    """
    if workers < 0:
        raise ParameterError(param="workers", value=workers, owner="conform registry serve",
                             allowed="an int in [0, inf)", fix="1 is the default.")
    settings = server_config(config, data_dir, db, store)
    _check_port(host, port)
    from ._api import serve

    shown = f"[{host}]" if ":" in host else host
    note(f"conform registry: database {_shown_db(settings.db_url)}, blobs {settings.store_url}")
    base = f"http://{shown}:{port}" if port else f"http://{shown}:PORT"
    note(f"conform registry: API {base}/api/v1, documentation {base}/docs"
         + ("" if port else " (PORT: a free port, printed below)") + " (Ctrl-C stops it)")
    with interrupt_outcome("the server stopped; every acknowledged upload is stored"):
        with _sigint_noted() as stopped:
            serve(settings, host, port, workers=workers)
        if stopped:  # uvicorn stops gracefully on Ctrl-C and returns; still exit 130
            raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_noted() -> Iterator[list[int]]:
    """Note a SIGINT that uvicorn handles (it re-raises it on shutdown, then swallows it)."""
    noted: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        noted.append(signum)
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        current = signal.getsignal(signal.SIGINT)
        if current not in (signal.SIG_IGN, None):
            previous = signal.signal(signal.SIGINT, handler)
    try:
        yield noted
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def token_create(
    site: Annotated[str, Opt(help="The site the token acts for (created if new), e.g. cambridge.")],
    role: Annotated[str, Opt(help="contributor (uploads for its site) or curator (also reads "
                                  "every draft and publishes).")],
    label: Annotated[str | None, Opt(help="A note kept with the token, e.g. who holds it.")] = None,
    db: DbOpt = None,
    data_dir: DataOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    r"""Create an API token and print it. It is shown only this once; only its hash is stored.

    Run it on the server's machine (it writes to the registry's database directly, creating
    it if needed). The token goes to stdout alone, so scripts can capture it.

    For example:

      conform registry token create --site cambridge --role contributor

      conform registry token create --site hq --role curator --label "Ana" \
        --db postgresql+psycopg://conform@db/conform
    """
    from ._service import RegistryService

    with RegistryService(server_config(config, data_dir, db, None)) as service:
        token = service.create_token(site, role, label)
    if as_json:
        echo_json({"site": site, "role": role, "label": label, "token": token})
    else:
        print(token, flush=True)
    note(f"Token for site {site!r} ({role}); it is not shown again. The site runs: "
         "conform registry login --url URL --token TOKEN")


def token_revoke(
    token: Annotated[str, typer.Argument(metavar="TOKEN_OR_PREFIX",
                                         help="The token, or its first 8 characters (e.g. cfr_3kQz, "
                                              "as the audit log shows them).")],
    db: DbOpt = None,
    data_dir: DataOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    r"""Revoke a token: every later request with it is refused (HTTP 401). Exit 2 if none matched.

    Run it on the server's machine, against the server's database. A token is named by its
    first 8 characters, so a leaked token can be revoked from the part that shows in logs.

    For example:

      conform registry token revoke cfr_Ab3x

      conform registry token revoke "$LEAKED_TOKEN" --db postgresql+psycopg://conform@db/conform
    """
    from ._auth import token_prefix
    from ._service import RegistryService

    prefix = token_prefix(token.strip())
    if len(prefix) < 8 or not prefix.startswith("cfr_"):
        raise ParameterError(param="token", value=token, owner="conform registry token revoke",
                             allowed="a token or its first 8 characters, starting with 'cfr_'",
                             fix="Copy the prefix from the audit log or the token itself.")
    with RegistryService(server_config(config, data_dir, db, None)) as service:
        count = service.revoke_token(prefix)
    if as_json:
        echo_json({"prefix": prefix, "revoked": count})
    if not count:
        note(f"No active token starts with {prefix!r} (already revoked, or another registry?).")
        raise typer.Exit(2)
    if not as_json:
        print(f"Revoked {count} token(s) starting with {prefix}.", flush=True)


def fsck_command(
    db: DbOpt = None,
    store: StoreOpt = None,
    data_dir: DataOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-hash every stored blob and report the damaged or missing ones. Exit 3 if any.

    Run it on the server's machine. Reads every blob once (time grows with the store's
    size); writes only each intact blob's verification time. Each problem names the files
    that use the blob (DATASET@VERSION:PATH).

    For example:

      conform registry fsck

      conform registry fsck --data-dir /srv/conform --json
    """
    from ._service import RegistryService

    with RegistryService(server_config(config, data_dir, db, store)) as service:
        problems = service.fsck()
    if as_json:
        echo_json({"problems": problems})
    else:
        for entry in problems:
            used = ", ".join(entry.get("used_by") or []) or "no file"
            print(f"{entry['problem'].upper():<9}{entry['sha256']}  {human_bytes(entry['size'])}  "
                  f"used by {used}", flush=True)
    if problems:
        note(f"fsck: {len(problems)} damaged or missing blob(s) (listed above with the files "
             "that use them). Restore those blobs from a backup of the store.")
        raise typer.Exit(3)
    if not as_json:
        note("fsck: every stored blob matches its sha256.")


registry_app.command("serve", help=help_text(serve_command.__doc__))(serve_command)
registry_app.add_typer(token_app, name="token")
token_app.command("create", help=help_text(token_create.__doc__))(token_create)
token_app.command("revoke", help=help_text(token_revoke.__doc__))(token_revoke)
registry_app.command("fsck", help=help_text(fsck_command.__doc__))(fsck_command)
register_client_commands(registry_app)
register_study_commands(registry_app)
