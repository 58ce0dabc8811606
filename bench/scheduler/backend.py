"""The backend contract: what the DAG driver needs from whatever runs its jobs.

`bench.scheduler.local.LocalBackend` (processes on this machine) and
`bench.scheduler.ray_backend.RayBackend` (Ray tasks) implement it; a new backend implements
these members and nothing else (the driver reads no other attribute).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    """Attributes:
        capacity: jobs that may run at once (the driver never has more in flight).
        inline: True when `submit` runs the job in the caller's thread and returns when it is
            done (a single local slot): the driver then redraws progress from a thread.
    """

    capacity: int
    inline: bool

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[Future, str]:
        """Start ``fn(*args, device)`` on a free slot; its future and where it runs (``cpu0``)."""
        ...

    def next_slot(self) -> str:
        """The name of the slot the next `submit` will use (for the progress display)."""
        ...

    def shutdown(self, kill: bool = False) -> None:
        """Release the workers; ``kill`` stops running jobs at once (Ctrl-C, errors)."""
        ...
