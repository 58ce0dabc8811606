"""Checkpoints that leave the store: `bench export` writes one, `bench.api.load_checkpoint` reads it.

A checkpoint file is self-describing: the baseline's full state (``state``, the checkpoint the
store holds), its backbone's weights alone (``backbone``: usable as ``--weights`` of `bench
eval-model` or a suite's ``backbone.weights``), the job identity and key, the code fingerprint
and version that trained it, its training setting, the headline metrics the store recorded
for it, and the ``baselines:`` entry (every value resolved) that rebuilds it in any suite.
It holds only tensors and plain values, so ``torch.load(..., weights_only=True)`` reads it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from bench.errors import BenchError
from bench.fields import identity_fields
from bench.model_backbone import ModuleBackbone
from bench.plan.jobs import TrainJob, make_plan
from bench.run.runner import build_baseline, load_dataset
from bench.suite.load import BaselineVariant, DataSetting, Suite, load_suite
from bench.tracking.records import CODE_VERSION, FINGERPRINT, JOB_KEY, THREAT_LABEL

FORMAT = "fewshot-bench checkpoint 1"


def rebuild_entry(variant: BaselineVariant) -> dict[str, Any]:
    """The ``baselines:`` entry of ``variant`` with every value resolved (defaults included)."""
    backbone: dict[str, Any] = {"name": variant.backbone.name, "params": dataclasses.asdict(variant.backbone.config)}
    if variant.backbone.weights:
        backbone["weights"] = variant.backbone.weights
    return {"name": variant.baseline.name, "label": variant.baseline.label,
            "params": dataclasses.asdict(variant.baseline.config), "backbone": backbone,
            "train": identity_fields(variant.train)}


def checkpoint_content(job: TrainJob, setting: DataSetting, suite: Suite, baseline: Any,
                       run_tags: dict[str, str], records: list[Any]) -> dict[str, Any]:
    """What `bench export` writes for the train job ``job`` (tested at ``setting``); ``records``:
    the suite's eval records, whose finished evaluations of ``job`` at ``setting`` give the metrics."""
    backbone = getattr(baseline, "backbone", None)
    target = backbone.weights_target() if isinstance(backbone, ModuleBackbone) else backbone
    plan = make_plan(suite)
    keys = {e.key for e in plan.eval_jobs.get(job.key, ()) if e.setting == setting}
    metrics = {r.tags.get(THREAT_LABEL, ""): {"accuracy": r.metrics.get("accuracy"), "ci95": r.metrics.get("ci95")}
               for r in records if r.tags.get(JOB_KEY) in keys and r.status == "FINISHED"}
    return {"format": FORMAT, "suite": suite.name, "label": job.variant.baseline.label, "seed": job.seed,
            "key": job.key, "identity": job.identity, "entry": rebuild_entry(job.variant),
            "training_setting": dataclasses.asdict(job.data), "test_setting": dataclasses.asdict(setting),
            "fingerprint": run_tags.get(FINGERPRINT, ""), "code_version": run_tags.get(CODE_VERSION, ""),
            "metrics": metrics, "state": baseline.state_dict(),
            "backbone": target.state_dict() if target is not None else {}}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The content of a `bench export` file; a clear error for anything else."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise BenchError(f"checkpoint {file}: no such file. Write one with `bench export SUITE LABEL --out FILE`.")
    try:
        content = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise BenchError(f"checkpoint {file} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); "
                         f"write one with `bench export SUITE LABEL --out FILE`.") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise BenchError(f"{file} is not a `bench export` checkpoint (no format {FORMAT!r}); a plain state dict "
                         f"is a weights file: use it as --weights of `bench eval-model`.")
    return content


def rebuild(content: dict[str, Any], device: str) -> tuple[TrainJob, DataSetting, Suite, Any, Any]:
    """The train job, test setting, one-entry suite, baseline (state restored) and data set of a
    checkpoint, without the store; refused when today's code names the job differently."""
    suite = _one_entry_suite(content)
    job = make_plan(suite).train_jobs[0]
    if job.key != content["key"]:
        raise BenchError(f"the checkpoint's job key {content['key']} differs from {job.key}, the key today's code "
                         f"gives its entry: it was written by a version whose configuration schema differs.")
    dataset = load_dataset(job.data.name, job.data.image_size, device)
    baseline = build_baseline(job, dataset, torch.device(device))
    baseline.load_state_dict(content["state"])
    return job, suite.datasets[0], suite, baseline, dataset


def _one_entry_suite(content: dict[str, Any]) -> Suite:
    test = content["test_setting"]
    data = {k: test[k] for k in ("name", "image_size", "way", "shot", "query")}
    if test.get("within"):
        data["within"] = test["within"]
    raw = {"name": content["suite"], "seeds": [content["seed"]], "datasets": [data],
           "baselines": [content["entry"]], "threats": ["clean"]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint-suite.yaml"
        path.write_text(yaml.safe_dump(_plain(raw), sort_keys=False), encoding="utf-8")
        return load_suite(str(path))


def _plain(value: Any) -> Any:
    """Tuples as lists (YAML), recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
