"""Settings of the registry service: where its data lives and the limits it enforces.

:class:`RegistryConfig` is a frozen dataclass. Build it with keyword arguments, from a TOML
file (:meth:`RegistryConfig.from_toml`) or from environment variables
(:meth:`RegistryConfig.from_env`), and derive variants with
:meth:`RegistryConfig.with_overrides`. Every value is checked when the object is built, and a
bad one raises :class:`~conform_core.exceptions.ParameterError` naming the key and the fix.

A TOML file holds the keys at top level or under a ``[registry]`` table::

    [registry]
    data_dir = "/srv/conform"              # relative paths are read from the file's folder
    db_url = "postgresql+psycopg://conform@db/conform"
    store_url = "file:///srv/conform/blobs"
    max_file_bytes = "50 GiB"              # sizes: an int (bytes) or "<number> <unit>"
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conform_core.exceptions import ParameterError

if TYPE_CHECKING:
    from ._archive import ArchiveLimits

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["RegistryConfig", "default_data_dir", "parse_size"]

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

HOME_ENV = "CONFORM_REGISTRY_HOME"
"""Environment variable naming the default data folder."""

_ENV = {"db_url": "CONFORM_REGISTRY_DB_URL", "store_url": "CONFORM_REGISTRY_STORE_URL"}


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the default data folder.

    ``$CONFORM_REGISTRY_HOME`` if set, else ``$XDG_DATA_HOME/conform/registry`` (by default
    ``~/.local/share/conform/registry``).

    Parameters
    ----------
    environ : mapping of str to str or None, default=None
        The environment to read (default: :data:`os.environ`).

    Returns
    -------
    pathlib.Path
        An absolute path (it is not created).
    """
    env = os.environ if environ is None else environ
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser().absolute()
    base = env.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    return Path(base).expanduser().absolute() / "conform" / "registry"


def parse_size(value: Any, *, key: str = "size") -> int:
    """Return a byte count from an int or a string such as ``"64 MiB"`` or ``"2GB"``.

    Units: B, KB/MB/GB/TB (powers of 1000) and KiB/MiB/GiB/TiB (powers of 1024), any case.

    Parameters
    ----------
    value : int or str
        The size.
    key : str, default="size"
        The setting it belongs to, named in the error.

    Returns
    -------
    int
        The number of bytes.

    Raises
    ------
    ParameterError
        If ``value`` is not a non-negative int or a size string with a known unit.
    """
    allowed = 'a byte count (int) or a size such as "64 MiB" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)'
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ParameterError(param=key, value=value, allowed=allowed, owner="RegistryConfig",
                                 fix="Sizes cannot be negative.")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None or match[2].lower() not in _UNITS:
        raise ParameterError(param=key, value=value, allowed=allowed, owner="RegistryConfig",
                             fix='Write e.g. 8388608 or "8 MiB".')
    return int(float(match[1]) * _UNITS[match[2].lower()])


