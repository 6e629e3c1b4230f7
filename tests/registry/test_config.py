import dataclasses
from pathlib import Path

import pytest

from conform_core.exceptions import ParameterError
from conform_registry._config import GiB, MiB, RegistryConfig, default_data_dir, parse_size


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("CONFORM_REGISTRY_HOME", "CONFORM_REGISTRY_DB_URL", "CONFORM_REGISTRY_STORE_URL",
                 "CONFORM_REGISTRY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def test_defaults_derive_from_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CONFORM_REGISTRY_HOME", str(tmp_path / "home"))
    config = RegistryConfig()
    assert config.data_dir == tmp_path / "home"
    assert config.db_url == f"sqlite:///{tmp_path / 'home' / 'registry.sqlite3'}"
    assert config.store_url == f"file://{tmp_path / 'home' / 'blobs'}"
    assert (config.max_file_bytes, config.max_upload_chunk_bytes, config.chunk_bytes) == (
        50 * GiB, 64 * MiB, 8 * MiB)
    assert config.pack_threshold_files == 1000
    assert (config.archive_max_members, config.archive_max_ratio) == (100_000, 200.0)


def test_default_data_folder_follows_xdg_without_the_home_variable(tmp_path):
    assert default_data_dir() == tmp_path / "xdg" / "conform" / "registry"
    assert default_data_dir({}) == Path("~/.local/share/conform/registry").expanduser()
    assert RegistryConfig().data_dir == tmp_path / "xdg" / "conform" / "registry"


def test_the_config_is_frozen(tmp_path):
    config = RegistryConfig(data_dir=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.chunk_bytes = 1  # type: ignore[misc]


@pytest.mark.parametrize(("text", "expected"), [
    (123, 123), ("123", 123), ("8 MiB", 8 * MiB), ("8MiB", 8 * MiB), ("2 gb", 2_000_000_000),
    ("1.5 KiB", 1536), ("50 GiB", 50 * GiB), ("7 B", 7),
])
def test_parse_size_reads_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["8 MiBs", "lots", -1, 1.5, True, None, "-3 MB"])
def test_parse_size_refuses_bad_values_and_names_the_key(bad):
    with pytest.raises(ParameterError, match="chunk_bytes") as info:
        parse_size(bad, key="chunk_bytes")
    assert "MiB" in str(info.value) or "negative" in str(info.value)


def test_sizes_may_be_strings(tmp_path):
    config = RegistryConfig(data_dir=tmp_path, max_file_bytes="2 GiB", chunk_bytes="1 MiB")
    assert (config.max_file_bytes, config.chunk_bytes) == (2 * GiB, MiB)


@pytest.mark.parametrize(("key", "value", "words"), [
    ("max_file_bytes", 0, "at least 1 byte"),
    ("pack_threshold_files", 0, "[1, inf)"),
    ("archive_max_members", "many", "[1, inf)"),
    ("archive_max_ratio", 0.5, "[1, inf)"),
    ("db_url", "registry.sqlite3", "scheme://"),
    ("store_url", "relative/blobs", "scheme://"),
])
def test_bad_values_name_the_key_and_the_fix(tmp_path, key, value, words):
    with pytest.raises(ParameterError) as info:
        RegistryConfig(data_dir=tmp_path, **{key: value})
    message = str(info.value)
    assert key in message and words in message and "RegistryConfig" in message


def test_a_chunk_larger_than_the_server_accepts_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="chunk_bytes=.*max_upload_chunk_bytes") as info:
        RegistryConfig(data_dir=tmp_path, chunk_bytes="128 MiB")
    assert "Lower chunk_bytes or raise max_upload_chunk_bytes" in str(info.value)


def test_store_url_may_be_an_absolute_path_or_memory(tmp_path):
    assert RegistryConfig(data_dir=tmp_path, store_url=str(tmp_path / "b")).store_url == (
        f"file://{tmp_path / 'b'}")
    assert RegistryConfig(data_dir=tmp_path, store_url="memory://blobs").store_url == "memory://blobs"


