"""The committed reports and the README's figures are what `bench report --all` makes of them.

No report in ``reports/`` may come from a modified tree (``.dirty`` provenance), the index
``reports/README.md`` must be the one rendered from the reports as they are, and the
README's figures block must be the one rendered from them: a hand edit of any number fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import shipped_suites
from bench.report.index import BEGIN, END, figures_block, render_index, written_reports

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "reports"
NAMES = shipped_suites()


@pytest.mark.parametrize("path", sorted(p for p in REPORTS.rglob("leaderboard.*")), ids=str)
def test_no_committed_report_comes_from_a_modified_tree(path: Path) -> None:
    assert ".dirty" not in path.read_text(encoding="utf-8", errors="replace"), (
        f"{path} was made from a tree with uncommitted changes: commit, re-run `bench report`, commit again")


def test_the_index_is_rendered_from_the_reports() -> None:
    expected = render_index(NAMES, written_reports(REPORTS, NAMES), {})
    assert (REPORTS / "README.md").read_text(encoding="utf-8") == expected, "run `bench report --all`"


def test_the_readme_figures_are_the_reports_figures() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1
    block = readme[readme.index(BEGIN): readme.index(END) + len(END)]
    assert block == figures_block(written_reports(REPORTS, NAMES)), "run `bench report --all`"


def test_the_figures_block_is_rewritten_in_place(tmp_path: Path) -> None:
    from bench.report.index import rewrite_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold 93.3\n{END}\noutro\n", encoding="utf-8")
    assert rewrite_readme(readme, f"{BEGIN}\nnew\n{END}")
    assert readme.read_text(encoding="utf-8") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n", encoding="utf-8")
    assert not rewrite_readme(plain, "x") and plain.read_text(encoding="utf-8") == "no markers\n"
