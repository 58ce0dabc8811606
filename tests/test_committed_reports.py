"""The committed reports and the README's figures are what `bench report --all` makes of them.

No report in ``reports/`` may come from a modified tree (``.dirty`` provenance), the index
``reports/README.md`` must be the one rendered from the reports as they are, and the
README's figures block must be the one rendered from them: a hand edit of any number fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report.index import BEGIN, END, figures_block, render_index, written_reports
from bench.suite.load import shipped_suites

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


def test_the_docs_tables_are_the_reports_tables() -> None:
    from bench.report.docs_blocks import ATTACK_STRENGTH, render_block

    page = (REPO / ATTACK_STRENGTH.page).read_text(encoding="utf-8")
    reports = written_reports(REPORTS, NAMES)
    assert page.count(ATTACK_STRENGTH.begin) == 1 and page.count(ATTACK_STRENGTH.end) == 1
    block = page[page.index(ATTACK_STRENGTH.begin): page.index(ATTACK_STRENGTH.end) + len(ATTACK_STRENGTH.end)]
    assert ATTACK_STRENGTH.suite in reports, f"commit reports/{ATTACK_STRENGTH.suite}/ (bench report --all)"
    assert block == render_block(ATTACK_STRENGTH, reports[ATTACK_STRENGTH.suite]), "run `bench report --all`"


def test_the_attack_strength_table_gives_each_attack_against_pgd() -> None:
    from bench.report.docs_blocks import attack_strength_table
    from bench.report.index import WrittenReport

    def cell(baseline: str, header: str, model: str, mean: float) -> dict:
        return {"baseline_title": baseline, "column_header": f"{header}, {model}", "column_kind": "attack",
                "threat_model": model, "mean": mean, "ci_half": 1.0}

    cells = [cell(b, a, "L∞ 8/255", m) for b, a, m in (("MAML", "PGD-20", 60.0), ("MAML", "APGD-CE-100", 55.5),
                                                        ("MAML", "Square-500", 70.0))]
    table = attack_strength_table(WrittenReport("x", "", {"cells": cells}))
    assert "| MAML       | L∞ 8/255 | 60.0 ± 1.0 | 55.5 ± 1.0    | 70.0 ± 1.0   | -4.5" in table
    assert "Square-500 − PGD-20" in table and "+10.0" in table


def test_the_figures_block_is_rewritten_in_place(tmp_path: Path) -> None:
    from bench.report.index import rewrite_block

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold 93.3\n{END}\noutro\n", encoding="utf-8")
    assert rewrite_block(readme, f"{BEGIN}\nnew\n{END}")
    assert readme.read_text(encoding="utf-8") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n", encoding="utf-8")
    assert not rewrite_block(plain, "x") and plain.read_text(encoding="utf-8") == "no markers\n"
