"""Packing is deterministic; hostile archives are refused with the member, the reason and a fix."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from conform_core.exceptions import ConformError, DataFileError, ParameterError
from conform_registry._archive import (
    ArchiveError,
    ArchiveLimits,
    Member,
    extract,
    inspect,
    pack,
)

FILES = {"b/two.txt": b"two\n" * 100, "a.txt": b"one", "b/c/three.bin": bytes(range(256)) * 9,
         "unicodé/ñame.txt": b"utf8", "empty": b""}


def write_tree(root: Path, files: dict[str, bytes] = FILES) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def make_tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w",
             fmt: int = tarfile.GNU_FORMAT) -> Path:
    with tarfile.open(path, mode, format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry, io.BytesIO(b"x" * entry.size) if entry.isreg() else None)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]],
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def refused(path: Path, code: str, *fragments: str, limits: ArchiveLimits | None = None,
            member: str | None = None) -> ArchiveError:
    with pytest.raises(ArchiveError) as info:
        inspect(path, limits)
    error = info.value
    assert error.code == code, str(error)
    assert str(path) in str(error)
    for fragment in fragments:
        assert fragment in str(error), (fragment, str(error))
    if member is not None:
        assert error.member == member
    return error


# --- pack -----------------------------------------------------------------------------------


def test_pack_gives_the_same_bytes_for_the_same_files(tmp_path: Path) -> None:
    first = write_tree(tmp_path / "one")
    second = write_tree(tmp_path / "two", dict(reversed(list(FILES.items()))))
    os.utime(second / "a.txt", (1, 1))
    os.chmod(second / "a.txt", 0o600)
    m1 = pack(first, tmp_path / "one.tar")
    m2 = pack([(second / n, n) for n in FILES], tmp_path / "two.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert m1.sha256 == m2.sha256 == hashlib.sha256((tmp_path / "one.tar").read_bytes()).hexdigest()
    assert m1.size == (tmp_path / "one.tar").stat().st_size
    assert [f.name for f in m1.files] == sorted(FILES)
    assert {e["path"]: e["sha256"] for e in m1.entries()} == {
        n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()}


def test_packed_members_have_neutral_metadata(tmp_path: Path) -> None:
    pack(write_tree(tmp_path / "src"), tmp_path / "out.tar")
    with tarfile.open(tmp_path / "out.tar") as tar:
        infos = tar.getmembers()
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode, i.type) for i in infos} == {
        (0, 0, 0, "", "", 0o644, tarfile.REGTYPE)}


def test_pack_then_extract_round_trips(tmp_path: Path) -> None:
    manifest = pack(write_tree(tmp_path / "src"), tmp_path / "out.tar")
    members = extract(manifest.path, tmp_path / "dest")
    assert members == [Member(f.name, f.size) for f in manifest.files]
    for name, data in FILES.items():
        assert (tmp_path / "dest" / name).read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "out.tar", "src"]


@pytest.mark.parametrize("name, code", [("../x", "archive.traversal"),
                                        ("/etc/x", "archive.absolute"),
                                        ("a\\b", "archive.windows_path")])
def test_pack_refuses_unsafe_names(tmp_path: Path, name: str, code: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ArchiveError) as info:
        pack([(tmp_path / "f", name)], tmp_path / "out.tar")
    assert info.value.code == code
    assert not (tmp_path / "out.tar").exists()


def test_pack_refuses_a_name_used_twice(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ArchiveError, match="appears twice"):
        pack([(tmp_path / "f", "a/b"), (tmp_path / "f", "./a//b")], tmp_path / "out.tar")


# --- reading good archives ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_flavours_are_read(tmp_path: Path, mode: str) -> None:
    entries = [special("./data", tarfile.DIRTYPE), ("./data/x.txt", b"hello"), ("y", b"")]
    path = make_tar(tmp_path / "a.tar", entries, mode, tarfile.PAX_FORMAT)
    assert inspect(path) == [Member("data/x.txt", 5), Member("y", 0)]


def test_zip_is_extracted_whole(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", [("d/", b""), ("d/x.txt", b"x" * 1000), ("é.txt", b"e")])
    assert extract(path, tmp_path / "out") == [Member("d/x.txt", 1000), Member("é.txt", 1)]
    assert (tmp_path / "out" / "é.txt").read_bytes() == b"e"


def test_small_compressible_archives_are_not_bombs(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", [("t.tsv", b"0\t" * 200_000)])
    assert inspect(path, ArchiveLimits(max_ratio=2)) == [Member("t.tsv", 400_000)]


# --- hostile tar ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, code, fragment", [
    ("/etc/passwd", "archive.absolute", "absolute path"),
    ("ok/../../evil", "archive.traversal", "'..'"),
    ("..", "archive.traversal", "'..'"),
    ("dir\\evil.txt", "archive.windows_path", "backslash"),
    ("C:evil.txt", "archive.windows_path", "drive letter"),
    ("new\nline", "archive.bad_name", "control characters"),
])
def test_tar_with_unsafe_names_is_refused(tmp_path: Path, name: str, code: str,
                                          fragment: str) -> None:
    path = make_tar(tmp_path / "a.tar", [("fine.txt", b"x"), (name, b"y")])
    refused(path, code, fragment, repr(name), member=name)


@pytest.mark.parametrize("kind, linkname, what", [
    (tarfile.SYMTYPE, "/etc/passwd", "symlink"), (tarfile.LNKTYPE, "fine.txt", "hardlink"),
    (tarfile.CHRTYPE, "", "character device"), (tarfile.BLKTYPE, "", "block device"),
    (tarfile.FIFOTYPE, "", "fifo"),
])
def test_tar_links_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes, linkname: str,
                                                 what: str) -> None:
    path = make_tar(tmp_path / "a.tar", [("fine.txt", b"x"), special("odd", kind, linkname)])
    code = "archive.link" if "link" in what else "archive.special"
    refused(path, code, f"is a {what}", "only regular files", member="odd")


def test_tar_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")  # latin-1 bytes
    path = make_tar(tmp_path / "a.tar", [(name, b"x")])
    refused(path, "archive.non_utf8", "not UTF-8", "caf\\xe9.txt", "UTF-8 name")


def test_tar_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "a.tar", [("a/b.txt", b"1"), ("./a//b.txt", b"2")])
    refused(path, "archive.duplicate", "appears twice", "Keep one copy")


def test_tar_file_inside_a_file_is_refused(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "a.tar", [("a", b"1"), ("a/b", b"2")])
    refused(path, "archive.conflict", "which is a file")


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "a.tar", [(f"f{i}", b"") for i in range(6)])
    refused(path, "archive.too_many_members", "more than 5 members",
            limits=ArchiveLimits(max_members=5))


def test_a_file_above_max_file_bytes_is_refused(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "a.tar", [("small", b"x" * 10), ("big", b"x" * 101)])
    refused(path, "archive.file_too_large", "more than 100 bytes", "max_file_bytes",
            limits=ArchiveLimits(max_file_bytes=100), member="big")


def test_a_total_above_max_total_bytes_is_refused(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "a.tar", [(f"f{i}", b"x" * 40) for i in range(3)])
    refused(path, "archive.total_too_large", "above 100 bytes",
            limits=ArchiveLimits(max_total_bytes=100), member="f2")


def test_gzip_tar_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "bomb.tar.gz", [("zeros", bytes(8 << 20))], "w:gz")
    assert path.stat().st_size < 100_000
    refused(path, "archive.ratio", "zip bomb", "plain .tar", limits=ArchiveLimits(max_ratio=20))


def test_huge_pax_header_is_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("x")
    info.pax_headers = {"comment": "c" * (17 << 20)}
    path = make_tar(tmp_path / "a.tar", [info], fmt=tarfile.PAX_FORMAT)
    refused(path, "archive.headers", "tar headers")


# --- hostile zip ----------------------------------------------------------------------------


def test_zip_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bomb.zip", [("zeros.bin", bytes(4 << 20))])
    assert path.stat().st_size < 50_000
    refused(path, "archive.ratio", "times its size on disk", limits=ArchiveLimits(max_ratio=50),
            member="zeros.bin")


def test_zip_that_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", [("x.bin", bytes(1 << 20))])
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
    central = data.rindex(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")  # declared size: 100 bytes
    data[info.header_offset + 22:info.header_offset + 26] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    refused(path, "archive.corrupt", "not a readable")


@pytest.mark.parametrize("name, code", [("../evil", "archive.traversal"),
                                        ("/abs", "archive.absolute"),
                                        ("a\\b", "archive.windows_path")])
def test_zip_with_unsafe_names_is_refused(tmp_path: Path, name: str, code: str) -> None:
    refused(make_zip(tmp_path / "a.zip", [("ok", b"1"), (name, b"2")]), code, repr(name))


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = make_zip(tmp_path / "a.zip", [(link, b"/etc/passwd")])
    refused(path, "archive.link", "is a symlink", member="link")


def _patch_name(path: Path, old: bytes, new: bytes) -> Path:
    assert len(old) == len(new)
    path.write_bytes(path.read_bytes().replace(old, new))
    return path


def test_zip_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = _patch_name(make_zip(tmp_path / "a.zip", [("cafX.txt", b"x")]), b"cafX", b"caf\xe9")
    refused(path, "archive.non_utf8", "not UTF-8", "caf\\xe9")


def test_zip_flagged_utf8_with_bad_bytes_is_refused(tmp_path: Path) -> None:
    path = _patch_name(make_zip(tmp_path / "a.zip", [("é.txt", b"x")]), "é".encode(), b"\xff\xfe")
    refused(path, "archive.non_utf8", "not valid UTF-8")


def test_zip_non_ascii_utf8_name_without_flag_is_accepted(tmp_path: Path) -> None:
    # Info-ZIP and macOS write UTF-8 names without setting the flag
    path = _patch_name(make_zip(tmp_path / "a.zip", [("XX.txt", b"x")]), b"XX", "é".encode())
    assert inspect(path) == [Member("é.txt", 1)]


def test_zip_duplicates_and_too_many_members_are_refused(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = make_zip(tmp_path / "a.zip", [("a", b"1"), ("a", b"2")])
    refused(path, "archive.duplicate", "appears twice")
    path = make_zip(tmp_path / "b.zip", [(f"f{i}", b"") for i in range(4)])
    refused(path, "archive.too_many_members", "more than 3", limits=ArchiveLimits(max_members=3))


def test_zip_declaring_a_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", [("big", b"x" * 200)], zipfile.ZIP_STORED)
    refused(path, "archive.file_too_large", limits=ArchiveLimits(max_file_bytes=100))


def test_encrypted_zip_member_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", [("secret", b"x")], zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.index(sig) + at
        data[i] |= 1
    path.write_bytes(bytes(data))
    refused(path, "archive.encrypted", "without a password")


# --- all or nothing, and other inputs -------------------------------------------------------


def test_failed_extract_leaves_nothing_behind(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "a.tar", [("good.txt", b"x" * 1000), ("/abs", b"y")])
    (tmp_path / "out").mkdir()
    with pytest.raises(ArchiveError):
        extract(path, tmp_path / "out" / "dest")
    assert list((tmp_path / "out").iterdir()) == []


def test_extract_never_overwrites(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "a.tar", [("x", b"1")])
    (tmp_path / "dest").mkdir()
    with pytest.raises(DataFileError, match="already exists"):
        extract(path, tmp_path / "dest")


@pytest.mark.parametrize("content", [b"", b"not an archive at all" * 30, b"\x1f\x8bgarbage"])
def test_unreadable_archives_are_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.tar").write_bytes(content)
    refused(tmp_path / "x.tar", "archive.corrupt", ".tar, .tar.gz or .zip")


def test_missing_archive_is_a_data_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        inspect(tmp_path / "nope.tar")


def test_archive_error_is_a_value_error_and_pickles() -> None:
    error = ArchiveError("msg", "archive.ratio", "m")
    assert isinstance(error, ConformError) and isinstance(error, ValueError)
    again: ArchiveError = pickle.loads(pickle.dumps(error))
    assert (str(again), again.code, again.member) == ("msg", "archive.ratio", "m")


@pytest.mark.parametrize("change", [dict(max_members=0), dict(max_ratio=-1.0),
                                    dict(max_file_bytes=True), dict(ratio_floor_bytes=-1)])
def test_limits_must_be_positive(change: dict[str, object]) -> None:
    with pytest.raises(ParameterError, match="ArchiveLimits"):
        ArchiveLimits(**change)  # type: ignore[arg-type]


def test_default_limits_match_the_brief() -> None:
    limits = ArchiveLimits()
    assert (limits.max_members, limits.max_file_bytes, limits.max_total_bytes,
            limits.max_ratio) == (100_000, 50 << 30, 200 << 30, 200)

