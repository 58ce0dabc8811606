"""The Python API: a trained baseline from any tracking store, outside a suite run.

    from bench.api import load_trained
    model = load_trained("smoke", "protonet")          # the suite's finished train run
    predictions = model.classify(support_x, support_y, query_x)
    accuracies = model.evaluate("pgd", model.test_episodes(20))

`load_trained` finds the FINISHED train run of (suite, baseline label, data setting, seed) in
the store (or takes a run id), rebuilds the baseline exactly as the runner does and restores
its checkpoint. Images are float ``(N, C, H, W)`` in [0, 1] at the data setting's size and
channels; labels are ``0..way-1``. The rule for the way of a support set: metric baselines
(``Baseline.any_way``: ProtoNet, Matching Nets, ...) adapt to any number of classes; baselines
with a head sized at training (the MAML family, fine-tuning) take support sets of at most the
training way, and their predictions range over that many classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.baseline import Baseline, TaskModel
from bench.data.dataset import ImageDataset
from bench.data.episodes import Episode, fixed_episodes
from bench.errors import BenchError
from bench.plan.jobs import TrainJob, make_plan
from bench.registry import THREATS
from bench.run.evaluate import evaluate_threat
from bench.run.runner import build_baseline, load_dataset
from bench.run.runner import load_checkpoint as restore_checkpoint
from bench.seeding import derive_seed
from bench.suite.load import Suite, load_suite
from bench.suite.params import ParamError, build_config, expand_params
from bench.suite.values import DataSetting
from bench.tracking import CHECKPOINT, Tracker
from bench.tracking.additions import suite_with_additions


@dataclass
class TrainedBaseline:
    """A baseline restored from its train run. ``job``: the train job it was trained as;
    ``setting``: the suite's test setting it was asked for."""

    job: TrainJob
    setting: DataSetting
    suite: Suite
    baseline: Baseline
    dataset: ImageDataset
    by_way: dict[int, Baseline] = field(default_factory=dict)  # any-way baselines, per support way

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor) -> TaskModel:
        """The task model adapted on a support set ``(W * K, C, H, W)``, labels ``(W * K,)``."""
        way = int(support_y.max()) + 1
        if not self.baseline.any_way and way > self.baseline.n_way:
            raise BenchError(f"{self.job.variant.baseline.name} has a {self.baseline.n_way}-way head (sized at "
                             f"training); adapt it on support sets of at most {self.baseline.n_way} classes, "
                             f"or use a metric baseline (any way)")
        device = self.baseline.device
        return self._for_way(way).adapt(support_x.to(device), support_y.to(device))

    def _for_way(self, way: int) -> Baseline:
        """The trained weights in a baseline built for ``way`` classes: an any-way baseline sizes
        what it builds from the support set (ProtoNet's prototypes) by its ``n_way``."""
        if not self.baseline.any_way or way == self.baseline.n_way:
            return self.baseline
        if way not in self.by_way:
            other = build_baseline(self.job, self.dataset, self.baseline.device, way)
            other.load_state_dict(self.baseline.state_dict())
            self.by_way[way] = other
        return self.by_way[way]

    def classify(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        """Predicted labels ``(N,)`` of ``query_x (N, C, H, W)`` after adapting on the support set."""
        model = self.adapt(support_x, support_y)
        with torch.no_grad():
            return model(query_x.to(self.baseline.device)).argmax(-1).cpu()

    def test_episodes(self, count: int, seed: int = 0, split: str = "test") -> list[Episode]:
        """``count`` episodes of its test setting (``split`` classes; not drawn within groups)."""
        d = self.setting
        episodes = fixed_episodes(self.dataset, split, d.way, d.shot, d.query, count,
                                  derive_seed(seed, "api-episodes", d.name))
        return [episodes[i] for i in range(len(episodes))]

    def evaluate(self, threat: str | dict[str, Any], episodes: list[Episode], seed: int = 0) -> list[float]:
        """Per-episode accuracies under ``threat`` (a name or a suite entry ``{name, params}``)."""
        instance, key = make_threat(threat)
        seeds = [derive_seed(seed, key, i) for i in range(len(episodes))]
        return evaluate_threat(self.baseline, _Episodes(episodes), instance, seeds)


class _Episodes:
    """A list of episodes with the indexing `evaluate_threat` uses."""

    def __init__(self, episodes: list[Episode]) -> None:
        self.episodes = episodes

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, index: int) -> Episode:
        return self.episodes[index]

    def with_outliers(self, index: int, seed: int) -> Episode:
        """The episode as given: the caller's own ``Episode.outliers`` if it set them, else
        none (``support_outliers`` then falls back to scrambled images, with a warning)."""
        return self.episodes[index]


