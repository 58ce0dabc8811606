"""A batched JPEG round trip in torch (baseline JPEG, as PIL/libjpeg writes it).

Used by the ``jpeg_compression`` corruption of Hendrycks & Dietterich 2019 (ImageNet-C), which
saves each image with PIL at a low quality and reads it back. Steps, whole batch at once:
8-bit input -> JFIF YCbCr -> 4:2:0 chroma subsampling (PIL's default for RGB) -> level shift ->
8x8 block DCT-II -> quantisation with the ITU-T T.81 Annex K tables scaled by quality
(libjpeg's rule) -> dequantisation -> inverse DCT -> chroma upsampling -> RGB -> 8-bit.

Deviations from libjpeg: a float DCT instead of the "islow" integer DCT, and bilinear chroma
upsampling (libjpeg's "fancy" h2v2 upsampling is the same triangle filter away from the
borders). Pixel values typically differ from PIL's output by at most a few levels of 255.
"""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor

_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
         14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
         18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
         49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_CHROMA = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
           24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32
_RGB_TO_YCC = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def quant_table(quality: int, chroma: bool) -> Tensor:
    """libjpeg's ``jpeg_quality_scaling``: base table scaled, rounded, clamped to 1..255.

    Returns:
        float64 ``(8, 8)``.
    """
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    base = torch.tensor(_CHROMA if chroma else _LUMA, dtype=torch.float64).reshape(8, 8)
    return torch.clamp(torch.floor((base * scale + 50) / 100), 1, 255)


@cache
def _dct_matrix() -> Tensor:
    """Orthonormal 8-point DCT-II matrix; JPEG's 2-D FDCT is ``D @ block @ D.T``."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k.unsqueeze(0) + 1) * k.unsqueeze(1) * math.pi / 16) * 0.5
    d[0] /= math.sqrt(2.0)
    return d


def _blocks_roundtrip(plane: Tensor, table: Tensor) -> Tensor:
    """Quantise one level-shifted plane ``(B, H, W)`` (H, W multiples of 8) in 8x8 blocks."""
    b, h, w = plane.shape
    d = _dct_matrix().to(plane)
    blocks = plane.reshape(b, h // 8, 8, w // 8, 8).transpose(2, 3)
    coef = d @ blocks @ d.T
    q = table.to(plane)
    coef = torch.round(coef / q) * q
    return (d.T @ coef @ d).transpose(2, 3).reshape(b, h, w)


def _pad_to(x: Tensor, multiple: int) -> Tensor:
    """Replicate the last row/column up to a multiple (libjpeg's edge expansion)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def jpeg_roundtrip(images: Tensor, quality: int) -> Tensor:
    """Encode and decode a batch as baseline JPEG at ``quality``.

    Args:
        images: float ``(N, C, H, W)`` in [0, 1], C = 1 (grayscale JPEG) or 3 (YCbCr 4:2:0).
        quality: 1..100, libjpeg's scale.

    Returns:
        float ``(N, C, H, W)`` in [0, 1] on the 255-level grid, same dtype as ``images``.
    """
    n, c, h, w = images.shape
    # float32 is exact enough here: coefficients are at most 2040 in magnitude.
    x = torch.round(images.to(torch.float32).clamp(0, 1) * 255.0)
    if c == 1:
        y = _blocks_roundtrip(_pad_to(x, 8)[:, 0] - 128.0, quant_table(quality, False))
        out = torch.round(y + 128.0).clamp(0, 255)[:, None, :h, :w]
        return (out / 255.0).to(images.dtype)
    ycc = torch.einsum("ij,njhw->nihw", torch.tensor(_RGB_TO_YCC, dtype=x.dtype, device=x.device), _pad_to(x, 16))
    luma = _blocks_roundtrip(ycc[:, 0] - 128.0, quant_table(quality, False))
    chroma = F.avg_pool2d(ycc[:, 1:], 2).reshape(2 * n, ycc.shape[-2] // 2, ycc.shape[-1] // 2)
    chroma = _blocks_roundtrip(chroma, quant_table(quality, True)).reshape(n, 2, *chroma.shape[-2:])
    # The decoder rounds each plane to 8 bits before colour conversion.
    luma = torch.round(luma + 128.0).clamp(0, 255)
    chroma = torch.round(F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False))
    chroma = chroma.clamp(-128, 127)
    r = luma + 1.402 * chroma[:, 1]
    g = luma - 0.344136 * chroma[:, 0] - 0.714136 * chroma[:, 1]
    b = luma + 1.772 * chroma[:, 0]
    out = torch.round(torch.stack([r, g, b], dim=1).clamp(0, 255))[:, :, :h, :w]
    return (out / 255.0).to(images.dtype)
