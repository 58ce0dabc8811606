"""Meta-update time of each train job of a suite, and the training time its budget implies.

For every distinct (baseline variant, data setting) of a suite's plan (seeds share a job's cost)
this builds the baseline exactly as a train job does (`bench.run.runner.build_baseline`) and times
``--steps`` meta-updates after ``--warmup`` on the given device. The images are random pixels
in the data set's shape (channels, size, the train split's class count): a meta-update's cost
depends on tensor shapes only, so the estimate needs no downloaded data set. Validation adds at
most about 10% (`benchmarks/validation_cost.py`); it is left out.

``--write`` puts the figures into a marked block at the top of each suite file (the issue 14
"estimated GPU time from a measured step time"); the block names the device it was measured on.
Run: ``python -m benchmarks.step_time omniglot miniimagenet [--device cuda] [--write]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.data.dataset import ImageDataset
from bench.data.episodes import EpisodeSampler
from bench.plan.jobs import TrainJob, make_plan
from bench.registry import DATASETS
from bench.run.runner import build_baseline
from bench.seeding import generator, set_deterministic
from bench.suite.load import load_suite, suite_path

BEGIN, END = "# BEGIN step-time", "# END step-time"
PER_EARLY_STOPPING = 10_000  # meta-updates an early-stopping job's time is given for


@dataclass(frozen=True)
class StepTime:
    """One job's measured meta-update time and what its step cap costs at that rate."""

    job: TrainJob
    seconds: float

    @property
    def stops_early(self) -> bool:
        return self.job.variant.train.patience > 0

    @property
    def hours(self) -> float:
        """At the step cap; for a job that stops early on validation, per 10,000 meta-updates
        (its cap is an upper bound, not a budget)."""
        steps = PER_EARLY_STOPPING if self.stops_early else self.job.variant.train.steps
        return self.seconds * steps / 3600

    def line(self) -> str:
        budget, d = self.job.variant.train, self.job.data
        way = f", trained {budget.way}-way" if budget.way else ""
        what = (f"{self.hours:.1f} h per {PER_EARLY_STOPPING:,} (stops early on validation; cap {budget.steps:,})"
                if self.stops_early else f"x {budget.steps:,} = {self.hours:.1f} h")
        label = f"{self.job.variant.baseline.label} · {d.way}-way {d.shot}-shot{way}"
        return f"{label}: {self.seconds:.3f} s per meta-update, {what}"


def stand_in(job: TrainJob) -> ImageDataset:
    """Random uint8 images in the shape of ``job``'s data set, its train split's class count,
    and as many images per class as an episode draws."""
    source, d = DATASETS.get(job.data.name), job.data
    classes, per_class = source.split_classes["train"], d.shot + d.query
    size = d.image_size or source.default_size
    pixels = torch.randint(0, 256, (classes * per_class, source.channels, size, size), dtype=torch.uint8,
                           generator=generator(0))
    labels = torch.arange(classes).repeat_interleave(per_class)
    ids = torch.arange(classes)
    return ImageDataset(f"stand-in:{d.name}", pixels, labels, tuple(map(str, range(classes))),
                        {"train": ids, "val": ids[:0], "test": ids[:0]}, "stand-in")


def measure(job: TrainJob, device: torch.device, steps: int, warmup: int) -> StepTime:
    """Median seconds per meta-update of ``job`` on ``device``."""
    dataset = stand_in(job)
    baseline = build_baseline(job, dataset, device)
    budget = job.variant.train
    sampler = EpisodeSampler(dataset, "train", job.data.way, job.data.shot, job.data.query)
    stream, times = generator(job.seed_for("train-episodes")), []
    for i in range(warmup + steps):
        episodes = sampler.sample(stream, budget.meta_batch)
        _sync(device)
        start = time.perf_counter()
        baseline.train_step(episodes)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return StepTime(job, sorted(times)[len(times) // 2])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def distinct_jobs(suite_name: str) -> list[TrainJob]:
    """One train job per (variant, data setting): the first seed's."""
    seen, out = set(), []
    for job in make_plan(load_suite(suite_name)).train_jobs:
        where = (job.variant.baseline.label, job.data)
        if where not in seen:
            seen.add(where)
            out.append(job)
    return out


def device_text(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} thread(s)"
    return f"{name}, torch {torch.__version__}"


def block(suite_name: str, rows: list[StepTime], device: torch.device, steps: int) -> list[str]:
    """The suite header's step-time block (comment lines)."""
    seeds = len(load_suite(suite_name).seeds)
    fixed = sum(r.hours for r in rows if not r.stops_early) * seeds
    return [f"{BEGIN} (written by `python -m benchmarks.step_time {suite_name} --write`; do not edit)",
            f"# Estimated training time from a measured meta-update time (median of {steps}, random pixels in",
            f"# the data set's shape) on {device_text(device)}:",
            *(f"#   {r.line()}" for r in rows),
            f"#   the fixed-budget train jobs ({seeds} seed(s)): {fixed:.1f} h on one device",
            END]


def write_block(path: Path, lines: list[str]) -> None:
    """Replace the suite file's step-time block, or insert it before the first YAML line."""
    text = path.read_text(encoding="utf-8").splitlines()
    if BEGIN in "\n".join(text):
        start = next(i for i, line in enumerate(text) if line.startswith(BEGIN))
        end = next(i for i, line in enumerate(text) if line.startswith(END))
        text[start:end + 1] = lines
    else:
        first = next(i for i, line in enumerate(text) if line and not line.startswith("#"))
        text[first:first] = [*lines, "#"]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="+")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed meta-updates per job")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write the block into each suite file")
    args = parser.parse_args()
    set_deterministic(1)
    device = torch.device(args.device)
    for name in args.suites:
        rows = []
        for job in distinct_jobs(name):
            rows.append(measure(job, device, args.steps, args.warmup))
            print(f"{name}: {rows[-1].line()}", flush=True)
        lines = block(name, rows, device, args.steps)
        print("\n".join(lines), flush=True)
        if args.write:
            write_block(suite_path(name), lines)


if __name__ == "__main__":
    main()