def make_threat(entry: str | dict[str, Any]) -> tuple[Any, str]:
    """A threat instance from a suite entry (params validated as in the YAML) and its key."""
    item = {"name": entry} if isinstance(entry, str) else dict(entry)
    cls = THREATS.get(str(item.get("name")))
    try:
        points = expand_params(item.get("params"), cls.Config, "threat.params")
        if len(points) != 1:
            raise ParamError("threat.params", "give one value per parameter (lists are grid axes in suites)")
        config = build_config(cls.Config, points[0], "threat.params")
    except ParamError as exc:
        raise BenchError(str(exc)) from exc
    return cls(config), f"{cls.name}:{sorted(points[0].items())}"


def _job(suite: Suite, label: str, setting: str | None, seed: int) -> tuple[TrainJob, DataSetting]:
    """The suite's train job of ``label`` (a baseline label) and seed that serves the test
    setting labelled ``setting``, with that setting."""
    plan = make_plan(suite)
    served = {(e.train.key, e.setting): e.train for t in plan.train_jobs for e in plan.eval_jobs[t.key]}
    jobs = [(job, d) for (_, d), job in served.items() if job.variant.baseline.label == label and job.seed == seed
            and (setting is None or d.label == setting)]
    if not jobs:
        labels = sorted({j.variant.baseline.label for j in make_plan(suite).train_jobs})
        raise BenchError(f"suite {suite.name!r} has no train job for baseline {label!r}, seed {seed}"
                         f"{f', setting {setting!r}' if setting else ''}. Labels: {', '.join(labels)}; "
                         f"settings: {', '.join(d.label for d in suite.datasets)}")
    if len(jobs) > 1:
        raise BenchError(f"{label!r} is tested on {len(jobs)} data settings in {suite.name!r}; name one with "
                         f"setting=, e.g. {jobs[0][1].label!r}")
    return jobs[0]


def load_trained(suite: str, label: str, setting: str | None = None, seed: int = 0,
                 tracking_uri: str | None = None, device: str = "cpu", run_id: str | None = None,
                 overrides: tuple[str, ...] = ()) -> TrainedBaseline:
    """The trained baseline ``label`` of ``suite`` (a name or path, with ``--set``-style
    ``overrides``) from the store at ``tracking_uri`` (default as `bench run`'s); ``run_id``
    picks a train run directly. Raises `BenchError` when it has not been trained there."""
    parsed = suite_with_additions(suite, overrides, tracking_uri)  # `bench eval-model` labels too
    job, test_setting = _job(parsed, label, setting, seed)
    tracker = Tracker(tracking_uri, parsed.name, create=False)
    found = run_id or tracker.finished().get(job.key)
    if found is None:
        raise BenchError(f"{job.name} has no finished train run in {tracker.uri!r}: run `bench run {suite}` "
                         f"first (or pass tracking_uri=)")
    dataset = load_dataset(job.data.name, job.data.image_size, device)
    baseline = build_baseline(job, dataset, torch.device(device))
    restore_checkpoint(baseline, job, tracker.read_file(found, CHECKPOINT))
    return TrainedBaseline(job, test_setting, parsed, baseline, dataset)


def export_checkpoint(suite: str, label: str, out: str, setting: str | None = None, seed: int = 0,
                      tracking_uri: str | None = None, overrides: tuple[str, ...] = ()) -> Path:
    """Write the trained baseline ``label`` of ``suite`` to ``out``, a self-describing checkpoint
    (`bench.exchange`) that `load_checkpoint` restores without the store; returns its path."""
    from bench.exchange import checkpoint_content

    trained = load_trained(suite, label, setting, seed, tracking_uri, overrides=overrides)
    tracker = Tracker(tracking_uri, trained.suite.name, create=False)
    run_id = tracker.finished()[trained.job.key]
    tags = tracker.run_tags(run_id)
    content = checkpoint_content(trained.job, trained.setting, trained.suite, trained.baseline, tags,
                                 tracker.records())
    path = Path(out).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(content, partial)
    partial.replace(path)  # never a half-written checkpoint under the final name
    return path


