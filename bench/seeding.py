"""Per-purpose seeds derived from a run's identity, and the determinism switches.

Every random stream in a run (weight init, training episodes, test episodes, attack random
starts, corruptions) gets its own seed from `derive_seed(root, *identity)`, built on
`numpy.random.SeedSequence`. Streams therefore never depend on each other, on the order jobs
run in, or on which worker or GPU runs them. The only place global torch RNG state is touched
is `torch_rng`, which forks it so the caller's state is restored afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator

import numpy as np
import torch


def _word(part: object) -> int:
    """A stable 32-bit word for any identity part (ints kept, strings hashed)."""
    if isinstance(part, (int, np.integer)) and 0 <= int(part) < 2**32:
        return int(part)
    digest = hashlib.sha256(repr(part).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def derive_seed(root: int, *identity: object) -> int:
    """A 63-bit seed for one purpose of one run.

    Args:
        root: the suite's seed (a grid axis).
        identity: e.g. ``(job_key, "init")`` or ``(episode_set_key, "attack", episode_index)``.

    Returns:
        A non-negative int below 2**63 (valid for `torch.Generator.manual_seed`).
    """
    sequence = np.random.SeedSequence(entropy=[_word(root)] + [_word(p) for p in identity])
    high, low = sequence.generate_state(2, dtype=np.uint32)
    return ((int(high) << 32) | int(low)) & (2**63 - 1)


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


@contextlib.contextmanager
def torch_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block with the global torch RNG seeded, restoring the previous state afterwards.

    Needed where third-party code draws from the global RNG (torchattacks' random starts,
    `nn.Module` initialisation); the fork keeps those draws reproducible without leaking
    state into the rest of the run.
    """
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def set_deterministic(threads: int | None = None) -> None:
    """Bitwise-reproducible kernels (CPU always; cuDNN/cuBLAS where a GPU is used)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    _deterministic_kernels()
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    if threads:
        torch.set_num_threads(threads)


def _deterministic_kernels() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without its import cost.

    The public function imports ``torch._inductor`` (2-3 s in every worker process) only to
    set the ``torch.compile`` flag; nothing here compiles, so the flag is set only when that
    module is already loaded, and the eager switch is set directly.
    """
    set_eager = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_eager is None:  # a torch without the private switch: pay the import
        torch.use_deterministic_algorithms(True, warn_only=True)
        return
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = True  # type: ignore[attr-defined]
    set_eager(True, warn_only=True)
