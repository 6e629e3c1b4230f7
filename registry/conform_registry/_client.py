"""The registry's Python client: every API call, over httpx.

:class:`RegistryClient` speaks the HTTP API of :mod:`._api` (prefix ``/api/v1``). Refusals
come back as :class:`RegistryClientError` with the server's HTTP status, code, message and
fix (a :class:`~conform_core.exceptions.ConformError`, so ``conform registry ...`` prints it
in one line and exits 2); a server that cannot be reached gives one naming the URL.

Requests and API calls are in :mod:`._client_base`, transfers in :mod:`._client_transfer`
(:meth:`RegistryClient.upload_file`, :meth:`~RegistryClient.upload_tree`) and
:mod:`._client_pull` (:meth:`~RegistryClient.pull`).
Requests that can be repeated safely (reads, chunk uploads, starting and completing an
upload) are retried with backoff on a dropped connection or a 502/503/504 answer, so a
server restart in the middle of a large upload costs a pause, not the upload. A server
that refuses the very first connection is reported at once (it is not running, or the URL
is wrong).

Example::

    with RegistryClient("http://127.0.0.1:8765", token) as client:
        client.create_dataset("cam-mosaic", kind="mosaic")
        summary = client.upload_tree("cam-mosaic", "derivatives/mosaic")
        job = client.wait_job(summary.job["id"])
        print(job["state"], job["report"]["errors"])
"""

from __future__ import annotations

from typing import Any

from ._client_pull import PullMixin
from ._client_study import StudyMixin
from ._client_transfer import UploadMixin
from ._client_types import (
    FileTransfer,
    PullResult,
    RegistryClientError,
    TransferProgress,
    UploadSummary,
)
from ._settings import ClientSettings, load_settings

__all__ = ["FileTransfer", "PullResult", "RegistryClient", "RegistryClientError", "TransferProgress",
           "UploadSummary"]

class RegistryClient(UploadMixin, PullMixin, StudyMixin):
    """A client of one registry server.

    Parameters
    ----------
    url : str
        The server, e.g. ``"http://127.0.0.1:8765"`` (a trailing ``/api/v1`` is dropped).
    token : str or None, default=None
        The API token; None reads only published data.
    timeout : float, default=60.0
        Seconds to wait for a connection or for an answer (completing an upload waits
        longer: the server re-hashes the whole file).
    retries : int, default=5
        Retries of a repeatable request after a dropped connection or a 502/503/504 answer,
        with backoff (0.5 s doubling up to 4 s).
    workers : int, default=4
        Parallel chunk uploads of one file, and parallel file downloads of a pull.
    transport : httpx.BaseTransport or None, default=None
        A custom transport (tests count or break requests with one).

    Examples
    --------
    >>> with RegistryClient("http://127.0.0.1:8765") as client:  # doctest: +SKIP
    ...     [d["name"] for d in client.list_datasets()]
    ['cam-protocol']
    """

    @classmethod
    def from_settings(cls, settings: ClientSettings | None = None, **kwargs: Any) -> RegistryClient:
        """Return a client for :func:`~conform_registry._settings.load_settings`'s URL and token.

        Parameters
        ----------
        settings : ClientSettings or None, default=None
            The settings (None: environment, then the file ``conform registry login`` wrote).
        **kwargs
            Passed to the constructor (``timeout``, ``workers``, ...).

        Returns
        -------
        RegistryClient
            The client.
        """
        settings = settings or load_settings()
        return cls(settings.url, settings.token, **kwargs)
