"""Shared test data and helpers (test modules never import each other; they import this).

- `VALID_SUITE`: the smallest valid suite, the base every malformed-suite case edits;
- `make_episode`, `tiny`: the synthetic episodes of the conformance battery and tiny Conv4
  baselines (threat and adversarial-training tests);
- the golden suite's fixture records (`GOLDEN_SUITE`, `golden_per_episode`, ...): the golden-file
  tests write them into a real MLflow store, the browser test renders them directly;
- `LineReader`, `kill_group`: wait for a child's line of output with a deadline; kill its group.

Heavy imports (torch, bench) happen inside the functions, so that importing this module stays
cheap for the tests that only need the suite text.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.baseline import Baseline
    from bench.data.episodes import Episode
    from bench.report.model import SettingData

# The smallest valid suite: the base every malformed-suite case edits.
VALID_SUITE = """\
name: ok
datasets: [{name: glyphs, way: 5, shot: 1, query: 5}]
train: {steps: 2, meta_batch: 1}
eval: {episodes: 3}
baselines: [protonet]
threats: [clean]
"""

# ---- synthetic episodes and tiny models ------------------------------------------------------

WAY, SHOT, QUERY, SIZE = 5, 2, 4, 28  # the conformance battery's episodes: 5-way 2-shot, 28 px


def make_episode(seed: int = 0, way: int = WAY, shot: int = SHOT, query: int = QUERY) -> Episode:
    """Each class is a random smooth pattern; samples are the pattern plus small noise."""
    import torch
    import torch.nn.functional as F

    from bench.data.episodes import Episode
    from bench.seeding import generator

    gen = generator(seed)
    patterns = F.interpolate(torch.rand(way, 1, 7, 7, generator=gen), size=SIZE, mode="bilinear")

    def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(way).repeat_interleave(per_class)
        noise = 0.1 * torch.randn(len(labels), 1, SIZE, SIZE, generator=gen)
        return (patterns[labels] + noise).clamp(0, 1), labels

    support_x, support_y = draw(shot)
    query_x, query_y = draw(query)
    return Episode(support_x, support_y, query_x, query_y)


def tiny(name: str, seed: int = 0, hidden: int = 8, bn_stats: str | None = None, **config: object) -> Baseline:
    """A 5-way baseline on a Conv4 with ``hidden`` filters for 28 px images, initialised from ``seed``."""
    import torch

    from bench.backbones import build_backbone
    from bench.registry import BASELINES
    from bench.seeding import torch_rng

    cls = BASELINES.get(name)
    backbone_params = {**cls.backbone_defaults, "hidden": hidden, **({"bn_stats": bn_stats} if bn_stats else {})}
    with torch_rng(seed):
        backbone = build_backbone("conv4", backbone_params, 1, 28)
        return cls(cls.Config(**config), backbone, 5, torch.device("cpu"))


CLEAN = [1.0, 0.9, 0.8, 1.0]


def attack_table(entries: list[tuple[str, str, dict[str, float], list[float]]]) -> SettingData:
    """A report table by hand: one row ("model"), one seed; ``entries``: (label, threat name,
    config, accuracies); worst-case and mean columns added as the report adds them."""
    import numpy as np

    from bench.registry import THREATS
    from bench.report.aggregate import add_aggregates
    from bench.report.model import Cell, Column, SettingData
    from bench.suite.load import DataSetting

    columns, cells = [], {}
    for label, name, params, accuracies in entries:
        cls = THREATS.get(name)
        config = cls.Config(**params)
        shown = tuple(sorted((k, str(v)) for k, v in params.items()))
        columns.append(Column(label, cls.kind, (), name, shown, cls.threat_model(config), cls.gradient_free))
        cells[("model", label)] = Cell((0,), {0: np.asarray(accuracies)}, {0: "h"})
    columns += add_aggregates(columns, cells, ["model"], (0,))
    return SettingData(DataSetting("glyphs", 28, 5, 1), [("model", "protonet")], columns, cells, (0,), {})


# ---- the golden suite's fixture records -------------------------------------------------------

GOLDEN_SUITE = """\
# golden: the fixture suite of the report's golden-file tests (records are synthetic).
name: golden
description: Fixture suite of the report golden tests (synthetic records).
seeds: [0, 1]
datasets:
  - {name: glyphs, way: 5, shot: [1, 5], query: 4}
train: {steps: 3, meta_batch: 2}
eval: {episodes: 12}
baselines:
  - protonet
  - maml
  - {name: protonet, label: protonet-aq, params: {lr: 0.002}}
threats:
  - clean
  - {name: fgsm, params: {eps: [2/255, 8/255]}}
  - {name: pgd, params: {steps: [2, 5]}}
  - {name: gaussian_noise, params: {severity: [1, 3]}}
  - {name: contrast, params: {severity: 3}}
