"""A request's protocol package: the ``conform design`` format, global labels, checked quotas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conform_core.exceptions import ParameterError
from stimulus_design import (
    DesignParams,
    allocate_more,
    check_package,
    create_study,
    write_protocol,
)
from stimulus_design._package import CONDITION_COLUMNS, EVENT_COLUMNS

from .conftest import clustered

PARAMS = DesignParams(sites=2, participants_per_site=3, core=6, overlap=2, core_repeats=2,
                      repeats=2, sessions=2, runs=2, core_sessions=1, min_session_repeats=1,
                      seed=3)
X = clustered(500)
IDS = [f"img{i:04d}" for i in range(500)]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    """Packages of requests 1 (3 participants) and 3 (1, completing images of request 2)."""
    root = tmp_path_factory.mktemp("requests")
    state = create_study(IDS, X, PARAMS)
    first, state = allocate_more(state, X, 3, 2.0, site="oxford", seed=0)
    one = write_protocol(state, first, root / "one", embeddings=X,
                         sources=[f"images/{i}.png" for i in IDS])
    _, state = allocate_more(state, X, 1, 2.0, site="cam", seed=0)    # 20 images half filled
    second, state = allocate_more(state, X, 1, 3.5, site="site-02", seed=0)
    two = write_protocol(state, second, root / "two", embeddings=X)
    return root / "one", root / "two", one, two


def test_request_packages_pass_check(packages):
    one, two, _, _ = packages
    assert check_package(one) == []
    assert check_package(two) == []


def test_package_has_the_files_of_conform_design_with_global_labels(packages):
    one, two, _, design = packages
    for name in ("design.json", "stimuli.tsv", "coverage.json", "coverage.png", "README.md",
                 "SHA256SUMS", "task-conform_events.json", "site-oxford/README.md"):
        assert (one / name).is_file(), name
    assert sorted(p.name for p in one.glob("site-oxford/sub-*")) == ["sub-01", "sub-02", "sub-03"]
    assert [p.name for p in two.glob("site-02/sub-*")] == ["sub-05"]
    events = two / "site-02/sub-05/ses-01/sub-05_ses-01_task-conform_run-01_events.tsv"
    conditions = events.with_name(events.name.replace("events.tsv", "conditions.csv"))
    assert events.read_text().splitlines()[0].split("\t") == list(EVENT_COLUMNS)
    assert conditions.read_text().splitlines()[0].split(",") == list(CONDITION_COLUMNS)
    assert design["request"]["participants"] == [{"label": "sub-05", "site": "02"}]
    assert "Protocol request 3" in (two / "README.md").read_text()


def test_sources_go_into_the_events(packages):
    one, _, _, _ = packages
    rows = (one / "stimuli.tsv").read_text().splitlines()[1:]
    assert all(r.split("\t")[1].startswith("images/") for r in rows)


def test_shared_images_record_who_has_them_elsewhere(packages):
    _, _, _, design = packages
    elsewhere = design["request"]["allocated_elsewhere"]
    # request 3's participant completes the 20 images request 2's participant has
    assert len(elsewhere) == 20 and set(elsewhere.values()) == {1}


def test_check_reports_an_image_beyond_its_quota(packages, tmp_path):
    import shutil

    _, two, _, _ = packages
    broken = tmp_path / "broken"
    shutil.copytree(two, broken)
    meta = json.loads((broken / "design.json").read_text())
    sid = next(iter(meta["request"]["allocated_elsewhere"]))
    meta["request"]["allocated_elsewhere"][sid] = 2
    (broken / "design.json").write_text(json.dumps(meta))
    problems = check_package(broken)
    assert any(f"image {sid} is assigned to 1 participants here and 2 elsewhere; its quota "
               "is 2" in p for p in problems)


def test_only_participants_of_the_state_are_written(packages, tmp_path):
    state = create_study(IDS, X, PARAMS)
    new, after = allocate_more(state, X, 1, 2.0, site="a", seed=0)
    with pytest.raises(ParameterError, match="participants of this state"):
        write_protocol(state, new, tmp_path / "x", embeddings=X)
    with pytest.raises(ParameterError, match="one entry per pool row"):
        write_protocol(after, new, tmp_path / "x", embeddings=X, sources=["a.png"])
    assert not (tmp_path / "x").exists()
