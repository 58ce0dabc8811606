"""Few-shot episodes: a seeded training sampler and fixed, hashed test-episode sets.

An episode is drawn as indices first (on the CPU, from a seeded generator, so the stream is
the same on every device) and materialised by ONE index gather into the uint8 image tensor.
Within an episode the support block comes first and the query block second, so that a single
gather yields both halves as views. Labels are remapped to ``0..way-1`` in class-major order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import torch

from bench.data.dataset import ImageDataset
from bench.seeding import generator

GATHER_CHUNK = 32


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot task, already split.

    Attributes:
        support_x: float ``(way * shot, C, H, W)`` in [0, 1].
        support_y: int64 ``(way * shot,)`` in ``0..way-1``.
        query_x: float ``(way * query, C, H, W)`` in [0, 1].
        query_y: int64 ``(way * query,)``.
        classes: int64 ``(way,)``: the data set's class id behind each episode label (for
            methods that pre-train on global labels, e.g. Chen et al. 2019's baseline).
        outliers: float ``(way * shot, C, H, W)``: images of classes of the same split that
            are not in the episode, for threats that declare ``needs_outliers``
            (`EpisodeSet.with_outliers`); None otherwise.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    classes: torch.Tensor | None = None
    outliers: torch.Tensor | None = None

    @property
    def way(self) -> int:
        return int(self.support_y.max()) + 1


class EpisodeSampler:
    """Draws ``way``-way ``shot``-shot episodes with ``query`` queries per class from one split.

    Args:
        dataset: the in-memory data set (its images may live on any device).
        split: ``"train"``, ``"val"`` or ``"test"``.
        way, shot, query: episode shape; every class of the split must have at least
            ``shot + query`` samples (checked by the suite validator).
        within: a grouping of ``dataset.groups``: each episode's classes come from one group,
            drawn uniformly among the groups of the split (Lake et al. 2015's within-alphabet
            runs); every group must hold ``way`` classes (checked by the suite validator).
    """

    def __init__(self, dataset: ImageDataset, split: str, way: int, shot: int, query: int,
                 within: str | None = None) -> None:
        self.images = dataset.images
        self.labels = dataset.labels
        self.way, self.shot, self.query = way, shot, query
        self.table, counts = dataset.class_table(split)
        self.group_rows = dataset.group_rows(split, within) if within else None
        # Padding slots (beyond a class's true count) get a key below every real one, so the
        # top-k never picks them.
        width = self.table.shape[1]
        self.pad_key = (torch.arange(width)[None, :] >= counts[:, None]).to(torch.float32) * 2.0
        device = self.images.device
        self.support_y = torch.arange(way, device=device).repeat_interleave(shot)
        self.query_y = torch.arange(way, device=device).repeat_interleave(query)

    def draw_indices(self, gen: torch.Generator, count: int) -> torch.Tensor:
        """Sample indices of ``count`` episodes: int64 ``(count, way * (shot + query))`` (CPU)."""
        n_classes, width = self.table.shape
        # top-k of uniform keys is a uniform draw without replacement, and O(n) unlike argsort.
        class_keys = torch.rand(count, n_classes, generator=gen)
        if self.group_rows is not None:
            class_keys = self._within_group(class_keys, gen)
        classes = class_keys.topk(self.way, dim=1).indices
        keys = torch.rand(count, self.way, width, generator=gen) - self.pad_key[classes]
        slots = keys.topk(self.shot + self.query, dim=2).indices
        picked = self.table[classes[:, :, None], slots]  # (count, way, shot + query)
        support = picked[:, :, : self.shot].reshape(count, -1)
        query = picked[:, :, self.shot :].reshape(count, -1)
        return torch.cat([support, query], dim=1)

    def _within_group(self, class_keys: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Keys ``(count, n_classes)`` with every class outside each episode's drawn group pushed
        below the rest (keys are in [0, 1), so -1 never reaches the top ``way``)."""
        assert self.group_rows is not None
        groups = int(self.group_rows.max()) + 1
        chosen = torch.randint(groups, (class_keys.shape[0],), generator=gen)
        outside = self.group_rows[None, :] != chosen[:, None]
        return class_keys.masked_fill(outside, -1.0)

    def gather(self, indices: torch.Tensor) -> list[Episode]:
        """Materialise episodes from index rows ``(count, way * (shot + query))``: one gather."""
        flat = indices.reshape(-1).to(self.images.device)
        pixels = self.images.index_select(0, flat).to(torch.float32).mul_(1.0 / 255.0)
        pixels = pixels.view(indices.shape[0], indices.shape[1], *self.images.shape[1:])
        n_support = self.way * self.shot
        # Support is class-major, so every shot-th support label is one class of the episode.
        classes = self.labels.index_select(0, flat).view(indices.shape[0], -1)[:, :n_support:self.shot]
        # unbind makes all per-episode views in one call (iterating a tensor makes them one by one)
        supports, queries = pixels[:, :n_support].unbind(0), pixels[:, n_support:].unbind(0)
        return [Episode(s, self.support_y, q, self.query_y, c)
                for s, q, c in zip(supports, queries, classes.unbind(0), strict=True)]

    def sample(self, gen: torch.Generator, count: int = 1) -> list[Episode]:
        """``count`` fresh episodes from the generator's stream.

        Indices are drawn for all ``count`` at once (the stream does not depend on chunking) and
        materialised ``GATHER_CHUNK`` episodes per gather: chunks of 16-32 episodes (6-13 MB of
        float32 at 28 px, 5-way 5-shot 15-query) ran 1.3-2.8x faster per episode than 64-128 on
        the 2-core CPU, whose larger buffers are fresh pages every call.
        """
        indices = self.draw_indices(gen, count)
        return [e for start in range(0, count, GATHER_CHUNK) for e in self.gather(indices[start:start + GATHER_CHUNK])]