published:
  protonet:
    glyphs 5-way 1-shot: 49.42 +- 0.78
  maml:
    glyphs 5-way 5-shot: {accuracy: "63.1", source: Finn et al. 2017 (illustrative)}
"""
BASE = {"protonet": 0.62, "maml": 0.55, "protonet-aq": 0.58}
DROP = {"clean": 0.0, "fgsm": 0.12, "pgd": 0.2, "gaussian_noise": 0.05, "contrast": 0.08}
EVAL_FAILS = ("maml", "pgd[steps=5]", 1, 1)  # label, threat, shot, seed
TRAIN_FAILS = ("protonet-aq", 5, 0)  # label, shot, seed
PARTLY_RUN = (5, 0, ("clean", "fgsm[eps=8/255]", "gaussian_noise[severity=3]"))  # shot, seed, threats run
ERROR = 'Traceback (most recent call last):\n  File "bench/run/runner.py", line 1\nRuntimeError: {what} (fixture)\n'


def fixture_env() -> dict[str, str]:
    """The environment tags of every fixture run: a fixed one instead of this machine's."""
    from bench.tracking.records import CODE_VERSION, DATA_HASH, DEVICE, PACKAGES

    return {CODE_VERSION: "0.1.0+gfixture", PACKAGES: "python==3.11", DEVICE: "cpu:x86_64", DATA_HASH: "d" * 16}


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (no RNG whose stream could change)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:12], 16) / 16**12


def golden_per_episode(label: str, threat: str, name: str, params: dict, shot: int, seed: int,
                       episodes: int) -> list[float]:
    """Accuracies in twentieths (5-way x 4 queries) with a shared per-episode difficulty."""
    drop = DROP.get(name, 0.1) * (1 + float(params.get("threat.config.severity", 1)) / 4)
    base = BASE.get(label, 0.5) + 0.08 * (shot == 5) - drop
    base -= 4 * float(params.get("threat.config.eps", 0)) if name == "fgsm" else 0
    out = []
    for i in range(episodes):
        p = base + 0.25 * (unit("episode", shot, seed, i) - 0.5) + 0.1 * (unit(label, threat, shot, seed, i) - 0.5)
        out.append(round(min(max(p, 0.0), 1.0) * 20) / 20)
    return out


def golden_train_tags(train: Any) -> dict[str, str]:
    """The recorder's tag schema (`bench.tracking.tags`) with a fixed environment instead of this machine's."""
    from bench.tracking.records import FINGERPRINT
    from bench.tracking.tags import identity_tags

    fingerprint = hashlib.sha256(train.variant.baseline.name.encode()).hexdigest()[:16]
    return {**fixture_env(), **identity_tags("golden", train), FINGERPRINT: fingerprint}


def golden_eval_tags(job: Any) -> dict[str, str]:
    from bench.tracking.records import EPISODES_HASH
    from bench.tracking.tags import identity_tags

    episodes = hashlib.sha256(f"{job.setting}-{job.train.seed}".encode()).hexdigest()
    return {**golden_train_tags(job.train), **identity_tags("golden", job), EPISODES_HASH: episodes}


# ---- child processes ----------------------------------------------------------------------------


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group of a child started with ``start_new_session=True``."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)


class LineReader:
    """Reads a child's stdout on a helper thread to its end, so the pipe never fills and the
    test can wait for a line with a deadline instead of blocking on ``readline`` forever."""

    def __init__(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        self.process, self.lines, self.seen = process, queue.Queue(), []  # type: ignore[var-annotated]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in iter(self.process.stdout.readline, ""):  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put(None)  # end of output

    def wait_for(self, text: str, timeout: float) -> str:
        """The next line containing ``text``; at the deadline the child's group is killed and the
        test fails, as it does when the output ends without such a line."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                kill_group(self.process)
                raise AssertionError(f"no line with {text!r} within {timeout} s; output: {self.seen}") from None
            if line is None:
                raise AssertionError(f"the output ended without a line with {text!r}; output: {self.seen}")
            self.seen.append(line)
            if text in line:
                return line


def bench_in_fresh_process(cwd, *args, env=None):
    """``python -m bench ARGS`` in its own process (the baseline registry loads files once per
    process) with ``env`` as its environment (default: ours); stdout and stderr captured."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env if env is not None else os.environ,
                          capture_output=True, text=True, timeout=600)


BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars")


def chromium(tmp_path, *args: str):
    """Headless Chromium with a private profile under ``tmp_path``; the test is skipped, with the
    command that installs it, where no Chromium is installed."""
    import shutil
    import subprocess

    import pytest

    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if browser is None:
        pytest.skip("Chromium is not installed; install it with `apt-get install -y chromium` (Debian/Ubuntu) "
                    "to run the browser tests.")
    command = [browser, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
