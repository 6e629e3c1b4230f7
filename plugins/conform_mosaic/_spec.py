"""The MOSAIC file format in constants and parsers (per-subject HDF5, key names, attributes).

Everything a reader, writer or validator needs to agree on lives here, so the three
cannot drift apart. The layout is the one written by MOSAIC's per-subject writer
(``create_hdf5_pkl.py`` in ``blahner/mosaic-preprocessing``); see ``docs/mosaic.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePath

from conform_core.exceptions import DataFileError

__all__ = [
    "ARTIFICIAL_SOURCES",
    "CEILING_ATTRIBUTES",
    "CORTEX_LEFT",
    "CORTEX_RIGHT",
    "LONG_NAMES",
    "N_CORTEX",
    "N_VERTICES",
    "REQUIRED_ATTRIBUTES",
    "SPACE",
    "SPLIT_FILES",
    "STIMINFO_CODES",
    "TRIAL_ATTRIBUTES",
    "BetaKey",
    "CeilingKey",
    "SubjectFileName",
    "format_beta_key",
    "format_ceiling_key",
    "normalise_code",
    "parse_beta_key",
    "parse_ceiling_key",
    "parse_file_name",
    "stimulus_stem",
]

N_VERTICES = 91282
"""CIFTI-2 dense grayordinates of fsLR 32k at 2 mm (cortex + subcortical)."""
CORTEX_LEFT = range(29696)
CORTEX_RIGHT = range(29696, 59412)
N_CORTEX = 59412
SPACE = "fsLR32k"
"""``Units.space`` of every unit this plugin reads or writes."""

# Root attributes every per-subject file carries, with the Python types a reader accepts.
REQUIRED_ATTRIBUTES: dict[str, tuple[type, ...]] = {
    "visual_angle": (float, int, str),
    "sex": (str,),
    "age": (str, int),
    "publication_url": (str,),
    "github_url": (str,),
    "owner_name": (str,),
    "owner_email": (str,),
    "dataset_name": (str,),
    "subjectID": (str,),
    "preprocessing_pipeline": (str,),
    "beta_pipeline": (str,),
}
TRIAL_ATTRIBUTES = ("nan_indices", "phase", "repetition", "presented_stimulus_filename")
CEILING_ATTRIBUTES = ("nan_indices", "n", "phase")

# File code -> long dataset name (the ``dataset_name`` attribute of the released files).
LONG_NAMES: dict[str, str] = {
    "NSD": "NaturalScenesDataset",
    "NOD": "NaturalObjectDataset",
    "HAD": "HumanActionsDataset",
    "BMD": "BOLDMomentsDataset",
    "BOLD5000": "BOLD5000",
    "THINGS": "THINGS_fmri",
    "GOD": "GenericObjectDecoding",
    "deeprecon": "deeprecon",
}
# File code -> prefix of the stimulus table ``<prefix>_stiminfo.tsv`` (others: lower-case code).
STIMINFO_CODES: dict[str, str] = {"BOLD5000": "b5000"}
SPLIT_FILES: dict[str, str] = {
    "train": "train_naturalistic.json",
    "test": "test_naturalistic.json",
    "artificial": "test_artificial.json",
}
ARTIFICIAL_SOURCES = frozenset({"Artificial", "NSDsynthetic"})
"""Values of the stimulus table's ``source`` column that mark artificial test stimuli."""

_SUBJECT = r"sub-(?P<number>\d+)"
_CODE = r"(?P<code>[A-Za-z0-9]+)"
_BETA_RE = re.compile(
    rf"^(?P<subject>{_SUBJECT})_{_CODE}_stimulus-(?P<stem>.+)_phase-(?P<phase>train|test)_rep-(?P<rep>\d+)$"
)
_CEILING_RE = re.compile(
    rf"^(?P<subject>{_SUBJECT})_{_CODE}_phase-(?P<split>train|test|artificial)_n-(?P<n>1|avg)_noiseceiling$"
)
_FILE_RE = re.compile(
    rf"^(?P<subject>{_SUBJECT})_{_CODE}(?:_crc32-(?P<crc>[0-9a-fA-F]{{8}}))?\.(?:hdf5|h5)$"
)

