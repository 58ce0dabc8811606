"""Matching Networks at 20-way 1-shot: the paper's cosine attention (scale 1) vs scale 10.

Trains two MatchingNets from the same initial weights on the same episode stream, one per
attention scale, and prints their accuracy on fixed validation episodes every quarter of the
run (why `baselines/matchingnet.py` defaults to 10: a near-uniform attention barely learns at
20-way). Accuracies, not times, so nothing here depends on machine load.

Run: ``python -m benchmarks.matching_scale [--data omniglot-minimal] [--steps 400]``.
"""

from __future__ import annotations

import argparse

import torch

from bench.backbones import build_backbone
from bench.baseline import Baseline
from bench.data.dataset import ImageDataset
from bench.data.episodes import EpisodeSampler, EpisodeSet, fixed_episodes
from bench.registry import BASELINES, DATASETS
from bench.seeding import generator, set_deterministic, torch_rng

CPU = torch.device("cpu")


def matching_net(data: ImageDataset, way: int, scale: float) -> Baseline:
    cls = BASELINES.get("matchingnet")
    with torch_rng(0, CPU):  # the same initial weights for every scale
        backbone = build_backbone("conv4", {}, data.channels, data.image_size)
        return cls(cls.Config(scale=scale), backbone, way, CPU)


def accuracy(model: Baseline, episodes: EpisodeSet) -> float:
    """Mean query accuracy (%) over the fixed episodes."""
    hits = []
    with torch.no_grad():
        for i in range(len(episodes)):
            e = episodes[i]
            hits.append(float((model.adapt(e.support_x, e.support_y)(e.query_x).argmax(1) == e.query_y).float().mean()))
    return 100 * sum(hits) / len(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="glyphs")
    parser.add_argument("--way", type=int, default=20)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    args = parser.parse_args()
    set_deterministic(1)
    data = DATASETS.get(args.data)().ensure(None, 28)
    val = fixed_episodes(data, "val", args.way, 1, 5, 50, seed=3)
    models = {scale: matching_net(data, args.way, scale) for scale in args.scales}
    streams = {scale: generator(1) for scale in args.scales}  # the same episodes for every scale
    sampler = EpisodeSampler(data, "train", args.way, 1, 5)
    for step in range(1, args.steps + 1):
        for scale, model in models.items():
            model.train_step(sampler.sample(streams[scale], 1))
        if step % max(1, args.steps // 4) == 0:
            shown = "  ".join(f"scale {scale:g}: {accuracy(m, val):5.1f}%" for scale, m in models.items())
            print(f"{args.data} {args.way}-way 1-shot, step {step:4d}: validation accuracy  {shown}", flush=True)


if __name__ == "__main__":
    main()
