"""The Ray backend: one Ray task per job, with its GPU and CPU needs declared.

``bench run SUITE --backend ray [--address HOST:PORT]`` runs the same DAG as the local
backend on a Ray cluster (or a local Ray instance when no address is given). Tasks run the
same worker functions with the same fixed thread count, so results are identical to the
local backend's. The driver stays the single MLflow writer.

A task whose node is lost (removed, crashed, preempted) or whose worker process dies is run
again elsewhere by Ray (`SYSTEM_RETRIES`; a job's own errors are results, never retried by Ray):
a train job resumes from its last saved state where the node saved it on storage the other
nodes share (the state folder beside the store), else starts over with the same seeds, so the
numbers are those of an uninterrupted run either way. A local instance binds 127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from bench.errors import BenchError
from bench.run import worker

SYSTEM_RETRIES = 3  # runs of a task after its node or worker process was lost


def _ray_job(fn: Callable[..., Any], threads: int, device: str, *args: Any) -> Any:
    worker.configure(threads)
    return fn(*args, device)  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU: cuda:0 is it


def ray_resources(device: str, cluster_gpus: float, jobs_per_gpu: int) -> tuple[float, str]:
    """(GPUs each task requests, the device its job runs on) for ``--device``: ``cuda`` needs
    GPUs in the cluster, ``auto`` uses them where the cluster has some, ``cpu`` never does."""
    if device == "cuda" and cluster_gpus <= 0:
        raise BenchError("--device cuda: the Ray cluster has no GPU. Use --device cpu or auto, or add GPU nodes.")
    use_gpu = device == "cuda" or (device == "auto" and cluster_gpus > 0)
    return (1.0 / jobs_per_gpu, "cuda:0") if use_gpu else (0.0, "cpu")


class RayBackend:
    """Submits jobs as Ray tasks (`bench.scheduler.backend.Backend`); capacity is the cluster's
    GPUs x jobs per GPU, or its CPUs per job."""

    inline = False

    def __init__(self, address: str | None, device: str, jobs_per_gpu: int, cpus_per_job: int) -> None:
        try:
            import ray
        except ImportError as exc:
            raise BenchError("--backend ray needs Ray: pip install 'fewshot-bench[ray]'.") from exc
        self.ray = ray
        if not ray.is_initialized():
            local = {"_node_ip_address": "127.0.0.1"} if address is None else {}
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **local)
        resources = ray.cluster_resources()
        gpus_per_job, self.device = ray_resources(device, resources.get("GPU", 0), jobs_per_gpu)
        self.threads = cpus_per_job
        if gpus_per_job > 0:
            self.capacity = max(1, int(resources.get("GPU", 0) / gpus_per_job))
        else:
            self.capacity = max(1, int(resources.get("CPU", 1) // cpus_per_job))
        self.task = ray.remote(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=SYSTEM_RETRIES,
                               retry_exceptions=False)(_ray_job)

    def next_slot(self) -> str:
        return f"ray:{self.device}"

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[Future, str]:
        ref = self.task.remote(fn, self.threads, self.device, *args)
        return ref.future(), self.next_slot()

    def shutdown(self, kill: bool = False) -> None:
        """Leave the cluster running (it may be shared); a local instance ends with the process."""