@dataclass(frozen=True)
class EpisodeSet:
    """A fixed set of test episodes, shared by every baseline and every threat.

    Attributes:
        indices: int64 ``(count, way * (shot + query))`` on the CPU.
        key: the identity the set was drawn from (data hash, split, shape, count, seed).
        hash: SHA-256 of ``key`` and ``indices``; logged with every evaluation run.
    """

    sampler: EpisodeSampler
    indices: torch.Tensor
    key: dict
    hash: str

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, i: int) -> Episode:
        return self.sampler.gather(self.indices[i : i + 1])[0]

    def with_outliers(self, i: int, seed: int) -> Episode:
        """Episode ``i`` carrying ``way * shot`` images of the split's other classes (uniform,
        without replacement, from the stream of ``seed``) as ``outliers``."""
        episode = self[i]
        sampler = self.sampler
        candidates = sampler.table[sampler.pad_key == 0]  # each real sample index of the split once (padding repeats)
        labels = sampler.labels.index_select(0, candidates.to(sampler.labels.device)).cpu()
        assert episode.classes is not None
        candidates = candidates[~torch.isin(labels, episode.classes.cpu())]
        picked = candidates[torch.randperm(len(candidates), generator=generator(seed))[:len(episode.support_y)]]
        images = sampler.images.index_select(0, picked.to(sampler.images.device)).to(torch.float32) / 255.0
        return dataclasses.replace(episode, outliers=images)


def fixed_episodes(dataset: ImageDataset, split: str, way: int, shot: int, query: int,
                   count: int, seed: int, within: str | None = None) -> EpisodeSet:
    """The test-episode set for one (data set, split, way, shot, query, count, seed[, within])."""
    sampler = EpisodeSampler(dataset, split, way, shot, query, within)
    indices = sampler.draw_indices(generator(seed), count)
    key = {"data": dataset.content_hash, "split": split, "way": way, "shot": shot,
           "query": query, "count": count, "seed": seed}
    if within:  # absent otherwise, so every hash made before the option existed still holds
        key["within"] = within
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode())
    digest.update(indices.numpy().tobytes())
    return EpisodeSet(sampler, indices, key, digest.hexdigest())
