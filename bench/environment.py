"""What a run was made with: code version, package versions, device (MLflow tags)."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

import bench

CODE_PATHS = ("bench", "baselines", "suites", "pyproject.toml")
PACKAGES = ("torch", "torchvision", "torchattacks", "mlflow", "numpy", "scipy")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when run from a checkout, with ``.dirty`` when the
    code (`CODE_PATHS`) has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        # Only what can change a result makes a tree dirty: an edited report, README or test does not.
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                *CODE_PATHS], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return bench.__version__
    return f"{bench.__version__}+g{commit}{'.dirty' if dirty else ''}"


@functools.lru_cache(maxsize=1)
def package_versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return " ".join([f"python=={platform.python_version()}", *found])


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}"
