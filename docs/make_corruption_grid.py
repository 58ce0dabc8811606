"""Render docs/img/corruptions_grid.png: every corruption x severity 1..5 on one image.

Usage: ``python docs/make_corruption_grid.py [--size 32] [--out docs/img/corruptions_grid.png]``.
The image is synthetic (drawn with matplotlib, no download): a sky gradient, a sun, a house
and a letter, so that colour, edges, texture and flat regions are all present.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.threats.corruptions import CORRUPTIONS, corrupt  # noqa: E402


def synthetic_image(size: int) -> torch.Tensor:
    """A small RGB scene as float ``(1, 3, size, size)`` in [0, 1] (8-bit levels)."""
    fig = plt.figure(figsize=(1, 1), dpi=256)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    sky = np.linspace(0, 1, 64)[:, None, None] * np.array([0.1, 0.25, 0.35]) + np.array([0.35, 0.6, 0.9])
    ax.imshow(np.repeat(sky.clip(0, 1), 64, axis=1), extent=(0, 1, 0, 1), aspect="auto")
    ax.add_patch(plt.Rectangle((0, 0), 1, 0.3, color=(0.25, 0.55, 0.2)))
    ax.add_patch(plt.Circle((0.78, 0.78), 0.12, color=(1.0, 0.85, 0.2)))
    ax.add_patch(plt.Rectangle((0.12, 0.22), 0.4, 0.3, color=(0.75, 0.2, 0.15)))
    ax.add_patch(plt.Polygon([(0.08, 0.52), (0.32, 0.75), (0.56, 0.52)], color=(0.35, 0.2, 0.15)))
    ax.text(0.32, 0.36, "A", color="white", fontsize=44, ha="center", va="center", weight="bold")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    big = torch.from_numpy(rgba.copy()).permute(2, 0, 1).float().unsqueeze(0) / 255
    small = torch.nn.functional.adaptive_avg_pool2d(big, size)
    return torch.round(small * 255) / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "img" / "corruptions_grid.png")
    args = parser.parse_args()
    image = synthetic_image(args.size)
    names = list(CORRUPTIONS)
    fig, axes = plt.subplots(len(names), 6, figsize=(6 * 0.9, len(names) * 0.9), dpi=100)
    for row, name in enumerate(names):
        cells = [image] + [corrupt(image, name, sev, torch.tensor([7])) for sev in range(1, 6)]
        for col, cell in enumerate(cells):
            ax = axes[row, col]
            ax.imshow(cell[0].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("clean" if col == 0 else f"severity {col}", fontsize=7)
        axes[row, 0].set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(f"ImageNet-C corruptions at {args.size} px (bench.threats.corruptions)", fontsize=8)
    fig.subplots_adjust(left=0.2, right=0.99, top=0.965, bottom=0.005, wspace=0.05, hspace=0.08)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
