"""Client settings: arguments, then environment, then the file `login` writes (0600, atomic)."""

from __future__ import annotations

import os
import stat

import pytest

from conform_core.exceptions import ParameterError
from conform_registry._settings import (
    DEFAULT_URL,
    check_url,
    load_settings,
    save_settings,
    settings_path,
)

TOKEN = "cfr_" + "a" * 43


def test_path_follows_xdg_config_home(tmp_path):
    assert settings_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "conform" / "registry.toml"
    assert settings_path({"HOME": "/x"}).parts[-3:] == (".config", "conform", "registry.toml")


def test_nothing_set_gives_the_default_url_and_no_token(tmp_path):
    found = load_settings(environ={}, path=tmp_path / "none.toml")
    assert (found.url, found.token, found.url_from, found.token_from) == (DEFAULT_URL, None, "default", None)


def test_environment_wins_over_the_file_and_arguments_win_over_both(tmp_path):
    file = save_settings("http://file.example:1", TOKEN, path=tmp_path / "r.toml")
    env = {"CONFORM_REGISTRY_URL": "http://env.example:2", "CONFORM_REGISTRY_TOKEN": "cfr_env"}
    assert load_settings(environ={}, path=file).url == "http://file.example:1"
    assert load_settings(environ={}, path=file).token == TOKEN
    found = load_settings(environ=env, path=file)
    assert (found.url, found.token, found.token_from) == ("http://env.example:2", "cfr_env",
                                                          "$CONFORM_REGISTRY_TOKEN")
    found = load_settings(url="http://arg.example:3/", token="cfr_arg", environ=env, path=file)
    assert (found.url, found.token, found.url_from) == ("http://arg.example:3", "cfr_arg", "argument")


def test_the_saved_token_never_goes_to_another_server(tmp_path):
    """A URL from the environment naming another server does not get the file's token."""
    file = save_settings("http://file.example:1", TOKEN, path=tmp_path / "r.toml")
    other = load_settings(environ={"CONFORM_REGISTRY_URL": "http://other.example"}, path=file)
    assert other.token is None
    same = load_settings(environ={"CONFORM_REGISTRY_URL": "http://file.example:1/api/v1/"}, path=file)
    assert same.token == TOKEN


def test_save_writes_a_private_file_atomically(tmp_path):
    folder = tmp_path / "cfg" / "conform"
    path = save_settings("http://127.0.0.1:8765", TOKEN, path=folder / "registry.toml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert os.listdir(folder) == ["registry.toml"]  # no temporary file left
    os.chmod(path, 0o644)
    save_settings("http://127.0.0.1:9", TOKEN, path=path)  # replacing keeps it private
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_settings(environ={}, path=path).url == "http://127.0.0.1:9"


def test_a_failed_save_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = save_settings("http://old.example", TOKEN, path=tmp_path / "registry.toml")
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        save_settings("http://new.example", TOKEN, path=path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["registry.toml"]


def test_a_readable_token_file_is_warned_about(tmp_path):
    path = save_settings("http://127.0.0.1:8765", TOKEN, path=tmp_path / "registry.toml")
    assert load_settings(environ={}, path=path).warning is None
    os.chmod(path, 0o644)
    warning = load_settings(environ={}, path=path).warning
    assert warning and "chmod 600" in warning and "0644" in warning


def test_a_broken_file_names_itself_and_the_fix(tmp_path):
    path = tmp_path / "registry.toml"
    path.write_text("url = [unclosed\n")
    with pytest.raises(ParameterError, match="is not valid TOML") as info:
        load_settings(environ={}, path=path)
    assert str(path) in str(info.value) and "conform registry login" in str(info.value)


@pytest.mark.parametrize("bad", ["", "127.0.0.1:8765", "ftp://host", "http://", None])
def test_bad_urls_are_refused_with_an_example(bad):
    with pytest.raises(ParameterError, match="http:// or https://"):
        check_url(bad)


def test_urls_are_normalised():
    assert check_url(" https://reg.example.org/api/v1/ ") == "https://reg.example.org"
    assert check_url("http://h:1/prefix/") == "http://h:1/prefix"


def test_bad_tokens_are_not_saved(tmp_path):
    with pytest.raises(ParameterError, match="token"):
        save_settings("http://h", "cfr_x\nurl = 'evil'", path=tmp_path / "r.toml")
    assert not (tmp_path / "r.toml").exists()


def test_repr_never_shows_the_token(tmp_path):
    found = load_settings(token=TOKEN, environ={}, path=tmp_path / "none.toml")
    assert TOKEN not in repr(found) and "cfr_aaaa..." in repr(found)
