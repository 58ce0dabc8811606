"""The HTML report is navigable (issue 25): a table of contents whose every link lands on an
anchor, results before the label appendix, and a column's highest value marked when no row
is significantly best. Read from the golden page, which `test_report_golden` keeps current."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = (Path(__file__).parent / "golden" / "leaderboard.html").read_text(encoding="utf-8")


def test_every_contents_link_lands_on_an_anchor():
    nav = PAGE.split('<nav class="toc">', 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'href="#([^"]+)"', nav)
    anchors = set(re.findall(r' id="([^"]+)"', PAGE))
    assert links and set(links) <= anchors
    assert any(link.endswith("-sanity") for link in links) and any(link.endswith("-attacks") or "-" in link
                                                                    for link in links)


def test_each_section_puts_its_results_before_the_label_appendix():
    for section in PAGE.split("<section ")[1:]:
        order = [section.find(part) for part in ("Sanity</h3>", "Evaluation device seconds</h3>")]
        assert -1 not in order and order == sorted(order)
        if "Column labels" in section:
            assert section.find("Column labels") > max(order)
        if 'class="plots"' in section:
            assert section.find('class="plots"') < order[0]


def test_a_column_without_a_significant_best_marks_its_highest_value():
    marked = 0
    for table in re.findall(r'<table class="leaderboard">.*?</table>', PAGE, flags=re.S):
        cell = r'<td(?: class="([^"]*)")?>([^<]*)</td>'
        rows = [re.findall(cell, row) for row in re.findall(r"<tr>(.*?)</tr>", table)]
        rows = [r for r in rows if r]
        for column in range(1, len(rows[0]) if rows else 0):
            classes = [r[column][0].split() for r in rows]
            tops = [i for i, c in enumerate(classes) if "top" in c]
            if tops:
                marked += 1
                assert not any("best" in c for c in classes)
                values = [float(r[column][1].split(" ")[0]) if r[column][1][:1].isdigit() else -1.0 for r in rows]
                assert all(values[i] == max(values) for i in tops)
    assert marked, "no column of the golden page lacks a significantly best row"
