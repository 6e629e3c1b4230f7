"""The study loop's data side, through a real server: contribute, validate, publish, ingest.

Sites request protocols, upload what a simulated site that ran them would
(conform_registry.testing), a curator publishes, and the contribution joins the study's
catalog (MOSAIC subject files, one split for all subjects) and its coverage. On SQLite
(the reliability suite covers PostgreSQL for the storage underneath; the study state's
compare-and-swap is tested on both in test_service_study.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conform_registry._api import create_app
from conform_registry._client import RegistryClient
from conform_registry._client_types import RegistryClientError
from conform_registry._config import RegistryConfig
from conform_registry._service import RegistryService
from conform_registry.testing import simulate_contribution

N_POOL = 160
IDS = [f"img{i:03d}" for i in range(N_POOL)]
PARAMS = {"core": 6, "overlap": 2, "repeats": 2, "sessions": 2, "runs": 2, "core_sessions": 1,
          "min_session_repeats": 1, "seed": 3}
MINUTES = 3.0


@pytest.fixture(scope="module")
def pool() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((N_POOL, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, serve_app, pool) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("ingest")
    service = RegistryService(RegistryConfig(data_dir=folder))
    service.startup()
    tokens = {site: service.create_token(site, role) for site, role in
              (("cam", "contributor"), ("oxf", "contributor"), ("hq", "curator"))}
    try:
        with serve_app(create_app(service, poll_s=0.1)) as url:
            clients = {site: RegistryClient(url, token) for site, token in tokens.items()}
            clients["hq"].create_study("vision", pool, IDS, params=PARAMS)
            yield SimpleNamespace(url=url, service=service, clients=clients, folder=folder)
            for client in clients.values():
                client.close()
    finally:
        service.close()


def contribute(registry, site: str, tmp: Path, pool, *, name: str, follow: bool = True,
               deviate: bool = False, edit=None) -> tuple[dict, dict]:
    """Request a protocol as ``site``, simulate the data, upload; return (request, job)."""
    client = registry.clients[site]
    done = client.request_protocol("vision", 2, MINUTES)
    package = tmp / f"{name}-package"
    client.pull(done["dataset"], 1, package)
    if edit is not None:
        edit(package)
    data = tmp / name
    simulate_contribution(package, data, embeddings=pool, ids=IDS, seed=7, deviate=deviate)
    client.create_dataset(name, None, f"{done['dataset']}@1" if follow else None, study="vision")
    summary = client.upload_tree(name, [data])
    job = client.wait_job(summary.job["id"], timeout=120)
    return done, job


def test_a_contribution_that_follows_its_protocol_joins_the_catalog(registry, pool, tmp_path):
    done, job = contribute(registry, "cam", tmp_path, pool, name="cam-vision")
    assert job["state"] == "passed", job["report"]
    published = registry.clients["hq"].publish("cam-vision")
    ingest = published["ingest"]
    assert ingest["ingested"] and ingest["catalog_version"] == 1
    assert sorted(ingest["recorded"]) == sorted(done["participants"])  # the study's labels
    coverage = registry.clients["cam"].study_coverage("vision", table=False)
    assert coverage["collected"]["n_participants"] == 2 and coverage["collected"]["radius"] > 0

    catalog = tmp_path / "catalog"
    registry.clients["cam"].pull("vision-catalog", 1, catalog)
    names = sorted(p.name for p in catalog.iterdir())
    assert names == sorted([f"{label}_CONFORM.hdf5" for label in done["participants"]]
                           + ["catalog.json", "stimuli.tsv", "test_naturalistic.json",
                              "train_naturalistic.json"])
    info = json.loads((catalog / "catalog.json").read_text())
    assert not set(info["test"]) & set(info["train"])
    assert set(registry.service.get_study(None, "vision")["core"]) <= set(info["test"])

    from conform_mosaic import MosaicDataset

    dataset = MosaicDataset(location=str(catalog), rois=list(range(1000, 1010)))
    for name in dataset.subjects():
        subject = dataset.load_subject(name)
        assert len(subject.test_ids) and not set(subject.test_ids) & set(subject.train_ids)

    again = registry.service.ingest(_version_id(registry.service, "cam-vision", 1))
    assert again["already"] and again["catalog_version"] == 1


def _version_id(service, name: str, number: int) -> int:
    from sqlalchemy import select

    from conform_registry._db import Dataset, Version

    with service._tx() as session:
        return session.scalar(select(Version.id).join(Dataset).where(
            Dataset.name == name, Version.number == number))


def test_data_that_do_not_follow_the_protocol_are_refused_with_the_reason(registry, pool,
                                                                          tmp_path):
    _, job = contribute(registry, "oxf", tmp_path, pool, name="oxf-vision", deviate=True)
    assert job["state"] == "failed"
    codes = [e["code"] for e in job["report"]["errors"]]
    assert codes == ["events.protocol_mismatch"] and "run-01" in job["report"]["errors"][0]["path"]
    with pytest.raises(RegistryClientError) as info:
        registry.clients["hq"].publish("oxf-vision")
    assert info.value.code == "publish.validation_failed"


def test_locally_directed_data_count_under_the_site_and_bad_splits_stay_out(registry, pool,
                                                                           tmp_path):
    def recode(package: Path) -> None:  # another dataset code: subjects do not clash
        (package / "stimuli.tsv").unlink()  # without the core marked, every trial is "train"

    _, job = contribute(registry, "oxf", tmp_path, pool, name="oxf-local", follow=False,
                        edit=recode)
    assert job["state"] == "passed", job["report"]
    before = registry.service.get_study(None, "vision")["catalog_version"]  # any test order
    published = registry.clients["hq"].publish("oxf-local")
    ingest = published["ingest"]
    assert ingest["ingested"] is False and "test image of the study" in ingest["reason"]
    assert registry.service.get_study(None, "vision")["catalog_version"] == before


def test_a_contribution_to_an_unknown_study_or_with_another_studys_protocol_is_refused(registry):
    with pytest.raises(RegistryClientError) as info:
        registry.clients["cam"].create_dataset("lost", None, None, study="nope")
    assert info.value.code == "study.not_found" and info.value.status == 404
    with pytest.raises(RegistryClientError) as info:
        registry.clients["cam"].create_dataset("wrong", "bids", "cam-vision@1", study="vision")
    assert info.value.code == "dataset.bad_protocol"
