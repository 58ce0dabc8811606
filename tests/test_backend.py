"""The backend contract is declared (`bench.scheduler.backend.Backend`) and both backends meet
it; Ray honours --device and asks for GPUs under auto when the cluster has them."""

from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.scheduler.backend import Backend
from bench.scheduler.local import LocalBackend
from bench.scheduler.ray_backend import RayBackend, ray_resources
from bench.scheduler.slots import make_slots


def test_the_local_backend_meets_the_contract() -> None:
    backend = LocalBackend(make_slots("cpu", 1, 1, 1, None))
    try:
        assert isinstance(backend, Backend)
        assert backend.inline and backend.capacity == 1
    finally:
        backend.shutdown()


def test_the_ray_backend_declares_every_member_of_the_contract() -> None:
    for member in ("submit", "next_slot", "shutdown"):
        assert callable(getattr(RayBackend, member))
    assert RayBackend.inline is False


@pytest.mark.parametrize(("device", "gpus", "per_gpu", "expected"), [
    ("cpu", 4, 1, (0.0, "cpu")),       # --device cpu never asks for a GPU
    ("auto", 0, 1, (0.0, "cpu")),      # auto on a CPU-only cluster
    ("auto", 2, 2, (0.5, "cuda:0")),   # auto with GPUs: two jobs share each
    ("cuda", 1, 1, (1.0, "cuda:0")),
])
def test_ray_resources_follow_the_device_flag(device: str, gpus: float, per_gpu: int,
                                              expected: tuple[float, str]) -> None:
    assert ray_resources(device, gpus, per_gpu) == expected


def test_cuda_on_a_cluster_without_gpus_is_a_clear_error() -> None:
    with pytest.raises(BenchError, match="has no GPU"):
        ray_resources("cuda", 0, 1)
