"""The `registry` dataset without a server: a cached version is read offline; else a clear error."""

from __future__ import annotations

import pytest

from conform_core.exceptions import DataFileError
from conform_core.plugins import default_registry
from conform_registry._dataset_plugin import RegistryDataset, cache_folder
from conform_registry.testing import cached_toy_dataset


def test_the_plugin_is_registered_as_a_dataset():
    assert default_registry().get("dataset", "registry") is RegistryDataset


def test_a_cached_version_is_read_without_the_network(tmp_path):
    dataset = cached_toy_dataset(tmp_path)
    assert dataset.subjects() == ["sub-01_TOY"]
    subject = dataset.load_subject("sub-01_TOY")
    assert subject.trials.n_units == 3 and len(subject.test_ids) == 2
    assert dataset.data_params()["version"] == 1


def test_cache_folders_are_per_server_dataset_and_version(tmp_path):
    one = cache_folder(tmp_path, "http://127.0.0.1:8765", "vision-catalog", 2)
    assert one == tmp_path / "127.0.0.1_8765" / "vision-catalog" / "v2"
    assert cache_folder(tmp_path, "https://reg.example.org", "vision-catalog", 3).parent == \
        tmp_path / "reg.example.org" / "vision-catalog"


def test_a_server_that_cannot_be_reached_is_named(tmp_path):
    dataset = RegistryDataset(location="http://127.0.0.1:9", name="vision-catalog",
                              version="latest", cache_dir=str(tmp_path))
    with pytest.raises(DataFileError, match=r"http://127\.0\.0\.1:9"):
        dataset.subjects()


@pytest.mark.parametrize("version", [0, "newest", True])
def test_bad_versions_are_refused(version):
    with pytest.raises(Exception, match="version"):
        RegistryDataset(name="x", version=version).check_params()
