"""PGD-20 on fixed test episodes: blocks of episodes at once vs episode by episode.

Both paths evaluate the same episodes with the same per-episode seeds on the same ProtoNet:
(a) ``QueryAttack.evaluate`` per episode (torchattacks.PGD on one episode's queries);
(b) ``QueryAttack.evaluate_block`` on blocks of ``--block`` episodes (one vectorised PGD over
    the concatenated queries, the backbone run once per step for the whole block).
The two are timed chunk by chunk, interleaved, so a change in machine load affects both alike;
per-episode correctness must be identical (asserted). Target (issue #4): (b) >= 3x faster on
600 episodes, 28x28 glyphs, 5-way 1-shot, 15 queries per class.

Run: ``python -m benchmarks.bench_attacks`` (``--episodes 60`` for a quick look; ``--data
synthetic`` skips building glyphs).
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.backbones import build_backbone
from bench.baseline import Baseline
from bench.data.dataset import ImageDataset
from bench.data.episodes import EpisodeSampler, fixed_episodes
from bench.evaluate import threat_seeds
from bench.registry import BASELINES, DATASETS, THREATS
from bench.seeding import generator, torch_rng
from bench.threats import blockwise


def synthetic_glyphs(classes: int = 200, per_class: int = 20, size: int = 28) -> ImageDataset:
    """Glyph-sized classes: a random smooth stroke pattern per class plus per-image noise."""
    gen = generator(0)
    patterns = torch.nn.functional.interpolate(torch.rand(classes, 1, 7, 7, generator=gen), size=size,
                                               mode="bilinear")
    labels = torch.arange(classes).repeat_interleave(per_class)
    noisy = patterns[labels] + 0.15 * torch.randn(len(labels), 1, size, size, generator=gen)
    images = (noisy.clamp(0, 1) * 255).round().to(torch.uint8)
    half = torch.arange(classes // 2)
    return ImageDataset("synthetic", images, labels, tuple(map(str, range(classes))),
                        {"train": half, "test": half + classes // 2}, "synthetic")


def trained_protonet(data: ImageDataset, shot: int, steps: int, device: torch.device) -> Baseline:
    """ProtoNet (Conv4-64) after ``steps`` meta-updates on the train split (so gradients are real)."""
    cls = BASELINES.get("protonet")
    with torch_rng(0, device):
        backbone = build_backbone("conv4", {}, data.channels, data.image_size)
        baseline = cls(cls.Config(), backbone, 5, device)
    sampler, stream = EpisodeSampler(data, "train", 5, shot, 15), generator(1)
    for _ in range(steps):
        baseline.train_step(sampler.sample(stream, 4))
    return baseline


def compare(baseline: Baseline, data: ImageDataset, args: argparse.Namespace) -> None:
    episodes = fixed_episodes(data, "test", 5, args.shot, 15, args.episodes, seed=7)
    seeds = threat_seeds(0, episodes, "pgd")
    threat = THREATS.get("pgd")(THREATS.get("pgd").Config())  # the AQ protocol: PGD-20, 8/255
    one, block, same = 0.0, 0.0, 0
    for start in range(0, len(episodes), args.block):
        chunk = episodes.block(start, min(start + args.block, len(episodes)))
        chunk_seeds = seeds[start : start + len(chunk)]
        tick = time.perf_counter()
        alone = [threat.evaluate(baseline.adapt, e, s) for e, s in zip(chunk, chunk_seeds, strict=True)]
        one += time.perf_counter() - tick
        tick = time.perf_counter()
        joint = threat.evaluate_block(baseline.adapt, chunk, chunk_seeds, exact=not args.inexact)
        block += time.perf_counter() - tick
        same += sum(torch.equal(a, b) for a, b in zip(alone, joint, strict=True))
        robust = float(torch.cat(alone).float().mean())
        print(f"  episodes {start + len(chunk):4d}/{len(episodes)}  one-by-one {one:7.1f} s  blocks {block:7.1f} s"
              f"  ratio {one / block:5.2f}  robust accuracy (chunk) {robust:.3f}", flush=True)
    assert same == len(episodes), f"{len(episodes) - same} episodes differ between the two paths"
    print(f"PGD-20 on {len(episodes)} episodes (5-way {args.shot}-shot, 15 queries, {data.name} 28 px): "
          f"episode by episode {one:.1f} s, blocks of {args.block} {block:.1f} s, ratio {one / block:.2f}x; "
          f"per-episode correctness identical on all {same} episodes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--block", type=int, default=20, help="episodes per block")
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--data", choices=["glyphs", "synthetic"], default="glyphs")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--inexact", action="store_true",
                        help="let blocks batch the backbone (vmap) when equal up to float rounding, not bitwise")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = (DATASETS.get("glyphs")().ensure(None, 28) if args.data == "glyphs" else synthetic_glyphs()).to(device)
    baseline = trained_protonet(data, args.shot, args.train_steps, device)
    episode = fixed_episodes(data, "test", 5, args.shot, 15, 2, seed=7)
    models = [baseline.adapt(e.support_x, e.support_y) for e in (episode[0], episode[1])]
    path = type(blockwise.stack(models, [episode[0].query_x, episode[1].query_x], not args.inexact)).__name__
    print(f"device {device}, {torch.get_num_threads()} thread(s), ProtoNet trained {args.train_steps} steps, "
          f"block module: {path}")
    compare(baseline, data, args)


if __name__ == "__main__":
    main()
