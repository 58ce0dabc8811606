"""The HTML report opened in a real headless Chromium: tables and embedded plots must render.

Needs Chromium from the system packages (Debian: ``apt-get install -y chromium``); skipped with
that instruction when it is absent. The page is rendered from fixture records of the golden
suite (plain `RunRecord` values, no MLflow store needed: the golden tests cover reading them).
"""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import EVAL_FAILS, GOLDEN_SUITE, chromium, golden_eval_tags, golden_per_episode

TAB_BLUE, TAB_ORANGE = (31, 119, 180), (255, 127, 14)  # the first two plot series


def _records(suite) -> list:
    from bench.plan.jobs import make_plan
    from bench.report.cells import flatten
    from bench.tracking import RunRecord
    from bench.tracking.records import ERROR

    out = []
    for job in make_plan(suite).all_eval_jobs():
        d, label = job.setting, job.train.variant.baseline.label
        tags, params = golden_eval_tags(job), flatten("", job.identity)
        if (label, job.threat.label, d.shot, job.train.seed) == EVAL_FAILS:
            out.append(RunRecord(job.key, "FAILED", {**tags, ERROR: "RuntimeError: boom"}, params, {}, []))
            continue
        values = golden_per_episode(label, job.threat.label, job.threat.name, params, d.shot, job.train.seed, 12)
        out.append(RunRecord(job.key, "FINISHED", tags, params, {"device_seconds": 1.0}, values))
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``leaderboard.html`` of the golden suite, every job finished but one."""
    from bench.report.leaderboard import build_report, write_report
    from bench.suite.load import load_suite

    folder = tmp_path_factory.mktemp("browser")
    (folder / "golden.yaml").write_text(GOLDEN_SUITE)
    suite = load_suite(str(folder / "golden.yaml"))
    report = build_report(suite, _records(suite), "bench report golden.yaml", "sqlite:///mlflow.db")
    write_report(report, folder / "reports", ("html",))
    return folder / "reports" / "leaderboard.html"


class _Elements(HTMLParser):
    """Collects tables (with their cell texts) and images of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[str]] = []
        self.images: list[dict[str, str]] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag in ("td", "th"):
            self._in_cell = True
            self.tables[-1].append("")
        elif tag == "img":
            self.images.append({k: v or "" for k, v in attrs})

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = self._in_cell and tag not in ("td", "th")

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.tables[-1][-1] += data


def test_dom_has_the_tables_and_decodable_images(page: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Elements()
    dom.feed(done.stdout)
    # per setting: the headline, the attacks at one radius, one corruption table per baseline,
    # the robust gap and the device seconds
    assert len(dom.tables) == page.read_text(encoding="utf-8").count("<table") >= 2 * 4
    cells = [text.strip() for table in dom.tables for text in table]
    assert "ProtoNet-aq" in cells and "PGD-2, ε = 8/255" in cells and "Worst L∞ 8/255" in cells
    assert "49.42 ± 0.78" in cells and "+9.5 ± 8.0" in cells and "27.1 ± 4.4 (1/2 seeds)" in cells
    assert 'title="pgd[steps=2]"' in done.stdout  # the raw label, on hover
    assert "maml, seed 1: FAILED: RuntimeError: boom (pgd[steps=5])" in done.stdout  # the notes say why
    assert len(dom.images) >= 4
    for image in dom.images:
        header, data = image["src"].split(",", 1)
        assert header == "data:image/png;base64"
        decoded = Image.open(io.BytesIO(base64.b64decode(data)))
        assert decoded.size == (int(image["width"]), int(image["height"])) and decoded.size[0] > 300


def test_screenshot_shows_tables_and_plots(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,4200", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
    assert pixels.std() > 20, "the screenshot is blank"
    dark = (pixels.sum(axis=2) < 200).sum()
    assert dark > 5000, f"too little text rendered ({dark} dark pixels)"
    for colour in (TAB_BLUE, TAB_ORANGE):  # only the plots draw these colours
        near = (np.abs(pixels - np.array(colour)).max(axis=2) < 30).sum()
        assert near > 300, f"no plot lines in {json.dumps(colour)} ({near} pixels): images did not render"
