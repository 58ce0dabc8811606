"""What the outside-model path costs over evaluating by hand (issue 26: within 1.1x).

One run, the same episodes, interleaved repeats (these machines are noisy):

    by hand  = what a researcher writes: embed the support set, class means, embed the
               queries, nearest mean, count the correct queries
    outside  = `bench eval-model`'s path: the ``pretrained`` baseline on a ``module`` backbone
               built by a factory (this module's `conv4_64`), evaluated by `evaluate_queries`
               under the clean threat (per-episode seeds, per-query records included)

and prints ``outside / by hand`` (the minimum over repeats of each). The same conv4 weights
serve both, so the accuracies must also agree, which it checks.
Run: ``python -m benchmarks.outside_overhead [--episodes 300] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.backbones import Conv4, Conv4Config
from bench.data.episodes import fixed_episodes
from bench.plan.jobs import make_plan
from bench.registry import DATASETS, THREATS
from bench.run.evaluate import evaluate_queries
from bench.run.runner import build_baseline
from bench.suite.load import load_suite

SUITE = """name: overhead
datasets: [{name: glyphs, image_size: 28, way: 5, shot: 1, query: 15}]
baselines:
  - {name: pretrained, params: {head: prototype}, backbone: {name: module,
     params: {factory: "benchmarks.outside_overhead:conv4_64"}}}
threats: [clean]
"""


def conv4_64() -> Conv4:
    """The outside model: a conv4-64 embedding, built with fixed weights."""
    torch.manual_seed(0)
    return Conv4(Conv4Config(hidden=64), 1, 28)


def by_hand(model: torch.nn.Module, episodes: list) -> list[float]:
    accuracies = []
    with torch.no_grad():
        for e in episodes:
            way = int(e.support_y.max()) + 1
            support = model(e.support_x)
            means = torch.stack([support[e.support_y == k].mean(0) for k in range(way)])
            predicted = torch.cdist(model(e.query_x), means).argmin(-1)
            accuracies.append(float((predicted == e.query_y).float().mean()))
    return accuracies


def measure(count: int, repeats: int) -> None:
    torch.set_num_threads(1)
    dataset = DATASETS.get("glyphs")().ensure(None, 28)
    episodes = fixed_episodes(dataset, "test", 5, 1, 15, count, 0)
    listed = [episodes[i] for i in range(len(episodes))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "overhead.yaml"
        path.write_text(SUITE, encoding="utf-8")
        job = make_plan(load_suite(str(path))).train_jobs[0]
    baseline = build_baseline(job, dataset, torch.device("cpu"), 5)
    model = conv4_64().eval()
    clean = THREATS.get("clean")(None)
    seeds = list(range(len(listed)))
    hand, outside = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        reference = by_hand(model, listed)
        hand.append(time.perf_counter() - start)
        start = time.perf_counter()
        measured = evaluate_queries(baseline, episodes, clean, seeds).accuracies
        outside.append(time.perf_counter() - start)
    agree = max(abs(a - b) for a, b in zip(reference, measured, strict=True))
    print(f"{count} episodes of glyphs 5-way 1-shot 15-query, conv4-64, 1 thread, best of {repeats}")
    print(f"by hand {min(hand):.3f} s   outside-model path {min(outside):.3f} s   "
          f"ratio {min(outside) / min(hand):.3f} (target <= 1.1)   largest accuracy difference {agree:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    measure(args.episodes, args.repeats)


if __name__ == "__main__":
    main()
