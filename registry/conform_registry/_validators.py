"""The one validator: the client runs it before upload (advisory), the server as a job (binding).

Both sides import this same code, and every :class:`Report` carries ``validator_version``:
the conform-fmri version plus a hash of the validator sources, so a client can tell whether
the server checks with the same code it ran (OpenNeuro users were rejected by a server
validator newer than theirs). Errors block publishing; warnings do not.

Kinds: ``mosaic`` (HDF5 trial data, :func:`conform_mosaic.validate`), ``protocol`` (a package
written by ``conform design``, :func:`stimulus_design.check_package`), ``bids`` (``*_events.tsv``
files), ``other`` (nothing is checked; a warning says so). With ``protocol=`` every uploaded
events file is also compared with the run of that protocol package it names.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from conform_core.exceptions import ConformError, DataFileError, ParameterError

from ._validators_events import (
    Issue,
    check_events,
    compare_with_protocol,
    load_protocol,
    read_events,
)

__all__ = ["KINDS", "Issue", "Report", "validate_files", "validator_version"]

KINDS = ("mosaic", "protocol", "bids", "other")
_SOURCES = ("conform_registry._validators", "conform_registry._validators_events",
            "conform_mosaic._validate", "conform_mosaic._spec", "stimulus_design._check")
_HDF5 = (".h5", ".hdf5")
_MOSAIC_FIX = ("Fix it as the message says, or rewrite the file with conform_mosaic.write_subject; "
               "check it locally with `conform mosaic validate FILE`.")


@functools.cache
def validator_version() -> str:
    """Return ``"<conform-fmri version>+<12 hex>"``, the hash over the validator's sources.

    Returns
    -------
    str
        Equal on client and server exactly when both run the same validator code (this
        module, its events checks, ``conform_mosaic._validate``/``_spec`` and
        ``stimulus_design._check``).
    """
    from conform_core import __version__

    digest = hashlib.sha256()
    for name in _SOURCES:
        source = importlib.import_module(name).__file__
        assert source is not None
        digest.update(name.encode() + b"\0")
        digest.update(Path(source).read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class Report:
    """What :func:`validate_files` found.

    Parameters
    ----------
    errors : list of Issue
        Problems that block publishing.
    warnings : list of Issue
        Problems worth fixing that do not block publishing.
    kind : {"mosaic", "protocol", "bids", "other"}
        The kind checked (given or detected).
    validator_version : str
        :func:`validator_version` of the code that made the report.
    """

    errors: list[Issue]
    warnings: list[Issue]
    kind: str
    validator_version: str

    @property
    def ok(self) -> bool:
        """Whether there are no errors (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (as stored in the registry's job table)."""
        return {"ok": self.ok, "kind": self.kind, "validator_version": self.validator_version,
                "errors": [i.to_dict() for i in self.errors],
                "warnings": [i.to_dict() for i in self.warnings]}

    def to_json(self) -> str:
        """Return the report as a JSON string (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_json` text or a :meth:`to_dict` mapping.

        Parameters
        ----------
        data : str, bytes or mapping
            The JSON text or the decoded dict.

        Returns
        -------
        Report
            The report (``ok`` is recomputed from the errors).

        Raises
        ------
        DataFileError
            If ``data`` is not a report.
        """
        try:
            obj = json.loads(data) if isinstance(data, (str, bytes)) else data
            return cls([Issue(**i) for i in obj["errors"]], [Issue(**i) for i in obj["warnings"]],
                       str(obj["kind"]), str(obj["validator_version"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFileError(f"Not a validation report ({type(exc).__name__}: {exc}). Pass the "
                                "JSON written by Report.to_json.") from None


def _files(root: Path) -> list[tuple[Path, str]]:
    if root.is_file():
        return [(root, root.name)]
    found = []
    for folder, dirnames, names in os.walk(root):
        dirnames.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file():
                found.append((path, path.relative_to(root).as_posix()))
    return found


def _detect(files: list[tuple[Path, str]]) -> str:
    names = [PurePosixPath(rel).name for _, rel in files]
    if "design.json" in names:
        return "protocol"
    if any(n.lower().endswith(_HDF5) for n in names):
        return "mosaic"
    if any(n.endswith("_events.tsv") for n in names):
        return "bids"
    return "other"


def _mosaic(files: list[tuple[Path, str]], errors: list[Issue]) -> None:
    import h5py
    from conform_mosaic import validate

    chosen = [(p, rel) for p, rel in files if rel.lower().endswith(_HDF5)]
    if not chosen:
        errors.append(Issue(".", "mosaic.no_files", "No .h5/.hdf5 file to check as MOSAIC.",
                            "Upload sub-XX_<CODE>.hdf5 files, or choose another kind."))
    for path, rel in chosen:
        try:
            code = "mosaic.invalid" if h5py.is_hdf5(path) else "mosaic.unreadable"
            problems = validate(path)
        except Exception as exc:  # a hostile file must give a report, never a traceback
            code, problems = "mosaic.unreadable", [f"{rel}: cannot be read ({type(exc).__name__}: {exc})."]
        errors += [Issue(rel, code, p.replace(str(path), rel), _MOSAIC_FIX) for p in problems]


def _protocol(root: Path, files: list[tuple[Path, str]], errors: list[Issue]) -> None:
    from stimulus_design import check_package

    folders = [PurePosixPath(rel).parent for _, rel in files if PurePosixPath(rel).name == "design.json"]
    if not folders:
        errors.append(Issue(".", "protocol.no_design", "No design.json: this is not a protocol "
                            "package.", "Upload the folder written by `conform design --out`."))
    fix = "Re-create the package with `conform design` (do not edit it by hand); " \
          "`conform design check PACKAGE` lists the same problems."
    for folder in folders:
        base = root / folder
        try:
            problems, code = check_package(base), "protocol.invalid"
        except Exception as exc:  # DataFileError, or a crash on a malformed file
            detail = str(exc) if isinstance(exc, ConformError) else f"{type(exc).__name__}: {exc}"
            problems, code = [f"{folder}: cannot be checked ({detail})."], "protocol.unreadable"
        for message in problems:
            target = message.split(":", 1)[0].split(" trial ")[0]
            where = folder / target if target and (base / target).is_file() else folder
            errors.append(Issue(str(where), code, message.replace(str(base), str(folder)), fix))


def validate_files(root: str | os.PathLike[str], *, kind: str | None = None,
                   protocol: str | os.PathLike[str] | None = None) -> Report:
    """Check a folder of files (or one file) the way the registry does before publishing.

    Parameters
    ----------
    root : path-like
        The folder to check (an upload, or an extracted archive), or a single file.
    kind : {"mosaic", "protocol", "bids", "other"} or None, default=None
        What the files are; None detects it: a ``design.json`` makes a protocol package,
        else any ``.h5``/``.hdf5`` makes MOSAIC, else any ``*_events.tsv`` makes BIDS, else
        ``other`` (with a warning that nothing was checked).
    protocol : path-like or None, default=None
        The protocol package the site ran. Each ``*_events.tsv`` (any kind but ``protocol``)
        must then name a run of it (``sub-``, ``ses-``, ``run-``) and show its stimuli in its
        order; null trials and onsets are not compared.

    Returns
    -------
    Report
        Errors and warnings, one :class:`Issue` each; unreadable files are errors, not
        exceptions. Paths are relative to ``root``.

    Raises
    ------
    ParameterError
        If ``kind`` is not one of the four kinds.
    DataFileError
        If ``root`` does not exist.

    Notes
    -----
    BIDS events checks (numeric onset and duration, durations >= 0, onsets non-decreasing;
    a warning without trial_type or stim_file) run on every ``*_events.tsv`` outside a
    protocol package, also next to MOSAIC files.
    """
    if kind is not None and kind not in KINDS:
        raise ParameterError(param="kind", value=kind, owner="validate_files",
                             allowed="one of " + ", ".join(KINDS) + " or None (detect)")
    base = Path(root)
    if not base.exists():
        raise DataFileError(f"{str(base)!r} does not exist. Pass the folder (or file) to check.")
    files = _files(base)
    kind = kind or _detect(files)
    errors: list[Issue] = []
    warnings: list[Issue] = []
    if not files:
        errors.append(Issue(".", "files.none", "There are no files to check.",
                            "Upload the files first."))
    elif kind == "other":
        warnings.append(Issue(".", "other.unchecked", "No MOSAIC (.h5/.hdf5), protocol "
                              "(design.json) or BIDS events (*_events.tsv) files: nothing was "
                              "checked.", "Nothing to do if that is expected; else pass kind."))
    if kind == "mosaic":
        _mosaic(files, errors)
    if kind == "protocol":
        _protocol(base, files, errors)
        return Report(errors, warnings, kind, validator_version())
    events = [(p, rel) for p, rel in files if rel.endswith("_events.tsv")]
    if kind == "bids" and not events:
        errors.append(Issue(".", "bids.no_events", "No *_events.tsv file to check.",
                            "Upload the BIDS events files, or choose another kind."))
    runs, problems = load_protocol(Path(protocol)) if protocol is not None else ([], [])
    errors += problems
    for path, rel in events:
        table, unreadable = read_events(path, rel)
        errors += unreadable
        if table is None:
            continue
        for found, more in (check_events(table),
                            compare_with_protocol(table, runs) if runs else ([], [])):
            errors += found
            warnings += more
    return Report(errors, warnings, kind, validator_version())
