"""Episode sampling and evaluation overhead, as ratios measured side by side in one run.

(a) episodes/s of the seeded sampler (one episode per call, and 64 per call as in a
    meta-batch) against a bare uint8 index gather of the same number of images;
(b) wall time of the evaluation harness (`evaluate_threat` with the clean threat: gathers,
    per-episode seeds, adaptation, prediction, counting) against the pure model compute
    (adapt + forward) on the same, already materialised episodes.

Targets (issue #2, 2-core CPU, 28x28, 5-way 5-shot 15-query): >= 10,000 episodes/s and
evaluation <= 1.15x pure compute. Run: ``python -u -m benchmarks.bench_episodes``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from bench.data.dataset import ImageDataset
from bench.data.episodes import EpisodeSampler, fixed_episodes
from bench.registry import BASELINES, THREATS
from bench.run.evaluate import evaluate_threat, threat_seeds
from bench.seeding import generator
from bench.testing import make_baseline


def synthetic_glyphs(classes: int = 1500, per_class: int = 20, size: int = 28) -> ImageDataset:
    """A glyphs-sized data set of random pixels (sampling cost does not depend on content)."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = torch.randint(0, 256, (classes * per_class, 1, size, size), dtype=torch.uint8,
                           generator=generator(0))
    names = tuple(str(c) for c in range(classes))
    return ImageDataset("synthetic", images, labels, names, {"train": torch.arange(classes),
                                                             "test": torch.arange(classes)}, "synthetic")


def best_rate(action: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Best calls/s over ``repeats`` timed loops (the least disturbed by other processes)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            action()
        best = max(best, calls / (time.perf_counter() - start))
    return best


def sampling(data: ImageDataset, calls: int) -> None:
    """Episodes/s of `EpisodeSampler.sample` at several episodes per call, against a bare gather
    of one episode's images per call (the issue's reference, one index per episode)."""
    sampler = EpisodeSampler(data, "train", 5, 5, 15)
    gen = generator(1)
    index = sampler.draw_indices(generator(2), 1)[0]
    bare = best_rate(lambda: data.images[index], calls)
    print(f"(a) bare gather          {bare:10,.0f} episodes/s")
    for per_call in (1, 4, 32, 64):
        rate = per_call * best_rate(lambda n=per_call: sampler.sample(gen, n), max(calls // per_call, 3))
        print(f"    sampler, {per_call:2} per call {rate:10,.0f} episodes/s   ratio to bare {rate / bare:.2f}")


def evaluation(data: ImageDataset, count: int, name: str) -> None:
    baseline = make_baseline(name)
    episodes = fixed_episodes(data, "test", 5, 5, 15, count, seed=3)
    clean = THREATS.get("clean")(None)
    materialised = [episodes[i] for i in range(count)]

    def pure() -> None:
        for e in materialised:
            with torch.no_grad():
                baseline.adapt(e.support_x, e.support_y)(e.query_x).argmax(-1)

    def harness() -> None:
        evaluate_threat(baseline, episodes, clean, threat_seeds(0, episodes, "clean"))

    pure_rate, harness_rate = best_rate(pure, 1, 5), best_rate(harness, 1, 5)
    # a rate here is calls/s of one pass over all ``count`` episodes
    print(f"(b) {name:9} pure compute {1000 / (pure_rate * count):6.2f} ms/episode, harness "
          f"{1000 / (harness_rate * count):6.2f} ms/episode, ratio {pure_rate / harness_rate:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--baselines", default="protonet,maml",
                        help="comma-separated baseline names for (b), or 'all' (slow: every registered one)")
    args = parser.parse_args()
    data = synthetic_glyphs()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    sampling(data, args.calls)
    names = BASELINES.names() if args.baselines == "all" else args.baselines.split(",")
    for name in names:
        evaluation(data, args.episodes, name)


if __name__ == "__main__":
    main()