BETA_KEY_PATTERN = "sub-XX_<CODE>_stimulus-<stem>_phase-<train|test>_rep-<r>"
CEILING_KEY_PATTERN = "sub-XX_<CODE>_phase-<train|test|artificial>_n-<1|avg>_noiseceiling"


@dataclass(frozen=True)
class BetaKey:
    """The parts of a beta dataset name ``sub-XX_<CODE>_stimulus-<stem>_phase-<p>_rep-<r>``."""

    subject: str
    code: str
    stem: str
    phase: str
    repetition: int


@dataclass(frozen=True)
class CeilingKey:
    """The parts of a noise-ceiling name ``sub-XX_<CODE>_phase-<split>_n-<n>_noiseceiling``."""

    subject: str
    code: str
    split: str
    n: str


@dataclass(frozen=True)
class SubjectFileName:
    """The parts of a file name ``sub-XX_<CODE>[_crc32-<8 hex>].hdf5``."""

    subject: str
    code: str
    crc32: str | None

    @property
    def name(self) -> str:
        """Subject name as conform uses it: ``sub-XX_<CODE>``."""
        return f"{self.subject}_{self.code}"


def parse_beta_key(key: str, *, where: str = "") -> BetaKey:
    """Split a beta key into its parts (parsed from the right: stems may hold ``_`` and ``.``).

    Raises
    ------
    DataFileError
        If the key does not follow the pattern; the message names ``where`` and the key.
    """
    match = _BETA_RE.match(key)
    if match is None:
        raise DataFileError(
            f"{where}: beta key {key!r} does not parse; MOSAIC beta keys look like "
            f"{BETA_KEY_PATTERN!r}. Rename the dataset (or re-create the file with "
            "conform_mosaic.write_subject); `conform mosaic validate FILE` lists every problem."
        )
    return BetaKey(
        match["subject"], match["code"], match["stem"], match["phase"], int(match["rep"])
    )


def format_beta_key(subject: str, code: str, stem: str, phase: str, repetition: int) -> str:
    """Build a beta key; ``phase`` is ``"train"`` or ``"test"`` (artificial trials use ``"test"``)."""
    return f"{subject}_{code}_stimulus-{stem}_phase-{phase}_rep-{int(repetition)}"


def parse_ceiling_key(key: str, *, where: str = "") -> CeilingKey:
    """Split a noise-ceiling key into its parts.

    Raises
    ------
    DataFileError
        If the key does not follow the pattern.
    """
    match = _CEILING_RE.match(key)
    if match is None:
        raise DataFileError(
            f"{where}: noise-ceiling key {key!r} does not parse; MOSAIC noise-ceiling keys look "
            f"like {CEILING_KEY_PATTERN!r}. Rename the dataset or drop it from /noiseceilings."
        )
    return CeilingKey(match["subject"], match["code"], match["split"], match["n"])


def format_ceiling_key(subject: str, code: str, split: str, n: str) -> str:
    """Build a noise-ceiling key (``split`` keeps ``"artificial"``; ``n`` is ``"1"`` or ``"avg"``)."""
    return f"{subject}_{code}_phase-{split}_n-{n}_noiseceiling"


def parse_file_name(path: str | PurePath) -> SubjectFileName | None:
    """Parse ``sub-XX_<CODE>[_crc32-xxxxxxxx].hdf5``; None when the name does not match."""
    match = _FILE_RE.match(PurePath(path).name)
    if match is None:
        return None
    return SubjectFileName(match["subject"], match["code"], match["crc"])


def stimulus_stem(filename: str) -> str:
    """Return the stimulus file name without its last extension (``a.b.jpg`` -> ``a.b``)."""
    return Path(filename).stem if Path(filename).suffix else filename


def normalise_code(name: str) -> str | None:
    """Map a dataset code or long name (any case) to the file code; None when unknown."""
    lowered = name.lower()
    for code, long in LONG_NAMES.items():
        if lowered in (code.lower(), long.lower()) or (code == "THINGS" and lowered == "things"):
            return code
    return None
