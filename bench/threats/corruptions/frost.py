"""A procedural frost texture calibrated to the statistics of ImageNet-C's frost photographs.

Hendrycks & Dietterich 2019 (and imagecorruptions 1.1.2) crop one of five frost photographs
(``frost1``-``frost5``; ``frost2`` and ``frost3`` are the same picture), resized by 1.1 at 224
px. Those photographs are not shipped here: their licence is not stated. What is kept are
measured *statistics* of them, no pixels: per photograph and channel, 17 quantiles of the
resized picture (``PROFILES``), and the slope of their radially averaged amplitude spectrum,
about ``f**-1.0`` for all five (measured -0.86 .. -1.06 on 224 px crops). The texture is a
Gaussian random field with the spectrum ``f**-1.15`` (the quantile mapping below adds fine
detail, so the exponent is calibrated on the reference's SSIM: 1.0 gave 0.04-0.057 lower SSIM,
1.2 gave 0.003-0.010 higher), mapped through the chosen profile's quantiles channel by
channel (one field for all channels: the photographs' channels correlate at 0.94-1.0, except
frost1's red). So it has the photographs' brightness, contrast, tint and scale-free grain, not
their crystal shapes. Profiles are drawn per image with the photographs' frequencies (1, 2, 1,
1 of 5). The field is relative to the image (a power law has no scale), so nothing is rescaled.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bench.threats.corruptions import random_fields as rf

LEVELS = (0.002, 0.01, 0.03, 0.07, 0.13, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.87, 0.93, 0.97, 0.99, 0.998)
PROFILES = (  # (R, G, B) quantiles at LEVELS of frost1, frost2 (= frost3), frost4, frost5
    ((.102, .122, .145, .169, .192, .212, .239, .263, .290, .319, .353, .392, .427, .475, .529, .588, .643),
     (.439, .455, .475, .494, .514, .529, .549, .565, .580, .596, .616, .639, .659, .686, .710, .741, .780),
     (.510, .525, .545, .561, .580, .596, .616, .635, .651, .663, .682, .702, .718, .741, .761, .792, .827)),
    ((.447, .541, .604, .655, .694, .725, .757, .780, .800, .816, .835, .855, .875, .894, .918, .945, .969),
     (.451, .549, .616, .667, .710, .741, .773, .796, .816, .835, .855, .878, .894, .914, .933, .961, .984),
     (.471, .573, .643, .698, .741, .776, .808, .835, .855, .878, .894, .918, .933, .949, .965, .980, .988)),
    ((.188, .275, .333, .376, .424, .455, .486, .514, .541, .565, .592, .624, .651, .694, .753, .851, .937),
     (.239, .329, .388, .435, .482, .514, .549, .576, .600, .624, .651, .682, .710, .753, .816, .910, .992),
     (.267, .365, .424, .478, .525, .561, .592, .620, .647, .675, .702, .737, .769, .812, .878, .965, 1.0)),
    ((.102, .133, .165, .208, .251, .290, .337, .380, .424, .467, .518, .580, .643, .722, .816, .910, .980),
     (.145, .176, .212, .255, .298, .337, .384, .424, .467, .514, .561, .620, .678, .757, .843, .929, .988),
     (.188, .220, .259, .306, .349, .388, .431, .475, .514, .557, .604, .663, .718, .788, .871, .949, .996)),
)
PHOTO_TO_PROFILE = (0, 1, 1, 2, 3)  # the reference draws frost1..frost5 uniformly
SPECTRAL_EXPONENT = 1.15


def frost_texture(seeds: Tensor, size: tuple[int, int]) -> Tensor:
    """Per-image frost texture in [0, 1].

    Args:
        seeds: int64 ``(N,)``.
        size: ``(H, W)``.

    Returns:
        float32 ``(N, 3, H, W)``, RGB.
    """
    h, w = size
    field = rf.spectral_fields(seeds, size, [rf.power_law_gain(SPECTRAL_EXPONENT)], "frost")[0]
    u = 0.5 * (1 + torch.erf(field.to(torch.float64) / 2**0.5))  # N(0, 1) -> U(0, 1)
    levels = torch.tensor(LEVELS, dtype=torch.float64, device=seeds.device)
    upper = torch.searchsorted(levels, u.contiguous()).clamp(1, len(LEVELS) - 1)
    lo, hi = levels[upper - 1], levels[upper]
    t = ((u - lo) / (hi - lo)).clamp(0, 1).unsqueeze(1)  # below/above the table: its end values
    photo = rf.randint(seeds, (1,), 0, len(PHOTO_TO_PROFILE) - 1, "frost/photo")[:, 0]
    profile = torch.tensor(PHOTO_TO_PROFILE, device=seeds.device)[photo]
    table = torch.tensor(PROFILES, dtype=torch.float64, device=seeds.device)[profile]  # (N, 3, L)
    index = (upper - 1).unsqueeze(1).expand(-1, 3, -1, -1).reshape(len(seeds), 3, h * w)
    low = table.gather(2, index).reshape(-1, 3, h, w)
    high = table.gather(2, index + 1).reshape(-1, 3, h, w)
    return (low + t * (high - low)).to(torch.float32)
