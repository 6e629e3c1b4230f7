"""torch, imported through :func:`conform_core.optional.require`, and thread control."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conform_core.optional import require

torch: Any = require("torch", purpose="the BraInCoRL encoder", extra="braincorl")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (None: leave torch's setting), then restore.

    On a small machine shared with other jobs, more than one thread can make a step of a
    small model 10-75x slower (OpenMP threads spin while they wait for a core), so conform
    runs torch with one thread unless asked otherwise.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str) -> Any:
    """Return ``torch.device(device)``, refusing ``cuda`` where no GPU is present."""
    from conform_core.exceptions import ParameterError

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(param="device", value=device, owner="BraInCoRL",
                             allowed="'cpu' on this machine (torch sees no CUDA device)",
                             fix="Use --device cpu, or run on a machine with a GPU.")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ParameterError(param="device", value=device, owner="BraInCoRL",
                             allowed="'cpu', 'cuda' or 'cuda:N'",
                             fix="Use --device cpu.") from None
