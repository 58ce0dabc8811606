"""The cost of validation-based selection: the share of a train job's time spent validating.

Both times are measured inside the same job (the trainer times its validations), so machine
load affects them alike. Suite defaults: ``validate_every`` 100, ``val_episodes`` 50; target
(issue 14): validation at most 10% of a job's time.

Run: ``python -m benchmarks.validation_cost [--baselines protonet maml] [--steps 300]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.plan.jobs import make_plan
from bench.run.runner import execute_train
from bench.seeding import set_deterministic
from bench.suite.load import load_suite

SUITE = """
name: validation-cost
datasets: [{{name: glyphs, way: 5, shot: {shot}, query: 15}}]
train: {{steps: {steps}, meta_batch: 4}}
baselines: [{baselines}]
threats: [clean]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baselines", nargs="+", default=["protonet", "maml", "matchingnet", "r2d2"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--shot", type=int, default=1)
    args = parser.parse_args()
    set_deterministic(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "validation-cost.yaml"
        path.write_text(SUITE.format(steps=args.steps, shot=args.shot, baselines=", ".join(args.baselines)))
        jobs = make_plan(load_suite(str(path))).train_jobs
    for job in jobs:
        result = execute_train(job, "cpu")
        budget, share = job.variant.train, 100 * result.validation_seconds / result.seconds
        print(f"{job.variant.baseline.label:12} {args.steps} meta-updates x {budget.meta_batch} episodes, "
              f"validation every {budget.validate_every} on {budget.val_episodes} episodes: "
              f"job {result.seconds:6.1f} s, validation {result.validation_seconds:5.1f} s = {share:4.1f}%", flush=True)


if __name__ == "__main__":
    main()
