"""Every corruption of `bench.threats.corruptions` as a threat (ImageNet-C protocol), and the
support-query shift of Bennequin et al. 2021.

The queries are corrupted, the support set stays clean (the model adapts on clean data and
is tested on shifted data, as in Hendrycks & Dietterich 2019); ``target: both`` corrupts the
support set too. Each image's corruption is seeded by (episode seed, image position), so the
same episode gets the same corruption in every run and for every baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from bench.data.episodes import Episode
from bench.registry import THREATS
from bench.threats.base import AdaptFn, Threat, ThreatKind, adapted_correct
from bench.threats.corruptions import COLOUR_ONLY, CORRUPTIONS, corrupt

SOURCE = "Hendrycks & Dietterich 2019, Benchmarking Neural Network Robustness to Common Corruptions"
SHIFT_SOURCE = ("Bennequin et al. 2021, Bridging Few-Shot Learning and Adaptation: New Challenges of "
                "Support-Query Shift")


@dataclass(frozen=True)
class CorruptionConfig:
    """Attributes:
        severity: 1 (mild) to 5 (severe), rescaled to the image size (docs/corruptions.md).
        target: ``"query"`` corrupts the queries only; ``"both"`` the support set as well.
    """

    severity: Literal[1, 2, 3, 4, 5] = 3
    target: Literal["query", "both"] = "query"


@dataclass(frozen=True)
class ElasticConfig(CorruptionConfig):
    """Attributes (besides severity and target):
        table: the published parameter table, ``"imagecorruptions"`` (monotone in severity, the
            default) or ``"imagenet-c"`` (Hendrycks' original); see `bench.threats.corruptions.elastic`.
    """

    table: Literal["imagecorruptions", "imagenet-c"] = "imagecorruptions"


def image_seeds(seed: int, count: int, offset: int, device: torch.device) -> torch.Tensor:
    """One int64 seed per image: ``(count,)``, distinct per position within the episode."""
    return (torch.arange(count, dtype=torch.int64) + offset + seed % (2**62)).to(device)


class Corruption(Threat):
    """Classify corrupted queries after adapting on the (clean by default) support set.

    A colour-only corruption declares `Threat.needs_color` (validation refuses it on
    one-channel data sets, where it would be the identity).
    """

    kind = ThreatKind.CORRUPTION
    source = SOURCE
    Config = CorruptionConfig

    @classmethod
    def display(cls, config: Any) -> str:
        """``Gaussian noise, s3``; ``support + query`` when both are corrupted; the elastic
        table when it is not the default."""
        text = f"{cls.title}, s{config.severity}"
        text += " (support + query)" if config.target == "both" else ""
        table = getattr(config, "table", ElasticConfig.table)
        return text + (f" ({table} table)" if table != ElasticConfig.table else "")

    def _options(self) -> dict[str, str]:
        return {"table": self.config.table} if isinstance(self.config, ElasticConfig) else {}

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        severity, support_x = self.config.severity, episode.support_x
        n_support, n_query = support_x.shape[0], episode.query_x.shape[0]
        if self.config.target == "both":
            seeds = image_seeds(seed, n_support, n_query, support_x.device)
            support_x = corrupt(support_x, self.name, severity, seeds, **self._options())
        query_seeds = image_seeds(seed, n_query, 0, support_x.device)
        query_x = corrupt(episode.query_x, self.name, severity, query_seeds, **self._options())
        return adapted_correct(adapt, support_x, episode.support_y, query_x, episode.query_y)


# "name/severity" for every corruption and severity, or "clean": the values a side may take.
SPECS = ("clean", *(f"{name}/{s}" for name in CORRUPTIONS for s in range(1, 6)))
CorruptionSpec = Literal[SPECS]  # type: ignore[valid-type]


@dataclass(frozen=True)
class SupportQueryShiftConfig:
    """Attributes:
        support: ``"name/severity"`` applied to the support images, or ``"clean"``.
        query: ``"name/severity"`` applied to the queries, or ``"clean"``.
    """

    support: CorruptionSpec = "fog/3"  # type: ignore[valid-type]
    query: CorruptionSpec = "contrast/5"  # type: ignore[valid-type]


def corruption_title(name: str) -> str:
    """``gaussian_noise`` -> ``Gaussian noise``: the corruption as papers name it in tables."""
    return name.replace("_", " ").capitalize().replace("Jpeg", "JPEG")


def _spec_text(spec: str) -> str:
    name, _, severity = spec.partition("/")
    return f"{corruption_title(name).lower()} s{severity}" if severity else name


def _apply(spec: str, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    if spec == "clean":
        return images
    name, severity = spec.split("/")
    return corrupt(images, name, int(severity), seeds)


class SupportQueryShift(Threat):
    """Support and queries corrupted differently, e.g. support fog/3, queries contrast/5.

    The support-query shift protocol of Bennequin et al. 2021: the model adapts on support
    images from one distribution and is tested on queries from another, each an ImageNet-C
    corruption at a severity (Hendrycks & Dietterich 2019). Seeds as `Corruption`'s, so
    ``support: clean`` gives exactly the queries of the ``query`` corruption threat.
    """

    name = "support_query_shift"
    title = "Support-query shift"
    kind = ThreatKind.SHIFT
    source = SHIFT_SOURCE
    Config = SupportQueryShiftConfig

    @classmethod
    def display(cls, config: Any) -> str:
        """``Support fog s3 / query contrast s5``."""
        return f"Support {_spec_text(config.support)} / query {_spec_text(config.query)}"

    def evaluate(self, adapt: AdaptFn, episode: Episode, seed: int) -> torch.Tensor:
        n_support, n_query = episode.support_x.shape[0], episode.query_x.shape[0]
        device = episode.support_x.device
        support_x = _apply(self.config.support, episode.support_x, image_seeds(seed, n_support, n_query, device))
        query_x = _apply(self.config.query, episode.query_x, image_seeds(seed, n_query, 0, device))
        return adapted_correct(adapt, support_x, episode.support_y, query_x, episode.query_y)


def _register_all() -> None:
    configs = {"elastic_transform": ElasticConfig}
    for corruption in CORRUPTIONS:
        attrs = {"name": corruption, "title": corruption_title(corruption), "__module__": __name__,
                 "__doc__": f"The {corruption} corruption. {SOURCE}.",
                 "Config": configs.get(corruption, CorruptionConfig), "needs_color": corruption in COLOUR_ONLY}
        threat: type[Corruption] = type(corruption, (Corruption,), attrs)
        THREATS.register(threat)
    THREATS.register(SupportQueryShift)


_register_all()
