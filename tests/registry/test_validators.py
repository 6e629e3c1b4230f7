"""The shared validator: each broken input gives its error code; valid inputs give an ok report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conform_core.exceptions import DataFileError, ParameterError
from conform_registry._validators import Issue, Report, validate_files, validator_version

RUN = "sub-01_ses-01_task-conform_run-01_events.tsv"
DESIGN = {"sites": 1, "participants_per_site": 2, "core": 6, "per_participant": 20,
          "overlap": 1, "repeats": 2, "sessions": 2, "runs": 2, "core_sessions": 1,
          "min_session_repeats": 1, "seed": 3}


@pytest.fixture(scope="module")
def toy_hdf5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 18-trial toy MOSAIC subject written by conform_mosaic."""
    from conform_mosaic.testing import toy_folder

    return toy_folder(tmp_path_factory.mktemp("toy")) / "sub-01_TOY.hdf5"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small protocol package (2 participants x 2 sessions x 2 runs) from made-up embeddings."""
    from stimulus_design import DesignInputs, DesignParams, run_design

    root = tmp_path_factory.mktemp("design")
    x = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    np.save(root / "emb.npy", x / np.linalg.norm(x, axis=1, keepdims=True))
    (root / "ids.txt").write_text("".join(f"img{i:03d}\n" for i in range(200)))
    run_design(DesignParams(**DESIGN),
               DesignInputs(embeddings=root / "emb.npy", ids=root / "ids.txt"), root / "pkg")
    return root / "pkg"


def codes(issues: list[Issue]) -> list[str]:
    return [i.code for i in issues]


def one(issues: list[Issue], code: str) -> Issue:
    found = [i for i in issues if i.code == code]
    assert found, (code, issues)
    return found[0]


def upload_run(package: Path, dest: Path, name: str = RUN, edit=None) -> Path:
    """Copy sub-01 ses-01 run-01 of the protocol into a BIDS-like upload, optionally edited."""
    lines = (package / "site-01/sub-01/ses-01" / RUN).read_text().splitlines()
    if edit is not None:
        lines = edit(lines)
    target = dest / "sub-01/ses-01/func" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    return dest


# --- MOSAIC ---------------------------------------------------------------------------------


def test_valid_mosaic_file_passes(toy_hdf5: Path, tmp_path: Path) -> None:
    shutil.copy(toy_hdf5, tmp_path)
    report = validate_files(tmp_path)
    assert (report.kind, report.ok, report.warnings) == ("mosaic", True, [])
    assert validate_files(tmp_path / toy_hdf5.name).ok  # a single file works too


def test_mosaic_missing_attribute_is_an_error(toy_hdf5: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(toy_hdf5, tmp_path))
    with h5py.File(path, "r+") as f:
        del f.attrs["owner_email"]
    issue = one(validate_files(tmp_path).errors, "mosaic.invalid")
    assert issue.path == "sub-01_TOY.hdf5"
    assert "'owner_email' is missing" in issue.message
    assert str(tmp_path) not in issue.message  # server paths stay private
    assert "conform mosaic validate" in issue.fix


def test_mosaic_wrongly_named_file_is_an_error(toy_hdf5: Path, tmp_path: Path) -> None:
    shutil.copy(toy_hdf5, tmp_path / "toy.h5")
    assert "sub-XX_<CODE>.hdf5" in one(validate_files(tmp_path).errors, "mosaic.invalid").message


def test_file_that_is_not_hdf5_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "sub-02_TOY.hdf5").write_bytes(b"\x00" * 100)
    report = validate_files(tmp_path)
    assert codes(report.errors) == ["mosaic.unreadable"]
    assert "not an HDF5 file" in report.errors[0].message


def test_mosaic_kind_without_hdf5_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert codes(validate_files(tmp_path, kind="mosaic").errors) == ["mosaic.no_files"]


# --- protocol packages ----------------------------------------------------------------------


def test_valid_protocol_package_passes(package: Path) -> None:
    report = validate_files(package)
    assert (report.kind, report.ok) == ("protocol", True), report.errors


def test_edited_protocol_package_is_invalid(package: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(package, tmp_path / "pkg"))
    run = copy / "site-01/sub-01/ses-01" / RUN
    run.write_text(run.read_text().replace("stimulus", "null", 1))
    errors = validate_files(tmp_path).errors
    issue = one(errors, "protocol.invalid")
    assert issue.path == f"pkg/site-01/sub-01/ses-01/{RUN}"
    assert "SHA256SUMS" in issue.message and "conform design" in issue.fix


@pytest.mark.parametrize("damage", ["design", "events"])
def test_unreadable_protocol_package_gives_an_error_not_a_traceback(
        package: Path, tmp_path: Path, damage: str) -> None:
    copy = Path(shutil.copytree(package, tmp_path / "pkg"))
    if damage == "design":
        (copy / "design.json").write_text("{not json")
    else:  # check_package itself trips over a non-numeric onset
        run = copy / "site-01/sub-01/ses-01" / RUN
        run.write_text(run.read_text().replace("0.000", "zero", 1))
    report = validate_files(copy)
    assert codes(report.errors) == ["protocol.unreadable"]


def test_protocol_kind_without_design_json_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "stimuli.tsv").write_text("x\n")
    assert codes(validate_files(tmp_path, kind="protocol").errors) == ["protocol.no_design"]


# --- BIDS events ----------------------------------------------------------------------------

GOOD = "onset\tduration\ttrial_type\n0\t3\tstimulus\n4.5\t3\tstimulus\n4.5\t0\tnull\n"


def write_events(root: Path, text: str | bytes, name: str = "sub-01_task-x_events.tsv") -> Path:
    path = root / "sub-01" / "func" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def test_valid_bids_events_pass(tmp_path: Path) -> None:
    report = validate_files(write_events(tmp_path, GOOD))
    assert (report.kind, report.ok, report.warnings) == ("bids", True, [])


@pytest.mark.parametrize("text, code, fragment", [
    ("onset\ttrial_type\n0\ta\n", "events.missing_column", "['duration']"),
    ("onset\tduration\ttrial_type\nn/a\t1\ta\n", "events.not_numeric", "onset 'n/a'"),
    ("onset\tduration\ttrial_type\n0\tinf\ta\n", "events.not_numeric", "duration 'inf'"),
    ("onset\tduration\ttrial_type\n0\t-1\ta\n1\t-2\ta\n", "events.negative_duration",
     "row 1 (line 2): duration -1 is negative (2 rows like this)"),
    ("onset\tduration\ttrial_type\n5\t1\ta\n2\t1\ta\n", "events.unsorted_onsets", "row 2 (line 3)"),
    ("onset\tduration\ttrial_type\n0\t1\n", "events.ragged_row", "2 fields; the header has 3"),
    (b"onset\tduration\ttrial_type\n0\t1\tcaf\xe9\n", "events.unreadable", "not UTF-8"),
    ("\n\n", "events.empty", "no header"),
])
def test_broken_bids_events_give_their_error(tmp_path: Path, text: str | bytes, code: str,
                                             fragment: str) -> None:
    report = validate_files(write_events(tmp_path, text))
    issue = one(report.errors, code)
    assert issue.path == "sub-01/func/sub-01_task-x_events.tsv"
    assert fragment in issue.message and issue.fix


def test_events_without_trial_type_only_warn(tmp_path: Path) -> None:
    report = validate_files(write_events(tmp_path, "onset\tduration\n0\t1\n"))
    assert report.ok and codes(report.warnings) == ["events.no_trial_type"]


def test_bids_kind_without_events_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.nii.gz").write_bytes(b"")
    assert codes(validate_files(tmp_path, kind="bids").errors) == ["bids.no_events"]


# --- events against the protocol ------------------------------------------------------------


def test_events_matching_the_protocol_pass(package: Path, tmp_path: Path) -> None:
    report = validate_files(upload_run(package, tmp_path), protocol=package)
    assert (report.kind, report.ok, report.warnings) == ("bids", True, [])


def test_recorded_events_without_nulls_and_with_real_onsets_pass(package: Path,
                                                                 tmp_path: Path) -> None:
    def as_recorded(lines: list[str]) -> list[str]:  # stim_file only, with a folder prefix
        rows = [r.split("\t") for r in lines[1:] if "\tnull\t" not in r]
        return ["onset\tduration\ttrial_type\tstim_file"] + [
            f"{float(r[0]) + 0.013:.3f}\t{r[1]}\t{r[2]}\tstimuli/{r[3]}" for r in rows]

    assert validate_files(upload_run(package, tmp_path, edit=as_recorded), protocol=package).ok


def test_events_in_another_order_name_the_first_differing_row(package: Path,
                                                              tmp_path: Path) -> None:
    def swap(lines: list[str]) -> list[str]:
        stim = [i for i, r in enumerate(lines) if "\tstimulus\t" in r]
        a, b = stim[1], stim[2]
        cells_a, cells_b = lines[a].split("\t"), lines[b].split("\t")
        lines[a] = "\t".join(cells_a[:3] + cells_b[3:])
        lines[b] = "\t".join(cells_b[:3] + cells_a[3:])
        return lines

    upload_run(package, tmp_path, edit=swap)
    issue = one(validate_files(tmp_path, protocol=package).errors, "events.protocol_mismatch")
    assert issue.path == f"sub-01/ses-01/func/{RUN}"
    assert re.search(r"row \d+ \(line \d+\): shows stimulus_id 'img\d+' as stimulus trial 2; "
                     r"the protocol \(site-01/sub-01/ses-01/.*\) has 'img\d+'", issue.message)


def test_events_cut_short_are_a_mismatch(package: Path, tmp_path: Path) -> None:
    upload_run(package, tmp_path, edit=lambda lines: lines[:4])
    issue = one(validate_files(tmp_path, protocol=package).errors, "events.protocol_mismatch")
    assert "ends after" in issue.message


@pytest.mark.parametrize("name, code, where", [
    ("sub-01_ses-01_task-conform_run-09_events.tsv", "events.no_protocol_run", "errors"),
    ("sub-07_ses-01_task-conform_run-01_events.tsv", "events.no_protocol_run", "errors"),
    ("sub-01_task-conform_run-01_events.tsv", "events.ambiguous_run", "errors"),
    ("sub-01_ses-01_task-localizer_run-01_events.tsv", "events.other_task", "warnings"),
])
def test_events_that_name_no_single_protocol_run(package: Path, tmp_path: Path, name: str,
                                                 code: str, where: str) -> None:
    report = validate_files(upload_run(package, tmp_path, name), protocol=package)
    assert codes(getattr(report, where)) == [code]


def test_events_labels_compare_as_numbers(package: Path, tmp_path: Path) -> None:
    upload = upload_run(package, tmp_path, "sub-1_ses-1_task-conform_run-1_events.tsv")
    assert validate_files(upload, protocol=package).ok


def test_missing_protocol_is_an_error(tmp_path: Path) -> None:
    report = validate_files(write_events(tmp_path, GOOD), protocol=tmp_path / "nope")
    assert codes(report.errors) == ["protocol.unreadable"]


# --- detection, report, arguments -----------------------------------------------------------


def test_other_files_warn_that_nothing_was_checked(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hi")
    report = validate_files(tmp_path)
    assert (report.kind, report.ok, codes(report.warnings)) == ("other", True, ["other.unchecked"])


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    assert codes(validate_files(tmp_path).errors) == ["files.none"]


def test_report_round_trips_through_json(tmp_path: Path) -> None:
    report = validate_files(write_events(tmp_path, "onset\tduration\n0\t-1\n"))
    text = report.to_json()
    assert json.loads(text)["ok"] is False
    assert Report.from_json(text) == report == Report.from_json(report.to_dict())
    with pytest.raises(DataFileError, match="Not a validation report"):
        Report.from_json('{"errors": 1}')


def test_validator_version_names_the_package_version_and_the_code(tmp_path: Path) -> None:
    from conform_core import __version__

    version = validator_version()
    assert re.fullmatch(re.escape(__version__) + r"\+[0-9a-f]{12}", version)
    assert validate_files(write_events(tmp_path, GOOD)).validator_version == version


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="'kind' parameter"):
        validate_files(tmp_path, kind="nifti")
    with pytest.raises(DataFileError, match="does not exist"):
        validate_files(tmp_path / "missing")