@dataclass(frozen=True)
class RegistryConfig:
    """Settings of one registry server.

    Parameters
    ----------
    data_dir : path-like, default=:func:`default_data_dir`
        Folder of the default database and blob store.
    db_url : str or None, default=None
        SQLAlchemy URL of the database; ``None`` means ``sqlite:///<data_dir>/registry.sqlite3``.
    store_url : str or None, default=None
        fsspec URL (or absolute path) of the blob store; ``None`` means
        ``file://<data_dir>/blobs``. ``memory://blobs`` keeps blobs in memory (tests).
    max_file_bytes : int or str, default="50 GiB"
        Largest file a client may upload.
    max_upload_chunk_bytes : int or str, default="64 MiB"
        Largest chunk the server accepts in one request.
    chunk_bytes : int or str, default="8 MiB"
        Chunk size clients use; at most ``max_upload_chunk_bytes``.
    pack_threshold_files : int, default=1000
        Above this many files in one upload, clients warn and suggest packing them into one
        archive.
    archive_max_members : int, default=100_000
        Most members in one archive.
    archive_max_ratio : float, default=200.0
        Largest expanded / compressed size ratio of an archive.
    archive_max_total_bytes : int or str, default="200 GiB"
        Largest expanded size of an archive.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    db_url: str = None  # type: ignore[assignment]  # filled from data_dir in __post_init__
    store_url: str = None  # type: ignore[assignment]
    max_file_bytes: int = 50 * GiB
    max_upload_chunk_bytes: int = 64 * MiB
    chunk_bytes: int = 8 * MiB
    pack_threshold_files: int = 1000
    archive_max_members: int = 100_000
    archive_max_ratio: float = 200.0
    archive_max_total_bytes: int = 200 * GiB

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.data_dir, (str, os.PathLike)) or not str(self.data_dir):
            raise ParameterError(param="data_dir", value=self.data_dir, owner="RegistryConfig",
                                 allowed="a folder path",
                                 fix=f"Give a folder, or set $${HOME_ENV} and leave it out.")
        set_(self, "data_dir", Path(self.data_dir).expanduser().absolute())
        if self.db_url is None:
            set_(self, "db_url", _default_db_url(self.data_dir))
        if self.store_url is None:
            set_(self, "store_url", _default_store_url(self.data_dir))
        set_(self, "db_url", _check_url("db_url", self.db_url, store=False))
        set_(self, "store_url", _check_url("store_url", self.store_url, store=True))
        for key in ("max_file_bytes", "max_upload_chunk_bytes", "chunk_bytes",
                    "archive_max_total_bytes"):
            size = parse_size(getattr(self, key), key=key)
            if size < 1:
                raise ParameterError(param=key, value=size, owner="RegistryConfig",
                                     allowed="at least 1 byte", fix="Give a positive size.")
            set_(self, key, size)
        for key in ("pack_threshold_files", "archive_max_members"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(param=key, value=value, owner="RegistryConfig",
                                     allowed="an int in [1, inf)", fix="Give a positive count.")
        ratio = self.archive_max_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio >= 1:
            raise ParameterError(param="archive_max_ratio", value=ratio, owner="RegistryConfig",
                                 allowed="a number in [1, inf)",
                                 fix="Compressed data never expands below ratio 1; 200 is the default.")
        set_(self, "archive_max_ratio", float(ratio))
        if self.chunk_bytes > self.max_upload_chunk_bytes:
            raise ParameterError(
                f"$chunk_bytes={self.chunk_bytes} is larger than $max_upload_chunk_bytes="
                f"{self.max_upload_chunk_bytes}, so the server would refuse the clients' chunks.",
                param="chunk_bytes", value=self.chunk_bytes, owner="RegistryConfig",
                fix="Lower $chunk_bytes or raise $max_upload_chunk_bytes.")

    @property
    def archive_limits(self) -> ArchiveLimits:
        """The archive limits as one :class:`ArchiveLimits` (``max_file_bytes`` bounds each member)."""
        from ._archive import ArchiveLimits

        return ArchiveLimits(max_members=self.archive_max_members,
                             max_ratio=self.archive_max_ratio,
                             max_total_bytes=self.archive_max_total_bytes,
                             max_file_bytes=self.max_file_bytes)

    def with_overrides(self, **overrides: Any) -> RegistryConfig:
        """Return a copy with some settings changed (``None`` values are ignored).

        A ``db_url`` or ``store_url`` that was derived from ``data_dir`` follows a new
        ``data_dir``; one given explicitly is kept.

        Parameters
        ----------
        **overrides
            Settings by name, as the constructor takes them.

        Returns
        -------
        RegistryConfig
            The new settings.

        Raises
        ------
        ParameterError
            If a name is not a setting or a value is invalid.
        """
        changes = {k: v for k, v in overrides.items() if v is not None}
        _check_keys(changes, where="RegistryConfig.with_overrides()")
        if "data_dir" in changes:
            if "db_url" not in changes and self.db_url == _default_db_url(self.data_dir):
                changes["db_url"] = None
            if "store_url" not in changes and self.store_url == _default_store_url(self.data_dir):
                changes["store_url"] = None
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> RegistryConfig:
        """Read settings from a TOML file (top-level keys or a ``[registry]`` table).

        Parameters
        ----------
        path : path-like
            The file. A relative ``data_dir`` in it is read from the file's folder.
        **overrides
            Settings that replace the file's (``None`` values are ignored).

        Returns
        -------
        RegistryConfig
            The settings; missing keys take their defaults.

        Raises
        ------
        ParameterError
            If the file is unreadable or not TOML, or names an unknown key or a bad value.
        """
        path = Path(path).expanduser()
        try:
            table: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ParameterError(f"Cannot read the registry settings file {path}: {exc}. "
                                 "Give a readable UTF-8 TOML file.") from exc
        if isinstance(table.get("registry"), dict):
            table = table["registry"]
        _check_keys(table, where=str(path))
        if isinstance(table.get("data_dir"), str):
            table["data_dir"] = path.parent / Path(table["data_dir"]).expanduser()
        table.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**table)
        except ParameterError as exc:
            raise ParameterError(f"In {path}: {exc}") from exc

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RegistryConfig:
        """Read settings from ``CONFORM_REGISTRY_*`` environment variables.

        ``CONFORM_REGISTRY_CONFIG`` names a TOML file to start from;
        ``CONFORM_REGISTRY_HOME``, ``CONFORM_REGISTRY_DB_URL`` and
        ``CONFORM_REGISTRY_STORE_URL`` then replace its ``data_dir``, ``db_url`` and
        ``store_url``.

        Parameters
        ----------
        environ : mapping of str to str or None, default=None
            The environment (default: :data:`os.environ`).
        **overrides
            Settings that replace all of the above (``None`` values are ignored).

        Returns
        -------
        RegistryConfig
            The settings.
        """
        env = os.environ if environ is None else environ
        config = (cls.from_toml(env["CONFORM_REGISTRY_CONFIG"]) if env.get("CONFORM_REGISTRY_CONFIG")
                  else cls(data_dir=default_data_dir(env)))
        found = {key: env[name] for key, name in _ENV.items() if env.get(name)}
        if env.get(HOME_ENV):
            found["data_dir"] = default_data_dir(env)
        return config.with_overrides(**found).with_overrides(**overrides)


_KEYS = tuple(f.name for f in dataclasses.fields(RegistryConfig))


def _check_keys(table: Mapping[str, Any], *, where: str) -> None:
    import difflib

    for key in table:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(_KEYS)}."
            raise ParameterError(f"Unknown registry setting {key!r} in {where}. {hint}")


def _default_db_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'registry.sqlite3'}"


def _default_store_url(data_dir: Path) -> str:
    return f"file://{data_dir / 'blobs'}"


def _check_url(key: str, value: Any, *, store: bool) -> str:
    if isinstance(value, os.PathLike) and store:
        value = os.fspath(value)
    if isinstance(value, str) and store and not _URL.match(value) and Path(value).is_absolute():
        return f"file://{value}"
    if not isinstance(value, str) or not _URL.match(value):
        example = ("file:///srv/conform/blobs, memory://blobs or an absolute path" if store
                   else "sqlite:////srv/conform/registry.sqlite3 or postgresql+psycopg://user@host/db")
        raise ParameterError(param=key, value=value, owner="RegistryConfig",
                             allowed="a URL of the form scheme://...",
                             fix=f"For example {example}.")
    return value
