"""A researcher's own network as a backbone, and weights files for any backbone.

``backbone: {name: module, params: {factory: mypkg.models:make_encoder}}`` builds whatever
the factory returns (called with no arguments): an ``nn.Module`` mapping images ``(N, C, H, W)``
in [0, 1] to features ``(N, D)``, or, for the ``pretrained`` baseline's ``model`` head, a module
with its own ``adapt(support_x, support_y)`` returning a task model (images -> logits).
``backbone: {..., weights: PATH}`` loads ``torch.save(module.state_dict(), PATH)`` into the
backbone just built, for every backbone (a pretrained conv4 or ResNet-12 as well).
Nothing is downloaded: weights come from files the researcher has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError
from bench.fields import code_reference
from bench.registry import BACKBONES
from bench.user_code import load_reference, resolve_file


@dataclass(frozen=True)
class ModuleConfig:
    """Attributes:
        factory: ``package.module:attribute``, a class or function called with no arguments
            that returns the model (see the module docstring).
        transductive: True when the model's output for one image depends on the other images
            of its batch (batch norm on batch statistics at test time); reports mark such rows.
            Checked against the model before a run.
    """

    factory: str = code_reference("")

    transductive: bool = False

    def __post_init__(self) -> None:
        if not self.factory:
            raise ValueError("factory: required: the package.module:attribute that builds your model "
                             "(e.g. mymodels.encoders:make_encoder)")


@BACKBONES.register
class ModuleBackbone(nn.Module):
    """The model a factory builds, held as ``model`` (its weights file is loaded into it)."""

    name = "module"
    Config = ModuleConfig
    # Built by a researcher's factory: validation only imports it; `bench.scheduler.model_eval.preflight`
    # runs it on a real episode (a meta-device build would run the researcher's code blind).
    user_code = True

    def __init__(self, config: ModuleConfig, in_channels: int, image_size: int) -> None:
        super().__init__()
        built = load_reference(config.factory)()
        if not isinstance(built, nn.Module):
            raise BenchError(f"{config.factory}() returned a {type(built).__name__}, not a torch.nn.Module. Return the "
                             f"network (images (N, C, H, W) -> features (N, D), or a module with adapt()).")
        self.model = built

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @classmethod
    def transductive(cls, config: ModuleConfig) -> bool:
        return config.transductive

    def weights_target(self) -> nn.Module:
        """What a weights file is loaded into: the researcher's model, under its own key names."""
        return self.model


def load_weights(backbone: nn.Module, name: str) -> None:
    """Load the weights file ``name`` (`bench.user_code.resolve_file`) into ``backbone``.

    Raises:
        BenchError: the file is missing, holds no state dict, or does not fit the backbone
            (missing, unexpected or misshapen entries, named).
    """
    path = resolve_file(name)
    target = backbone.weights_target() if isinstance(backbone, ModuleBackbone) else backbone
    state = read_state_dict(path, name)
    problems = fit_problems(target, state)
    if problems:
        raise BenchError(f"weights file {name!r} ({path}) does not fit the backbone built for it "
                         f"({type(target).__name__}): {'; '.join(problems)}. Save the weights of the same "
                         f"architecture with torch.save(model.state_dict(), PATH).")
    target.load_state_dict(state)


def read_state_dict(path: Path, name: str) -> dict[str, Any]:
    """The tensors of a ``torch.save(state_dict)`` file, or of a checkpoint exported by
    ``bench export`` (its ``backbone`` entry)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise BenchError(f"weights file {name!r}: {path} does not exist.") from exc
    except Exception as exc:  # noqa: BLE001 - a pickle of other objects, a truncated file, ...
        raise BenchError(f"weights file {name!r} ({path}) is not a tensor state dict that torch.load(weights_only="
                         f"True) can read: {type(exc).__name__}: {str(exc)[:200]}. Save it with "
                         f"torch.save(model.state_dict(), PATH).") from exc
    if isinstance(state, dict) and isinstance(state.get("backbone"), dict):
        state = state["backbone"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"weights file {name!r} ({path}) holds a {type(state).__name__}, not a state dict of "
                         f"tensors. Save it with torch.save(model.state_dict(), PATH).")
    return state


def fit_problems(target: nn.Module, state: dict[str, Any]) -> list[str]:
    """What keeps ``state`` from loading into ``target``: missing, unexpected, misshapen keys."""
    own = target.state_dict()
    problems = []
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                 if k in state and state[k].shape != v.shape]
    for what, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", misshapen)):
        if items:
            problems.append(f"{what}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
    return problems