def load_checkpoint(path: str, device: str = "cpu") -> TrainedBaseline:
    """The trained baseline in a `bench export` file, rebuilt from the entry it carries and
    restored bit for bit, without any store."""
    from bench.exchange import read_checkpoint, rebuild

    job, setting, suite, baseline, dataset = rebuild(read_checkpoint(path), device)
    return TrainedBaseline(job, setting, suite, baseline, dataset)


__all__ = ["TrainedBaseline", "benchmark", "export_checkpoint", "load_checkpoint", "load_trained", "make_threat"]


def benchmark(model: Any, suite: str, label: str, weights: str | None = None, head: str = "auto",
              transductive: bool = False, tracking_uri: str | None = None, device: str = "auto",
              workers: int | None = None, skip_gradient_threats: bool = False) -> list[Any]:
    """Evaluate a model trained elsewhere on ``suite``'s fixed test episodes under every threat of
    the suite, recorded so that `bench report SUITE` shows it as the row ``label`` beside the
    suite's baselines (`bench.scheduler.model_eval`; the CLI twin is `bench eval-model`). Nothing is trained.

    Args:
        model: what builds the network, called with no arguments in every worker: a class or
            function defined in an importable module (not ``__main__``), or its
            ``"package.module:attribute"``. It returns an embedding (images ``(N, C, H, W)`` in
            [0, 1] -> features ``(N, D)``) or a module with ``adapt(support_x, support_y)``
            returning a task model (images -> logits ``(N, way)``).
        weights: a ``torch.save(model.state_dict())`` file loaded into it (hashed: a changed
            file makes the runs stale).
        head: ``auto``, ``prototype``, ``linear`` or ``model`` (`baselines.pretrained`).
        transductive: the model's output for an image depends on its batch (declared mode).
        skip_gradient_threats: run the other threats when the model is not differentiable.

    Returns:
        One `bench.scheduler.JobOutcome` per data setting (accuracies per threat).

    Raises:
        BenchError: the model cannot be imported, built, loaded or run, its logits have the
            wrong shape, or the label is one of the suite's baselines; nothing is recorded.
    """
    from bench.scheduler import RunOptions
    from bench.scheduler.model_eval import ModelRun
    from bench.suite.added import model_entry
    from bench.user_code import existing_file

    if weights is not None:
        existing_file(weights, "weights")
    entry = model_entry(factory_reference(model), label, weights, head, transductive)
    request = ModelRun(suite, entry, (), skip_gradient_threats)
    return list(run_model(request, tracking_uri, RunOptions(device=device, workers=workers)))


def factory_reference(model: Any) -> str:
    """``package.module:attribute`` for a reference string, class or module-level function."""
    if isinstance(model, str):
        return model
    if isinstance(model, torch.nn.Module):
        raise BenchError(f"benchmark() takes what builds the model, not a built {type(model).__name__}: pass its "
                         f"class (or a function returning it) and save its weights with torch.save(model."
                         f"state_dict(), PATH) for weights=PATH, so every worker process can rebuild it.")
    module, name = getattr(model, "__module__", None), getattr(model, "__qualname__", "")
    if not callable(model) or module is None or module == "__main__" or "<" in name:
        raise BenchError(f"benchmark() needs a class or function defined at the top level of an importable module "
                         f"(got {model!r:.80}): worker processes import it by name. Move it into a .py file "
                         f"beside your suite (or in your package) and import it from there.")
    return f"{module}:{name}"


def run_model(request: Any, tracking_uri: str | None, options: Any, dry_run: bool = False) -> Any:
    """Check, then evaluate the model of ``request`` (a `bench.scheduler.model_eval.ModelRun`;
    ``options``: `bench.scheduler.RunOptions`); returns the plan (``dry_run``) or the
    `bench.scheduler.JobOutcome` list. The entry is stored with the suite's runs before the
    first job starts, so an interrupted run still reports."""
    from bench.scheduler import run_suite
    from bench.scheduler.model_eval import model_plan
    from bench.tracking.additions import stored_additions

    name = load_suite(request.suite, request.overrides).name
    plan = model_plan(request, stored_additions(name, tracking_uri))
    if dry_run:
        return plan
    tracker = Tracker(tracking_uri, name, description=plan.suite.description)
    tracker.add_entry("baselines", request.entry["label"], request.entry)
    return run_suite(plan.suite, tracking_uri, options, plan=plan)
