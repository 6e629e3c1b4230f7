"""Executors: a serial one that calls each task at once, a Dask one that submits it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conform_core.analysis.executor import DaskExecutor, SerialExecutor, open_executor


def _total(parts: dict[str, int], extra: list[int]) -> int:
    return sum(parts.values()) + sum(extra)


def test_serial_executor_runs_each_task_when_submitted_and_reports_it():
    labels: list[str] = []
    executor = SerialExecutor(labels.append)
    one = executor.submit(int, "1", key="one", label="made one")
    assert labels == ["made one"]  # before anything waits: progress stays live
    total = executor.submit(_total, {"a": one, "b": 2}, [one], key="total", label="summed")
    executor.wait([one, total])
    assert executor.result(total) == 4 and labels == ["made one", "summed"]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """An in-process Dask client (threads), enough to check how futures are passed on."""
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        yield client


def test_dask_executor_passes_results_of_futures_inside_arguments(client):
    labels: list[str] = []
    executor = DaskExecutor(client, labels.append)
    one = executor.submit(int, "1", key="one", label="made one")
    total = executor.submit(_total, {"a": one, "b": 2}, [one], key="total", label="summed")
    executor.wait([one, total])
    assert executor.result(total) == 4
    assert sorted(labels) == ["made one", "summed"]  # each task reported once


def test_two_dask_executors_on_one_scheduler_keep_their_results_apart(client):
    """Two analyses sharing a scheduler submit the same keys; neither gets the other's result."""
    first, second = DaskExecutor(client), DaskExecutor(client)
    a = first.submit(int, "1", key="prepare-sub-01", label="a")
    b = second.submit(int, "2", key="prepare-sub-01", label="b")
    first.wait([a])
    second.wait([b])
    assert (first.result(a), second.result(b)) == (1, 2)


class _Recorder:
    """Stands in for LocalCluster and Client: records that it was closed."""

    made: list[_Recorder] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.closed = False
        _Recorder.made.append(self)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_dask(monkeypatch: pytest.MonkeyPatch) -> list[_Recorder]:
    """LocalCluster and Client replaced by recorders (no cluster starts)."""
    pytest.importorskip("distributed")
    _Recorder.made = []
    monkeypatch.setattr("dask.distributed.LocalCluster", _Recorder)
    monkeypatch.setattr("dask.distributed.Client", _Recorder)
    return _Recorder.made


def test_a_local_cluster_is_closed_when_its_work_is_interrupted(fake_dask):
    with pytest.raises(KeyboardInterrupt), open_executor(workers=2) as executor:
        assert isinstance(executor, DaskExecutor)
        raise KeyboardInterrupt
    assert len(fake_dask) == 2 and all(made.closed for made in fake_dask)


def test_a_local_cluster_is_closed_when_interrupted_while_it_starts(fake_dask, monkeypatch):
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the cluster started, before the client did

    monkeypatch.setattr("dask.distributed.Client", interrupted)
    with pytest.raises(KeyboardInterrupt), open_executor(workers=2):
        pytest.fail("the block must not run")
    assert len(fake_dask) == 1 and fake_dask[0].closed


def test_one_worker_and_no_scheduler_run_serially(fake_dask):
    with open_executor(workers=1) as executor:
        assert isinstance(executor, SerialExecutor)
    assert fake_dask == []
