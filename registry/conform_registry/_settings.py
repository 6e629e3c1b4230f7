"""Client settings: which registry to talk to, and with which token.

The URL and the token come, in this order, from

1. explicit values (``conform registry login --url ... --token ...``, or the arguments of
   :func:`load_settings`);
2. the environment: ``CONFORM_REGISTRY_URL`` and ``CONFORM_REGISTRY_TOKEN``;
3. the settings file that ``conform registry login`` writes:
   ``$XDG_CONFIG_HOME/conform/registry.toml`` (by default ``~/.config/conform/registry.toml``),
   readable by its owner only (mode 0600) and written atomically (a temporary file in the same
   folder, fsynced, then renamed), so a crash never leaves half a token;
4. for the URL only, :data:`DEFAULT_URL` (what ``conform registry serve`` listens on).

The file's token is only used with the file's URL: a URL from the environment that names
another server never receives the token saved for the first one. No keyring is needed
(DANDI users were stuck behind encrypted-keyring prompts: dandi-cli#1455).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from conform_core.exceptions import ParameterError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DEFAULT_URL", "TOKEN_ENV", "URL_ENV", "ClientSettings", "check_url", "load_settings",
           "save_settings", "settings_path"]

DEFAULT_URL = "http://127.0.0.1:8765"
"""The URL used when none is set: where ``conform registry serve`` listens by default."""
URL_ENV = "CONFORM_REGISTRY_URL"
"""Environment variable with the registry's URL."""
TOKEN_ENV = "CONFORM_REGISTRY_TOKEN"
"""Environment variable with the registry token."""

_HEADER = ("# Written by `conform registry login`. It holds a registry token: keep it private\n"
           "# (mode 0600). Environment variables CONFORM_REGISTRY_URL/_TOKEN take precedence.\n")


def settings_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return the settings file ``login`` writes: ``$XDG_CONFIG_HOME/conform/registry.toml``.

    Parameters
    ----------
    environ : mapping of str to str or None, default=None
        The environment to read (default: :data:`os.environ`).

    Returns
    -------
    pathlib.Path
        The path (``~/.config/conform/registry.toml`` without ``XDG_CONFIG_HOME``); it may
        not exist.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base).expanduser() / "conform" / "registry.toml"


def check_url(url: object) -> str:
    """Return a registry URL without trailing ``/`` or ``/api/v1``, or raise.

    Parameters
    ----------
    url : str
        ``http://HOST:PORT`` or ``https://HOST[:PORT][/PREFIX]``.

    Returns
    -------
    str
        The base URL the API paths are appended to.

    Raises
    ------
    ParameterError
        If ``url`` is not an http(s) URL with a host.
    """
    text = url.strip() if isinstance(url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ParameterError(param="url", value=url, owner="the registry client",
                             allowed="an http:// or https:// URL with a host",
                             fix=f"For example {DEFAULT_URL} (set $${URL_ENV} or run "
                                 "`conform registry login --url URL`).")
    text = text.rstrip("/")
    return text[: -len("/api/v1")] if text.endswith("/api/v1") else text


@dataclass(frozen=True)
class ClientSettings:
    """Where the client connects, and the token it sends.

    Parameters
    ----------
    url : str
        The registry's base URL (checked by :func:`check_url`).
    token : str or None
        The token, or None (reading published data needs none).
    url_from : str
        Where the URL came from: ``"argument"``, ``"$CONFORM_REGISTRY_URL"``, the settings
        file's path, or ``"default"``.
    token_from : str or None
        Where the token came from (None without a token).
    path : pathlib.Path
        The settings file (read if it exists).
    warning : str or None
        Something the user should know (a settings file readable by others).
    """

    url: str
    token: str | None
    url_from: str
    token_from: str | None
    path: Path
    warning: str | None = None

    def __repr__(self) -> str:  # never show the token
        token = "None" if self.token is None else f"'{self.token[:8]}...'"
        return (f"ClientSettings(url={self.url!r}, token={token}, url_from={self.url_from!r}, "
                f"token_from={self.token_from!r})")


def _read_file(path: Path) -> tuple[dict[str, str], str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"Cannot read the registry settings file {str(path)!r}: {exc}. Fix "
                             "its permissions, or delete it and run `conform registry login` "
                             "again.") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"The registry settings file {str(path)!r} is not valid TOML ({exc}). "
                             "Delete it and run `conform registry login` again.") from None
    found = {k: v for k, v in table.items() if k in ("url", "token") and isinstance(v, str) and v}
    warning = None
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if os.name == "posix" and "token" in found and mode & 0o077:
            warning = (f"{path} holds a registry token and is readable by others (mode "
                       f"{mode:04o}). Run `chmod 600 {path}`.")
    return found, warning


def load_settings(*, url: str | None = None, token: str | None = None,
                  environ: Mapping[str, str] | None = None,
                  path: str | os.PathLike[str] | None = None) -> ClientSettings:
    """Return the URL and token to use: arguments, then environment, then the settings file.

    Parameters
    ----------
    url : str or None, default=None
        A URL that wins over every other source.
    token : str or None, default=None
        A token that wins over every other source.
    environ : mapping of str to str or None, default=None
        The environment (default: :data:`os.environ`).
    path : path-like or None, default=None
        The settings file (default: :func:`settings_path`).

    Returns
    -------
    ClientSettings
        The settings. The file's token is used only together with the file's URL.

    Raises
    ------
    ParameterError
        If a URL is not an http(s) URL, or the settings file cannot be read.
    """
    env = os.environ if environ is None else environ
    file = Path(path) if path is not None else settings_path(env)
    saved, warning = _read_file(file)
    if url:
        chosen, url_from = url, "argument"
    elif env.get(URL_ENV):
        chosen, url_from = env[URL_ENV], f"${URL_ENV}"
    elif saved.get("url"):
        chosen, url_from = saved["url"], str(file)
    else:
        chosen, url_from = DEFAULT_URL, "default"
    chosen = check_url(chosen)
    token_from: str | None = None
    if token:
        token_from = "argument"
    elif env.get(TOKEN_ENV):
        token, token_from = env[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    elif saved.get("token") and saved.get("url") and _same_url(saved["url"], chosen):
        token, token_from = saved["token"], str(file)
    return ClientSettings(chosen, token or None, url_from, token_from, file,
                          warning if token_from == str(file) else None)


def _same_url(a: str, b: str) -> bool:
    try:
        return check_url(a) == check_url(b)
    except ParameterError:
        return False


def save_settings(url: str, token: str, *, path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Path:
    """Write the URL and token to the settings file, private (0600) and atomically.

    Parameters
    ----------
    url : str
        The registry's URL.
    token : str
        The token (checked against the server by ``conform registry login`` before).
    path : path-like or None, default=None
        The file (default: :func:`settings_path`). Its folder is created (mode 0700).
    environ : mapping of str to str or None, default=None
        The environment used to find the default path.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ParameterError
        If ``url`` is not an http(s) URL or ``token`` is empty or has line breaks.
    """
    import tomli_w

    url = check_url(url)
    if not isinstance(token, str) or not token.strip() or any(c in token for c in "\r\n"):
        raise ParameterError(param="token", value="<hidden>", owner="conform registry login",
                             allowed="a token such as cfr_...",
                             fix="Paste the token `conform registry token create` printed.")
    file = Path(path) if path is not None else settings_path(environ)
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = _HEADER + tomli_w.dumps({"url": url, "token": token.strip()})
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(file.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return file
