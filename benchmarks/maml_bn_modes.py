"""Does transductive batch norm explain naturally trained MAML's accuracy under attack?

Finn et al. 2017's MAML normalises every batch by its own statistics, at test time too, so an
attacked query batch is normalised by the attacked batch's statistics. This script takes the
naturally trained MAML of robust-glyphs from the MLflow store (`bench.api.load_trained`) and
evaluates it on the suite's own 40 test episodes, with the suite's per-episode seeds, in two
batch-norm modes:

- **transductive** (as trained and as the suite evaluates it): statistics of the query batch;
  the script checks that it reproduces the store's per-episode accuracies exactly;
- **frozen to the support set**: after adaptation, each batch-norm layer's statistics are those
  of the clean support set under the adapted weights, fixed while the queries are classified and
  attacked (inductive; the attack cannot move them). Deviation: this is a test-time change of a
  model trained with batch statistics, not a model trained inductively (an inductively trained
  MAML, ``maml-inductive-bn`` in attack-strength-glyphs, stays at chance after 150 meta-updates).

The statistics are swapped by substituting `torch.nn.functional.batch_norm` inside
`baselines._common` for the duration of an evaluation (no project code changes). With
``--write-docs`` the table replaces the marked block of docs/threats.md.
Run: ``python -m benchmarks.maml_bn_modes [--tracking-uri URI] [--write-docs]``.
"""

from __future__ import annotations

import argparse
import contextlib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F

import baselines._common as common
from bench.api import load_trained
from bench.baseline import TaskModel
from bench.plan.jobs import component_identity, make_plan, stable_key
from bench.registry import THREATS
from bench.report.index import rewrite_block
from bench.report.tables import markdown_table
from bench.run import worker
from bench.run.evaluate import evaluate_threat, threat_seeds
from bench.run.runner import episode_set
from bench.stats import mean_ci
from bench.tracking import Tracker

SUITE, LABEL = "robust-glyphs", "maml"
THREAT_LABELS = ("clean", "pgd[alpha=2/255,eps=8/255,steps=20]", "pgd[alpha=8/255,eps=32/255,steps=20]")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "threats.md"
BEGIN = ("<!-- maml-bn:begin: written by `python -m benchmarks.maml_bn_modes --write-docs` from the store of "
         "robust-glyphs; do not edit -->")
END = "<!-- maml-bn:end -->"


class _Statistics:
    """Per batch-norm call (in forward order): the recorded (mean, var), or replaying them."""

    def __init__(self) -> None:
        self.stored: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.replaying, self.position = False, 0

    def batch_norm(self, x: torch.Tensor, mean: Any, var: Any, weight: Any, bias: Any, training: bool,
                   momentum: float, eps: float) -> torch.Tensor:
        if mean is not None or not training:  # layers with running statistics: untouched
            return F.batch_norm(x, mean, var, weight, bias, training, momentum, eps)
        if not self.replaying:
            self.stored.append((x.mean((0, 2, 3)).detach(), x.var((0, 2, 3), unbiased=False).detach()))
            return F.batch_norm(x, mean, var, weight, bias, training, momentum, eps)
        mu, sigma2 = self.stored[self.position]
        self.position += 1
        return F.batch_norm(x, mu, sigma2, weight, bias, False, 0.0, eps)


@contextlib.contextmanager
def _swapped(stats: _Statistics) -> Iterator[None]:
    functional = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("__")})
    functional.batch_norm = stats.batch_norm
    with mock.patch.object(common, "F", functional):
        yield


class SupportStatistics(TaskModel):
    """``model`` with every batch-norm layer normalised by the clean support set's statistics."""

    def __init__(self, model: TaskModel, support_x: torch.Tensor) -> None:
        super().__init__()
        self.model, self.stats = model, _Statistics()
        with torch.no_grad(), _swapped(self.stats):
            model(support_x)
        self.stats.replaying = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.stats.position = 0
        with _swapped(self.stats):
            return self.model(x)


def accuracies(uri: str | None) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]]]:
    """Per threat label: per-episode accuracies in both modes, and those the store recorded."""
    model = load_trained(SUITE, LABEL, tracking_uri=uri)
    job, suite = model.job, model.suite
    jobs = {e.threat.label: e for e in make_plan(suite).eval_jobs[job.key] if e.threat.label in THREAT_LABELS}
    frozen = types.SimpleNamespace(adapt=lambda sx, sy: SupportStatistics(model.baseline.adapt(sx, sy), sx))
    out: dict[str, dict[str, list[float]]] = {"transductive": {}, "frozen to the support set": {}}
    for label, ev in jobs.items():
        threat = THREATS.get(ev.threat.name)(ev.threat.config)
        episodes = episode_set(suite, ev, "cpu")
        seeds = threat_seeds(job.seed, episodes, stable_key(component_identity(ev.threat)))
        out["transductive"][label] = evaluate_threat(model.baseline, episodes, threat, seeds)
        out["frozen to the support set"][label] = evaluate_threat(frozen, episodes, threat, seeds)  # type: ignore[arg-type]
    recorded = {r.tags["threat_label"]: r.per_episode for r in Tracker(uri, SUITE, create=False).records()
                if r.tags.get("label") == LABEL and r.tags.get("threat_label") in THREAT_LABELS}
    return out, recorded


def table(results: dict[str, dict[str, list[float]]]) -> str:
    headers = ["batch norm at test", "clean", "PGD-20, ε = 8/255", "PGD-20, ε = 32/255"]
    rows = []
    for mode, by_threat in results.items():
        cells = []
        for label in THREAT_LABELS:
            mean, half = mean_ci(by_threat[label])  # the reports' Student-t interval over episodes
            cells.append(f"{100 * mean:.1f} ± {100 * half:.1f}")
        rows.append([mode, *cells])
    return markdown_table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=None, help="the store robust-glyphs was run into")
    parser.add_argument("--write-docs", action="store_true", help="replace the block in docs/threats.md")
    args = parser.parse_args()
    worker.configure(1)  # as a scheduled job runs: one torch thread, deterministic kernels
    results, recorded = accuracies(args.tracking_uri)
    same = all(results["transductive"][k] == recorded.get(k) for k in THREAT_LABELS)
    print(f"transductive mode reproduces the store's per-episode accuracies exactly: {same}")
    text = table(results)
    print(text)
    if args.write_docs and same:
        block = "\n".join([BEGIN, "", text, "", f"Made by `python -m benchmarks.maml_bn_modes` from the store of "
                           f"{SUITE} (the transductive row equals the committed report's cells).", END])
        print(f"wrote {DOCS}" if rewrite_block(DOCS, block, BEGIN, END) else f"no markers in {DOCS}")


if __name__ == "__main__":
    main()
