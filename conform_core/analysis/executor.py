"""Where the tasks of ``conform fit`` run: one after another in this process, or on Dask.

The runner builds its task graph once, against an :class:`Executor`. A
:class:`SerialExecutor` calls each task as it is submitted; a :class:`DaskExecutor`
submits it to a Dask cluster. Either reports each finished task's label to a progress
callback.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["Executor", "SerialExecutor", "DaskExecutor", "open_executor", "connect_scheduler",
           "Progress"]

Progress = Callable[[str], None]
"""Called with a short label (``"sub-01: pca"``) each time a task finishes."""


def _silent(label: str) -> None:
    """Report nothing (the default progress callback)."""


class Executor(Protocol):
    """Runs the tasks of an analysis.

    ``submit(fn, *args, key=..., label=...)`` returns a handle. An argument may be a
    handle returned by an earlier ``submit``, also inside a dict, list or tuple: ``fn``
    receives that task's result in its place. ``wait(handles)`` returns once every task
    has finished, and ``result(handle)`` is the task's return value. Each task's
    ``label`` goes to the executor's progress callback once, when the task has finished.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, key: str, label: str) -> Any:
        """Run ``fn(*args)`` as the task ``key``; return its handle."""

    def wait(self, handles: Iterable[Any]) -> None:
        """Return once the tasks of ``handles`` have finished."""

    def result(self, handle: Any) -> Any:
        """Return the return value of the task of ``handle``."""


class SerialExecutor:
    """Run each task when it is submitted, in this process; a task's handle is its result.

    Parameters
    ----------
    progress : callable or None, default=None
        Called with each task's label right after the task returns.

    Examples
    --------
    >>> executor = SerialExecutor()
    >>> two = executor.submit(len, "ab", key="len", label="length")
    >>> executor.result(executor.submit(pow, two, 3, key="pow", label="power"))
    8
    """

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress or _silent

    def submit(self, fn: Callable[..., Any], /, *args: Any, key: str, label: str) -> Any:
        """Call ``fn(*args)`` now, report ``label``, and return the result (``key`` is unused)."""
        value = fn(*args)
        self.progress(label)
        return value

    def wait(self, handles: Iterable[Any]) -> None:
        """Return at once: every task finished when it was submitted."""

    def result(self, handle: Any) -> Any:
        """``handle`` itself, which is the task's result."""
        return handle


class DaskExecutor:
    """Submit each task to a Dask cluster; a task's handle is its ``Future``.

    Dask passes a future given as an argument (also inside a dict, list or tuple) to the
    task as its result, so tasks wait for the ones they need, wherever those ran.

    Parameters
    ----------
    client : dask.distributed.Client
        The cluster's client; the caller closes it.
    progress : callable or None, default=None
        Called with each task's label as the task finishes (during :meth:`wait`).

    Notes
    -----
    Keys get a suffix unique to this executor, so two analyses sharing one scheduler
    never take each other's results for their own.
    """

    def __init__(self, client: Any, progress: Progress | None = None) -> None:
        self.client = client
        self.progress = progress or _silent
        self._run = uuid.uuid4().hex[:12]
        self._labels: dict[str, str] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, key: str, label: str) -> Any:
        """Submit ``fn(*args)`` under ``key`` (made unique to this executor); return its future."""
        future = self.client.submit(fn, *args, key=f"{key}-{self._run}", pure=False)
        self._labels[str(future.key)] = label
        return future

    def wait(self, handles: Iterable[Any]) -> None:
        """Report each task's label as it finishes; return when all have."""
        from dask.distributed import as_completed

        for future in as_completed(list(handles)):
            self.progress(self._labels.get(str(future.key), str(future.key)))

    def result(self, handle: Any) -> Any:
        """Return the future's result (a task that raised raises here)."""
        return handle.result()


@contextmanager
def open_executor(*, workers: int = 1, scheduler: str | None = None,
                  progress: Progress | None = None) -> Iterator[Executor]:
    """Yield the executor for ``conform fit --workers/--scheduler``, closed on exit.

    Parameters
    ----------
    workers : int, default=1
        1 runs serially in this process; more start a local Dask cluster with that many
        single-threaded worker processes.
    scheduler : str or None, default=None
        Address of an existing Dask scheduler; overrides ``workers``.
    progress : callable or None, default=None
        Called with each finished task's label.

    Yields
    ------
    Executor
        A :class:`SerialExecutor` or a :class:`DaskExecutor`. On leaving the block, by
        an error or an interrupt too, also one that arrives while the cluster is still
        starting, the client and the local cluster are closed.

    Raises
    ------
    ConformError
        If the scheduler cannot be reached (see :func:`connect_scheduler`).
    """
    if scheduler is None and workers <= 1:
        yield SerialExecutor(progress)
        return
    from dask.distributed import Client, LocalCluster

    cluster = client = None
    try:
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=50)
            client = Client(cluster)
        else:
            client = connect_scheduler(scheduler)
        yield DaskExecutor(client, progress)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def connect_scheduler(address: str, *, timeout: float = 10.0) -> Any:
    """Return a Dask client of the scheduler at ``address``, or a ConformError if it cannot be reached."""
    from dask.distributed import Client

    from ..exceptions import ConformError

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ConformError(
            f"Cannot reach the Dask scheduler at {address!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}). Check the address (e.g. tcp://HOST:8786) and that "
            "the scheduler is running, or give no scheduler address to run on a local cluster."
        ) from None
