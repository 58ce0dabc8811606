"""Where jobs can run: one slot per (GPU x jobs-per-GPU), or CPU slots with fixed threads.

``CUDA_VISIBLE_DEVICES`` is respected: slots are made from the GPUs it lists, and each slot's
worker process is pinned to its GPU through its own ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from bench.errors import BenchError


@dataclass(frozen=True)
class Slot:
    """One worker: the device string its jobs use, its environment and torch threads."""

    index: int
    device: str
    threads: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        gpu = self.env.get("CUDA_VISIBLE_DEVICES")
        return f"gpu{gpu}" if gpu else f"cpu{self.index}"


def visible_gpus() -> list[str]:
    """Physical GPU ids this process may use, in ``CUDA_VISIBLE_DEVICES`` order."""
    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()][: torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_jobs(gpu_index: int, jobs_per_gpu: int, memory_per_job_gb: float | None) -> int:
    """Jobs that share one GPU: ``jobs_per_gpu``, or as many as its free memory allows."""
    if memory_per_job_gb is None:
        return jobs_per_gpu
    free, _ = torch.cuda.mem_get_info(gpu_index)
    return max(1, int(free / (memory_per_job_gb * 2**30)))


def make_slots(device: str, workers: int | None, jobs_per_gpu: int = 1, threads: int = 1,
               memory_per_job_gb: float | None = None) -> list[Slot]:
    """The slots for ``--device`` (auto, cpu, cuda) and ``--workers`` (default: fill the machine)."""
    gpus = visible_gpus() if device in ("auto", "cuda") else []
    if device == "cuda" and not gpus:
        raise BenchError("--device cuda asks for a GPU but none is visible; use --device cpu or auto.")
    if gpus:
        slots: list[Slot] = []
        for i, gpu in enumerate(gpus):
            for _ in range(gpu_jobs(i, jobs_per_gpu, memory_per_job_gb)):
                slots.append(Slot(len(slots), "cuda:0", threads, {"CUDA_VISIBLE_DEVICES": gpu}))
        return slots[:workers] if workers else slots
    count = workers or max(1, (os.cpu_count() or 1) // threads)
    return [Slot(i, "cpu", threads, {"CUDA_VISIBLE_DEVICES": ""}) for i in range(count)]
