"""The ImageNet-C corruptions of bench.threats.corruptions (Hendrycks & Dietterich 2019).

Everything here is deterministic (counter-based per-image seeds), so the monotonicity checks
cannot flake: they hold for these images and seeds, and would catch a parameter table or a
rescaling that makes a higher severity weaker.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from bench.threats.corruptions import COLOUR_ONLY, CORRUPTIONS, CorruptionError, corrupt, scale_length, size_factor
from bench.threats.corruptions import random_fields as rf
from bench.threats.corruptions.jpeg import jpeg_roundtrip

NAMES = sorted(CORRUPTIONS)
RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
          "snow", "frost", "fog", "spatter", "elastic_transform"}
FORMATS = {"gray28": (1, 28), "rgb32": (3, 32)}


def structured_images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random backgrounds with one sharp-edged disk each, on the 8-bit grid.

    White noise would make blurs look like strong corruptions and hide real behaviour.
    """
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, channels, 5, 5, generator=g)
    base = torch.nn.functional.interpolate(base, size=size, mode="bicubic", align_corners=False)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cy, cx = torch.randint(size // 4, 3 * size // 4, (2, n, 1, 1), generator=g)
    radius = torch.randint(size // 6, size // 3, (n, 1, 1), generator=g)
    disk = (((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2).float().unsqueeze(1)
    colour = torch.rand(n, channels, 1, 1, generator=g)
    image = (base * 0.7 + 0.15) * (1 - disk) + colour * disk
    return torch.round(image.clamp(0, 1) * 255) / 255


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: intra-op threads only add synchronisation (seconds on a busy box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=sorted(FORMATS))
def batch(request: pytest.FixtureRequest) -> tuple[torch.Tensor, torch.Tensor]:
    channels, size = FORMATS[request.param]
    return structured_images(5, channels, size), torch.tensor([3, 1_000_003, -7, 2**40 + 5, 12])


def test_registry_has_the_19_published_corruptions() -> None:
    assert len(CORRUPTIONS) == 19
    assert {"gaussian_noise", "frost", "jpeg_compression", "saturate", "spatter"} <= set(CORRUPTIONS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_contract(batch: tuple[torch.Tensor, torch.Tensor], name: str, severity: int) -> None:
    """Range, shape, dtype, determinism, and per-image independence from the batch."""
    x, seeds = batch
    out = corrupt(x, name, severity, seeds)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()
    assert torch.equal(out, corrupt(x, name, severity, seeds))
    perm = torch.tensor([4, 2, 0, 3, 1])
    assert torch.equal(corrupt(x[perm], name, severity, seeds[perm]), out[perm])
    assert torch.equal(corrupt(x[3:4], name, severity, seeds[3:4]), out[3:4])
    other = corrupt(x, name, severity, seeds + 1)
    if name in RANDOM:
        assert all(not torch.equal(a, b) for a, b in zip(other, out, strict=True)), "seed has no effect on some image"
    else:
        assert torch.equal(other, out), "a deterministic corruption depends on the seed"


def _distances(name: str, x: torch.Tensor, **options: str) -> list[float]:
    """Mean |corrupted - clean| per severity 1..5; frost mixes in a texture, so 1 - corr."""
    seeds = torch.arange(x.shape[0])
    out = []
    for severity in range(1, 6):
        y = corrupt(x, name, severity, seeds, **options)
        if name == "frost":
            a = (x - x.mean(dim=(1, 2, 3), keepdim=True)).flatten(1)
            b = (y - y.mean(dim=(1, 2, 3), keepdim=True)).flatten(1)
            out.append(float((1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean()))
        else:
            out.append(float((y - x).abs().mean()))
    return out


STRICTLY_MONOTONE = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur",
                     "motion_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast", "jpeg_compression",
                     "frost", "elastic_transform"]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_severity_is_monotone_where_the_published_table_is(fmt: str) -> None:
    x = structured_images(6, *FORMATS[fmt], seed=1)
    for name in STRICTLY_MONOTONE:
        d = _distances(name, x)
        assert d[0] > 0 and all(b > a for a, b in zip(d, d[1:], strict=False)), (name, d)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_weaker_severity_orderings(fmt: str) -> None:
    """Where ImageNet-C's own table is not monotone, test what it does promise."""
    x = structured_images(6, *FORMATS[fmt], seed=1)
    d = {name: _distances(name, x) for name in CORRUPTIONS if name not in STRICTLY_MONOTONE}
    assert all(v > 0 for name, ds in d.items() if name != "saturate" for v in ds), d
    glass = d["glass_blur"]  # iterations 2, 1, 3, 2, 2
    assert glass[2] > glass[0] and glass[4] > glass[1]
    snow = d["snow"]  # severities 2 and 3 are near ties in the published table
    assert snow[0] < snow[1] and snow[0] < snow[3] < snow[4]
    fog = d["fog"]  # severities 3 and 4 add the same amount of haze
    assert fog[0] < fog[1] < fog[2] and fog[0] < fog[4]
    assert d["pixelate"][4] > d["pixelate"][0]  # box resampling at odd ratios is not monotone
    # ImageNet-C's own elastic table: 1-2 large random affine; 3-5 small affine + jitter.
    elastic = _distances("elastic_transform", x, table="imagenet-c")
    assert min(elastic[:2]) > max(elastic[2:]) and elastic[4] > elastic[2]
    water, mud = d["spatter"][:3], d["spatter"][3:]
    assert water[0] < water[1] < water[2] and mud[0] < mud[1]


def test_elastic_tables_differ_and_options_are_checked() -> None:
    x, seeds = structured_images(3, 3, 32), torch.arange(3)
    default = corrupt(x, "elastic_transform", 1, seeds)
    assert torch.equal(default, corrupt(x, "elastic_transform", 1, seeds, table="imagecorruptions"))
    assert not torch.equal(default, corrupt(x, "elastic_transform", 1, seeds, table="imagenet-c"))
    with pytest.raises(CorruptionError, match="table"):
        corrupt(x, "elastic_transform", 1, seeds, table="imagenet")
    with pytest.raises(CorruptionError, match="no option"):
        corrupt(x, "fog", 1, seeds, table="imagenet-c")


def test_colour_only_corruptions_are_declared_on_their_threats() -> None:
    from bench.registry import THREATS

    assert COLOUR_ONLY == {"saturate"}
    assert THREATS.get("saturate").needs_color and not THREATS.get("fog").needs_color


def test_support_query_shift_corrupts_each_side_with_its_own_corruption() -> None:
    from bench.data.episodes import Episode
    from bench.registry import THREATS
    from bench.threats.corruption import Corruption, image_seeds

    x = structured_images(6, 3, 32, seed=4)
    episode = Episode(x[:2], torch.tensor([0, 1]), x[2:], torch.tensor([0, 1, 0, 1]))
    seen: dict[str, torch.Tensor] = {}

    class Recorder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            seen["query"] = q
            return torch.zeros(q.shape[0], 2)

    def adapt(support_x: torch.Tensor, support_y: torch.Tensor) -> torch.nn.Module:
        seen["support"] = support_x
        return Recorder()

    shift = THREATS.get("support_query_shift")
    shift(shift.Config(support="fog/3", query="contrast/5")).evaluate(adapt, episode, seed=11)
    assert torch.equal(seen["support"], corrupt(x[:2], "fog", 3, image_seeds(11, 2, 4, x.device)))
    assert torch.equal(seen["query"], corrupt(x[2:], "contrast", 5, image_seeds(11, 4, 0, x.device)))
    shift(shift.Config(support="clean", query="fog/2")).evaluate(adapt, episode, seed=11)
    query_only = THREATS.get("fog")
    assert issubclass(query_only, Corruption) and torch.equal(seen["support"], x[:2])
    query_only(query_only.Config(severity=2)).evaluate(adapt, episode, seed=11)
    fog_queries = seen["query"]
    shift(shift.Config(support="clean", query="fog/2")).evaluate(adapt, episode, seed=11)
    assert torch.equal(seen["query"], fog_queries)


def test_saturate_arms_and_grayscale_behaviour() -> None:
    rgb = structured_images(8, 3, 32, seed=2)
    d = _distances("saturate", rgb)
    assert d[0] < d[1] and d[2] < d[3] < d[4]  # desaturation arm, then saturation arm
    gray = structured_images(8, 1, 28, seed=2)
    seeds = torch.arange(8)
    for severity in (1, 2, 3):
        assert torch.allclose(corrupt(gray, "saturate", severity, seeds), gray, atol=1e-6)
    darker = [corrupt(gray, "saturate", s, seeds).mean() for s in (4, 5)]
    assert gray.mean() > darker[0] > darker[1]


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, True, "3"])
def test_bad_severity_raises_value_error(severity: object) -> None:
    x = structured_images(2, 1, 28)
    with pytest.raises(ValueError, match="severity"):
        corrupt(x, "gaussian_noise", severity, torch.arange(2))  # type: ignore[arg-type]


def test_unknown_name_lists_the_names() -> None:
    with pytest.raises(ValueError) as info:
        corrupt(structured_images(2, 1, 28), "gaussian_nosie", 1, torch.arange(2))
    assert all(name in str(info.value) for name in CORRUPTIONS)
    assert isinstance(info.value, CorruptionError)


def test_malformed_input_raises() -> None:
    with pytest.raises(ValueError, match="one seed per image"):
        corrupt(structured_images(3, 3, 32), "fog", 1, torch.arange(2))
    with pytest.raises(ValueError, match="C in"):
        corrupt(torch.rand(2, 2, 32, 32), "fog", 1, torch.arange(2))


def test_float64_in_float64_out_and_same_values() -> None:
    x = structured_images(3, 3, 32)
    out = corrupt(x.double(), "motion_blur", 4, torch.arange(3))
    assert out.dtype == torch.float64
    assert torch.allclose(out.float(), corrupt(x, "motion_blur", 4, torch.arange(3)), atol=1e-5)


def test_rescaling_reproduces_imagenet_c_at_224_and_shrinks_slower_than_the_image() -> None:
    assert scale_length(6.0, 224) == pytest.approx(6.0)
    assert scale_length(1 / 0.25, 224, identity=1.0) == pytest.approx(4.0)
    assert scale_length(6.0, 112) == pytest.approx(6.0 * 0.5**0.75)
    assert 32 / 224 < size_factor(32) < size_factor(84) < 1.0


def test_random_fields_are_uniform_and_normal_per_image() -> None:
    seeds = torch.tensor([0, 1, 2**62, -(2**62)])
    u = rf.uniform(seeds, (40_000,), "test")
    assert u.min() >= 0 and u.max() < 1
    assert torch.allclose(u.mean(dim=1), torch.full((4,), 0.5), atol=0.01)
    assert torch.allclose(u.var(dim=1), torch.full((4,), 1 / 12), atol=0.003)
    z = rf.normal(seeds, (40_000,), "test")
    assert torch.allclose(z.mean(dim=1), torch.zeros(4), atol=0.03)
    assert torch.allclose(z.std(dim=1), torch.ones(4), atol=0.03)
    # Consecutive seeds and different streams are uncorrelated.
    assert abs(float(torch.corrcoef(u[:2])[0, 1])) < 0.03
    assert abs(float(torch.corrcoef(torch.stack([u[0], rf.uniform(seeds[:1], (40_000,), "x")[0]]))[0, 1])) < 0.03
    # Exact Poisson: mean and variance of the counts match the rate.
    counts = rf.poisson_8bit(torch.full((2, 20_000), 1.0), 12.0, seeds[:2], "test")
    assert counts.mean().item() == pytest.approx(12.0, rel=0.03)
    assert counts.var().item() == pytest.approx(12.0, rel=0.06)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("quality", [7, 25, 75])
def test_jpeg_matches_pil(channels: int, quality: int) -> None:
    """The torch codec lands within a few levels of PIL's libjpeg, far below the JPEG error."""
    x = structured_images(4, channels, 32, seed=3)
    ours = jpeg_roundtrip(x, quality)
    ref = []
    for image in x:
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array[..., 0] if channels == 1 else array).save(buffer, "JPEG", quality=quality)
        decoded = np.array(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255
        ref.append(torch.from_numpy(decoded).reshape(32, 32, channels).permute(2, 0, 1))
    ref = torch.stack(ref)
    assert (ours - ref).abs().mean() < 1.5 / 255
    assert (ours - ref).abs().mean() < 0.25 * (ref - x).abs().mean()
