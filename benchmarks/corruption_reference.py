"""Our corruptions against the reference implementation, per corruption and severity.

Usage::

    python benchmarks/corruption_reference.py --reference-python /tmp/refenv/bin/python \
        [--images 20] [--sizes 224 84 32] [--only frost,spatter] [--reference-json CACHE.json] \
        [--write-docs] [--write-fixture]

The reference is bethgelab/imagecorruptions 1.1.2 (``pip install -e '.[reference]'``, or a separate
venv: ``python -m venv /tmp/refenv && /tmp/refenv/bin/pip install "setuptools<81" "numpy<2"
imagecorruptions==1.1.2 imagenet-c==0.0.3 scikit-image scipy``), run through
``benchmarks/corruption_metrics.py`` in that interpreter; ``elastic_transform[imagenet-c]`` is
compared against Hendrycks' own ``imagenet_c`` 0.0.3 package (Hendrycks & Dietterich 2019).
Both sides see the same natural 224 px photographs. At 224 px the run fails (exit 1) if any
corruption's mean damage deviates from the reference's by more than 10%, its SSIM by more than
0.05, or its damage falls where the reference's clearly rises (by more than 2%) with severity.
At smaller sizes it measures the rescaling rule's target (docs/corruptions.md) and, with
``--write-docs``, writes that table into docs/corruptions.md; ``--write-fixture`` stores the
reference's metrics on the procedural fixture images for tests/test_corruption_reference.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import corruption_metrics as cm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "corruptions.md"
FIXTURE = ROOT / "tests" / "corruption_reference.json"
FIXTURE_IMAGES, FIXTURE_DRAWS = 2, 2
# Two fixture images are few: frost's per-image photograph (damage std 0.06-0.1 per image) needs
# 80 draws for a 5% standard error of the difference; fog and spatter 16.
FIXTURE_MORE_DRAWS = {"frost": 20, "fog": 4, "spatter": 4}
MAX_DEVIATION, MAX_SSIM_GAP, TIE = 0.10, 0.05, 0.02
# Corruptions whose mean damage varies most between draws get more of them: spatter's mild water
# is a few small drops normalised by each image's brightest drop pixel (+-10% between sets of 60
# draws); frost's texture is one of five photographs (means 0.46-0.81) per image; fog's haze is
# one low-frequency field per image.
MORE_DRAWS = {"spatter": 4, "frost": 4, "fog": 2}
BEGIN, END = "<!-- small-size table: begin -->", "<!-- small-size table: end -->"


def all_names() -> list[str]:
    """The 19 corruptions plus the ImageNet-C table of elastic_transform as its own row."""
    from bench.threats.corruptions import CORRUPTIONS

    return [*CORRUPTIONS, "elastic_transform[imagenet-c]"]


def ours(name: str, severity: int, batch: np.ndarray, draw: int = 0) -> np.ndarray:
    """Our corruption of uint8 ``(N, S, S, 3)``, image ``i`` seeded ``i + 1000 draw``, back to uint8."""
    import torch

    from bench.threats.corruptions import corrupt

    options = {"table": "imagenet-c"} if name.endswith("[imagenet-c]") else {}
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255
    out = corrupt(x, name.split("[")[0], severity, torch.arange(len(batch)) + 1000 * draw, **options)
    # Truncated, not rounded: the reference's corrupt() returns np.uint8(float result), and the
    # comparison should measure the corruption, not the two quantisations.
    return (out * 255).floor().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def by_draws(names: list[str], base: int, more: dict[str, int]) -> dict[int, list[str]]:
    """Names grouped by their number of draws (``base``, times ``more[name]`` where given)."""
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(base * more.get(name, 1), []).append(name)
    return groups


def measure_both(python: str, images: np.ndarray, names: list[str], sizes: list[int], draws: int,
                 cached: cm.Metrics, more: dict[str, int] = MORE_DRAWS) -> tuple[cm.Metrics, cm.Metrics]:
    """(reference, ours) metrics; the reference's taken from ``cached`` where present."""
    ref, got = dict(cached), {}
    for n_draws, group in by_draws(names, draws, more).items():
        missing = [n for n in group if n not in ref]
        if missing:
            ref.update(run_reference(python, images, missing, sizes, n_draws))
        got.update(cm.collect(images, group, sizes, ours, at_size=True, draws=n_draws))
    return ref, got


def run_reference(python: str, images: np.ndarray, names: list[str], sizes: list[int], draws: int) -> cm.Metrics:
    """The reference's metrics, computed by ``python`` running corruption_metrics.py."""
    with tempfile.TemporaryDirectory() as tmp:
        job, result = Path(tmp) / "job.npz", Path(tmp) / "result.json"
        np.savez(job, images=images, names=np.array(names), sizes=np.array(sizes), draws=draws)
        subprocess.run([python, str(Path(cm.__file__)), "reference", str(job), str(result)], check=True)
        return json.loads(result.read_text())