def test_overrides_move_derived_urls_with_the_data_folder(tmp_path):
    config = RegistryConfig(data_dir=tmp_path / "a")
    moved = config.with_overrides(data_dir=tmp_path / "b", chunk_bytes=None)
    assert moved.db_url == f"sqlite:///{tmp_path / 'b' / 'registry.sqlite3'}"
    assert moved.store_url == f"file://{tmp_path / 'b' / 'blobs'}"
    assert moved.chunk_bytes == config.chunk_bytes
    explicit = RegistryConfig(data_dir=tmp_path / "a", db_url="postgresql://h/db")
    assert explicit.with_overrides(data_dir=tmp_path / "b").db_url == "postgresql://h/db"


def test_overrides_refuse_unknown_names_with_a_suggestion(tmp_path):
    with pytest.raises(ParameterError, match="Did you mean 'chunk_bytes'"):
        RegistryConfig(data_dir=tmp_path).with_overrides(chunk_byte=5)


def test_from_toml_reads_a_registry_table_and_resolves_relative_paths(tmp_path):
    path = tmp_path / "conf" / "registry.toml"
    path.parent.mkdir()
    path.write_text('[registry]\ndata_dir = "data"\nmax_upload_chunk_bytes = "16 MiB"\n'
                    'chunk_bytes = "4 MiB"\nstore_url = "memory://x"\n', encoding="utf-8")
    config = RegistryConfig.from_toml(path, pack_threshold_files=10)
    assert config.data_dir == tmp_path / "conf" / "data"
    assert config.db_url.endswith("conf/data/registry.sqlite3")
    assert (config.max_upload_chunk_bytes, config.chunk_bytes) == (16 * MiB, 4 * MiB)
    assert (config.store_url, config.pack_threshold_files) == ("memory://x", 10)


def test_from_toml_reads_top_level_keys(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(f'data_dir = "{tmp_path}"\narchive_max_ratio = 50\n', encoding="utf-8")
    assert RegistryConfig.from_toml(path).archive_max_ratio == 50.0


@pytest.mark.parametrize(("text", "words"), [
    ("chunk_bites = 5\n", "Unknown registry setting 'chunk_bites'.*Did you mean 'chunk_bytes'"),
    ("max_file_bytes = '5 zettabytes'\n", "r.toml.*max_file_bytes"),
    ("not toml at all\n", "Cannot read the registry settings file.*r.toml"),
])
def test_from_toml_errors_name_the_file_and_the_key(tmp_path, text, words):
    path = tmp_path / "r.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError, match=words):
        RegistryConfig.from_toml(path)


def test_from_toml_reports_a_missing_file(tmp_path):
    with pytest.raises(ParameterError, match="Cannot read"):
        RegistryConfig.from_toml(tmp_path / "missing.toml")


def test_from_env_layers_file_variables_and_overrides(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('chunk_bytes = "2 MiB"\n', encoding="utf-8")
    env = {"CONFORM_REGISTRY_CONFIG": str(path), "CONFORM_REGISTRY_HOME": str(tmp_path / "h"),
           "CONFORM_REGISTRY_STORE_URL": "memory://env"}
    config = RegistryConfig.from_env(env, db_url="sqlite:///x.db")
    assert config.chunk_bytes == 2 * MiB
    assert config.data_dir == tmp_path / "h"
    assert (config.store_url, config.db_url) == ("memory://env", "sqlite:///x.db")
    assert RegistryConfig.from_env({"CONFORM_REGISTRY_HOME": str(tmp_path)}).data_dir == tmp_path


def test_archive_limits_carry_the_settings(tmp_path):
    config = RegistryConfig(data_dir=tmp_path, archive_max_members=7, archive_max_ratio=3,
                            archive_max_total_bytes="1 GiB", max_file_bytes="10 MiB")
    limits = config.archive_limits
    assert (limits.max_members, limits.max_ratio, limits.max_total_bytes, limits.max_file_bytes) == (
        7, 3.0, GiB, 10 * MiB)
