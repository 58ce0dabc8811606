"""The Ray backend: one Ray task per job, with its GPU and CPU needs declared.

``bench run SUITE --backend ray [--address HOST:PORT]`` runs the same DAG as the local
backend on a Ray cluster (or a local Ray instance when no address is given). Tasks run the
same worker functions with the same fixed thread count, so results are identical to the
local backend's. The driver stays the single MLflow writer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from bench import worker
from bench.errors import BenchError


def _ray_job(fn: Callable[..., Any], threads: int, *args: Any) -> Any:
    import torch

    worker.configure(threads)
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    return fn(*args, device)


class RayBackend:
    """Submits jobs as Ray tasks; capacity is the cluster's CPUs (or GPUs) per job."""

    def __init__(self, address: str | None, gpus_per_job: float, cpus_per_job: int) -> None:
        try:
            import ray
        except ImportError as exc:
            raise BenchError("--backend ray needs Ray: pip install 'fewshot-bench[ray]'.") from exc
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        resources = ray.cluster_resources()
        self.threads = cpus_per_job
        if gpus_per_job > 0:
            self.capacity = max(1, int(resources.get("GPU", 0) / gpus_per_job))
        else:
            self.capacity = max(1, int(resources.get("CPU", 1) // cpus_per_job))
        self.task = ray.remote(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=0)(_ray_job)

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[Future, str]:
        ref = self.task.remote(fn, self.threads, *args)
        return ref.future(), "ray"

    def shutdown(self, kill: bool = False) -> None:
        """Leave the cluster running (it may be shared); a local instance ends with the process."""
