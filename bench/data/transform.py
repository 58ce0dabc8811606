"""Converting a data set to another's image format, for cross-domain evaluation.

A model trained on one data set sees the test episodes of another (domain shift) only after
the target images are brought to the training format: channels by ITU-R 601 luma (RGB ->
grey) or replication (grey -> RGB), size by antialiased area resampling. The conversion is
stated in the report through the threat's label and documented in docs/threats.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.data.dataset import ImageDataset

LUMA = (0.299, 0.587, 0.114)


def convert_images(images: torch.Tensor, channels: int, size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> uint8 ``(N, channels, size, size)``, in chunks to bound memory."""
    out = []
    for block in images.split(chunk):
        x = block.to(torch.float32)
        if x.shape[1] == 3 and channels == 1:
            x = (x * torch.tensor(LUMA, device=x.device)[None, :, None, None]).sum(1, keepdim=True)
        elif x.shape[1] == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != channels:
            raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear",
                              align_corners=None if x.shape[-1] > size else False)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def match_format(source: ImageDataset, like: ImageDataset) -> ImageDataset:
    """``source`` with ``like``'s channels and image size (unchanged if they already match)."""
    if source.channels == like.channels and source.image_size == like.image_size:
        return source
    images = convert_images(source.images, like.channels, like.image_size)
    return ImageDataset(f"{source.name}->{like.channels}x{like.image_size}", images, source.labels,
                        source.class_names, source.splits,
                        f"{source.content_hash}:{like.channels}x{like.image_size}")
