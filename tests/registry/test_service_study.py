"""Studies in the service: creation, protocol requests under concurrency, coverage, release.

Every case runs on SQLite and on PostgreSQL (``module_db_url``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from conform_registry._config import RegistryConfig
from conform_registry._service import RegistryError, RegistryService
from stimulus_design import check_package

# Room for every request of this module in any order: the tests together allocate 12
# participants x 31 non-core images; 294 non-core images at quota 2 leave a third spare (at 200
# the last request could find too few distinct free images, depending on the order).
N_POOL = 300
IDS = [f"img{i:03d}" for i in range(N_POOL)]
PARAMS = {"core": 6, "overlap": 2, "repeats": 2, "sessions": 2, "runs": 2, "core_sessions": 1,
          "min_session_repeats": 1, "seed": 3}
MINUTES = 3.0


def within_quotas(state) -> bool:
    """Whether no image is allocated beyond its quota (core images, quota -1, are shared)."""
    quotas = state.quotas()
    return bool(np.all(state.allocated_counts()[quotas >= 0] <= quotas[quotas >= 0]))


@pytest.fixture(scope="module")
def pool() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N_POOL, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def env(module_db_url: str, tmp_path_factory: pytest.TempPathFactory,
        pool: np.ndarray) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("study-service")
    service = RegistryService(RegistryConfig(data_dir=folder, db_url=module_db_url))
    service.startup()
    who = {site: service.authenticate(service.create_token(site, role)) for site, role in
           (("cam", "contributor"), ("oxf", "contributor"), ("ucl", "contributor"),
            ("hq", "curator"))}
    service.create_study(who["hq"], "vision", embeddings=pool, ids=IDS, params=PARAMS,
                         description="test pool")
    try:
        yield SimpleNamespace(service=service, who=who, folder=folder)
    finally:
        service.close()


def test_a_curator_creates_a_study_with_its_empty_catalog(env, pool):
    study = env.service.get_study(None, "vision")
    assert study["n_pool"] == N_POOL and study["catalog"] == "vision-catalog"
    assert study["params"]["core"] == 6 and len(study["core"]) == 6
    assert {"name": "vision-catalog", "role": "catalog"} in study["datasets"]
    catalog = env.service.get_dataset(env.who["hq"], "vision-catalog")
    assert catalog["versions"] == [] and catalog["kind"] == "mosaic"
    assert "vision" in [s["name"] for s in env.service.list_studies(None)]
    x = env.service.study_embeddings("vision")
    assert np.array_equal(x, pool)  # kept as given


@pytest.mark.parametrize(("who", "name", "params", "status", "code"), [
    ("cam", "other", PARAMS, 403, "auth.forbidden"),
    ("hq", "vision", PARAMS, 409, "study.exists"),
    ("hq", "Bad Name", PARAMS, 422, "study.invalid"),
    ("hq", "other", {**PARAMS, "colour": 1}, 422, "study.bad_params"),
    ("hq", "other", {**PARAMS, "core": 10_000}, 422, "study.invalid"),
])
def test_bad_studies_are_refused_with_the_reason(env, pool, who, name, params, status, code):
    with pytest.raises(RegistryError) as info:
        env.service.create_study(env.who[who], name, embeddings=pool, ids=IDS, params=params)
    assert (info.value.status, info.value.code) == (status, code), info.value.message


def test_a_request_publishes_a_package_the_design_check_accepts(env, tmp_path):
    done = env.service.request_protocol(env.who["cam"], "vision", n_participants=2,
                                        session_minutes=MINUTES)
    assert done["site"] == "cam" and len(done["participants"]) == 2 and done["version"] == 1
    version = env.service.get_version(None, done["dataset"], 1)
    assert version["validation"]["state"] == "passed"
    for entry in version["files"]:
        ref = env.service.file_ref(None, done["dataset"], 1, entry["path"])
        target = tmp_path / ref.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with env.service.store.open(ref.sha256) as handle:
            target.write_bytes(handle.read())
    assert check_package(tmp_path) == []
    study = env.service.get_study(None, "vision")
    mine = [r for r in study["requests_list"] if r["request"] == done["request"]]
    assert mine[0]["dataset"] == done["dataset"] and mine[0]["participants"] == done["participants"]


def test_concurrent_requests_never_share_a_slot(env):
    results, errors = [], []

    def ask(site: str) -> None:
        try:
            results.append(env.service.request_protocol(env.who[site], "vision", n_participants=2,
                                                        session_minutes=MINUTES))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(site,)) for site in ("cam", "oxf", "ucl", "oxf")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and len(results) == 4
    labels = [label for r in results for label in r["participants"]]
    assert len(labels) == len(set(labels)) == 8
    assert len({r["request"] for r in results}) == 4
    state = env.service.study_state("vision")
    assert within_quotas(state)
    by_label = {p.label: p for p in state.participants}
    for r in results:
        assert {by_label[label].site for label in r["participants"]} == {r["site"]}


def test_coverage_reports_allocated_and_collected(env):
    # its own request: the tests of this module run in any order (pytest-randomly)
    env.service.request_protocol(env.who["oxf"], "vision", n_participants=1,
                                 session_minutes=MINUTES)
    coverage = env.service.study_coverage(None, "vision", table=False)
    assert coverage["allocated"]["n_images"] > 6 and coverage["allocated"]["radius"] is not None
    assert coverage["collected"]["n_images"] == 0 and coverage["collected"]["radius"] is None
    assert "table" not in coverage["allocated"]


@pytest.mark.parametrize(("n", "minutes", "code"), [(0, MINUTES, "request.bad_participants"),
                                                    (2, -1, "request.bad_minutes"),
                                                    (2, 0.5, "request.invalid")])
def test_bad_requests_are_refused_before_anything_is_allocated(env, n, minutes, code):
    before = env.service.study_state("vision").revision
    with pytest.raises(RegistryError) as info:
        env.service.request_protocol(env.who["cam"], "vision", n_participants=n,
                                     session_minutes=minutes)
    assert info.value.code == code and info.value.status == 422, info.value.message
    assert env.service.study_state("vision").revision == before


def test_a_package_that_cannot_be_published_gives_its_slots_back(env, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(env.service, "_publish_package", broken)
    with pytest.raises(OSError, match="disk full"):
        env.service.request_protocol(env.who["ucl"], "vision", n_participants=1,
                                     session_minutes=MINUTES)
    state = env.service.study_state("vision")
    assert state.participants[-1].status == "released"
    assert within_quotas(state)
