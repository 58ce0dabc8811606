"""One command for the rare, short GPU sessions: every `gpu` test and the GPU benchmarks, with
one JSON of figures.

Stages (each in its own process, with its own time limit, so one hang cannot eat the session):

1. the environment: torch, CUDA, the device;
2. ``pytest -m gpu``: a tiny suite on CUDA with two workers sharing the GPU, and two runs giving
   identical per-episode accuracies (`tests/test_gpu.py`);
3. ``benchmarks/bench_maml.py``: MAML meta-step, loop vs `torch.func.vmap` on CUDA;
4. ``benchmarks/bench_corruptions.py``: corruptions batched on the device vs per image;
5. ``benchmarks/step_time.py``: each reference suite's meta-update times on the GPU and the
   training time they imply (the block ``--write`` puts into the suite headers).

On a machine without CUDA every stage that needs it is skipped and says so, and the check
still exits 0 (it runs in CI that way). Budget: under 10 minutes on one GPU.
Run: ``python -m benchmarks.device_check [--out device_check.json]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SUITES = ("omniglot", "miniimagenet", "cifarfs", "fc100", "aq-miniimagenet")
STAGES = [  # name, command, time limit (s), needs CUDA
    ("gpu tests", [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py"], 180, True),
    ("maml vmap vs loop", [sys.executable, "benchmarks/bench_maml.py", "--rounds", "3", "--no-memory"], 120, True),
    ("corruptions batched vs per image", [sys.executable, "benchmarks/bench_corruptions.py", "--images", "200",
                                          "--repeats", "2"], 90, True),
    ("reference suite step times", [sys.executable, "-m", "benchmarks.step_time", *REFERENCE_SUITES], 180, True),
]
TAIL = 40  # lines of each stage's output kept in the JSON


def environment() -> dict[str, object]:
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "cuda": cuda, "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "python": sys.version.split()[0]}


def run_stage(name: str, command: list[str], limit: int) -> dict[str, object]:
    """Run one stage; its exit code, seconds and the last lines of its output."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=limit)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = "timeout", (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
            else str(exc.stdout or "")
    return {"stage": name, "exit_code": code, "seconds": round(time.perf_counter() - start, 1),
            "output_tail": output.strip().splitlines()[-TAIL:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="device_check.json", help="where the JSON of figures goes")
    args = parser.parse_args()
    env, results = environment(), []
    print(f"device check on {env['device']} (torch {env['torch']})", flush=True)
    for name, command, limit, needs_cuda in STAGES:
        if needs_cuda and not env["cuda"]:
            results.append({"stage": name, "skipped": "no CUDA device"})
            print(f"skipped  {name}: no CUDA device", flush=True)
            continue
        result = run_stage(name, command, limit)
        results.append(result)
        print(f"{'ok' if result['exit_code'] == 0 else 'FAILED':8} {name} ({result['seconds']} s)", flush=True)
    Path(args.out).write_text(json.dumps({"environment": env, "stages": results}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r.get("exit_code", 0) == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