def load_images(python: str, count: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npz"
        subprocess.run([python, str(Path(cm.__file__)), "images", str(count), str(path)], check=True)
        return np.load(path)["images"]


def failures(name: str, ref: dict[str, list[float]], got: dict[str, list[float]]) -> list[str]:
    """What is wrong with one corruption at 224 px (empty when it matches)."""
    bad = []
    for s in range(5):
        dev = got["damage"][s] / ref["damage"][s] - 1
        if abs(dev) > MAX_DEVIATION:
            bad.append(f"severity {s + 1}: damage {dev:+.0%}")
        if abs(got["ssim"][s] - ref["ssim"][s]) > MAX_SSIM_GAP:
            bad.append(f"severity {s + 1}: SSIM gap {got['ssim'][s] - ref['ssim'][s]:+.3f}")
    for s in range(4):
        if ref["damage"][s + 1] > ref["damage"][s] * (1 + TIE) and got["damage"][s + 1] < got["damage"][s]:
            bad.append(f"severity {s + 2} weaker than {s + 1} where the reference's is stronger")
    return [f"{name} {b}" for b in bad]


def print_full_size(ref: cm.Metrics, got: cm.Metrics) -> list[str]:
    size = str(cm.REFERENCE_SIZE)
    print(f"{'corruption':32s} sev  ref dmg  our dmg    dev  ref ssim  our ssim    gap")
    problems = []
    for name in got:
        r, g = ref[name][size], got[name][size]
        for s in range(5):
            dev = g["damage"][s] / r["damage"][s] - 1
            print(f"{name:32s} {s + 1:3d}  {r['damage'][s]:7.4f}  {g['damage'][s]:7.4f}  {dev:+5.0%}  "
                  f"{r['ssim'][s]:8.3f}  {g['ssim'][s]:8.3f}  {g['ssim'][s] - r['ssim'][s]:+.3f}")
        problems += failures(name, r, g)
    bad = {p.split(" ")[0] for p in problems}
    print(f"\nsummary at {size} px: {len(got) - len(bad)}/{len(got)} within {MAX_DEVIATION:.0%} damage and "
          f"{MAX_SSIM_GAP} SSIM at every severity, with the reference's severity ordering")
    for p in problems:
        print("  FAIL", p)
    return problems


def small_size_table(ref: cm.Metrics, got: cm.Metrics, sizes: list[int]) -> str:
    """Markdown: our damage / the target's per severity, and the largest SSIM gap, per size."""
    head = "| corruption | " + " | ".join(f"{s} px: damage ours/target, sev 1-5 | {s} px: max SSIM gap"
                                           for s in sizes) + " |"
    lines = [head, "|---|" + "---|---|" * len(sizes)]
    for name in got:
        cells = []
        for size in sizes:
            r, g = ref[name][str(size)], got[name][str(size)]
            pairs = zip(r["damage"], g["damage"], strict=True)
            ratios = " ".join(f"{b / a:.2f}" if a > 1e-4 else "-" for a, b in pairs)
            gap = max((b - a for a, b in zip(r["ssim"], g["ssim"], strict=True)), key=abs)
            cells += [ratios, f"{gap:+.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_docs(table: str, count: int, draws: int) -> None:
    text = DOCS.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    note = (f"\n\nGenerated by `python benchmarks/corruption_reference.py --write-docs` on {count} natural "
            f"224 px photographs, {draws} draws each (more for {', '.join(sorted(MORE_DRAWS))}; "
            "imagecorruptions 1.1.2 as the reference).\n\n")
    DOCS.write_text(text[:start] + note + table + "\n\n" + text[stop:])


def write_fixture(python: str) -> None:
    images = cm.fixture_images(FIXTURE_IMAGES)
    names = all_names()
    ref, got = measure_both(python, images, names, [cm.REFERENCE_SIZE], FIXTURE_DRAWS, {}, FIXTURE_MORE_DRAWS)
    size = str(cm.REFERENCE_SIZE)
    payload = {"images": f"benchmarks.corruption_metrics.fixture_images({FIXTURE_IMAGES})",
               "draws": {n: FIXTURE_DRAWS * FIXTURE_MORE_DRAWS.get(n, 1) for n in names},
               "size": cm.REFERENCE_SIZE, "written_by": "python benchmarks/corruption_reference.py --write-fixture",
               "reference": {n: ref[n][size] for n in names}, "ours": {n: got[n][size] for n in names}}
    FIXTURE.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {FIXTURE}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", default=sys.executable)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--draws", type=int, default=3, help="corruptions per image (seeds i + 1000 k)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 84, 32])
    parser.add_argument("--only", default="", help="comma-separated corruption names")
    parser.add_argument("--reference-json", type=Path, help="cache of the reference's metrics")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--write-fixture", action="store_true")
    args = parser.parse_args()
    if args.write_fixture:
        write_fixture(args.reference_python)
    names = [n for n in all_names() if not args.only or n in args.only.split(",")]
    images = load_images(args.reference_python, args.images)
    meta = {"images": args.images, "draws": args.draws, "sizes": args.sizes, "more_draws": MORE_DRAWS}
    cached = json.loads(args.reference_json.read_text()) if args.reference_json and args.reference_json.exists() else {}
    if cached.pop("_meta", meta) != meta:  # a cache made for other images or draws is not reused
        cached = {}
    ref, got = measure_both(args.reference_python, images, names, args.sizes, args.draws, cached)
    if args.reference_json:
        args.reference_json.write_text(json.dumps({**ref, "_meta": meta}))
    problems = print_full_size(ref, got) if cm.REFERENCE_SIZE in args.sizes else []
    small = [s for s in args.sizes if s != cm.REFERENCE_SIZE]
    if small:
        table = small_size_table(ref, got, small)
        print("\n" + table)
        if args.write_docs:
            write_docs(table, args.images, args.draws)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
