"""The LaTeX of every committed report and of the golden report compiles in a plain
``\\documentclass{article}`` with booktabs, and no table is wider than the page (no overfull
hbox over 1 pt). Needs pdflatex (TeX Live; `.ci/run` installs it); skipped where absent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(ROOT.glob("reports/*/leaderboard.tex")) + [ROOT / "tests" / "golden" / "leaderboard.tex",
                                                             ROOT / "tests" / "golden" / "filtered.tex"]
DOCUMENT = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{table.tex}\n\\end{document}\n"
OVERFULL = re.compile(r"Overfull \\hbox \((\d+(?:\.\d+)?)pt too wide\)")


def compile_log(source: Path, folder: Path) -> str:
    """pdflatex's log of ``source`` inside a minimal article (raises on a LaTeX error)."""
    shutil.copy(source, folder / "table.tex")
    (folder / "doc.tex").write_text(DOCUMENT, encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    log = (folder / "doc.log").read_text(encoding="utf-8", errors="replace")
    assert done.returncode == 0, f"{source} does not compile:\n{log[-3000:]}"
    return log


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (apt-get install "
                    "texlive-latex-base texlive-latex-recommended; .ci/run does)")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_latex_compiles_and_fits_the_page(source: Path, tmp_path: Path) -> None:
    log = compile_log(source, tmp_path)
    too_wide = [float(points) for points in OVERFULL.findall(log)]
    assert all(points <= 1 for points in too_wide), f"{source}: tables wider than the page by {too_wide} pt"
    labels = re.findall(r"\\label\{([^}]*)\}", source.read_text(encoding="utf-8"))
    assert labels and len(labels) == len(set(labels)), f"{source}: every table needs its own \\label"


def test_an_overfull_table_is_detected(tmp_path: Path) -> None:
    """The check can fail: a 30-column tabular overflows the page and the log says so."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    wide = tmp_path / "wide.tex"
    wide.write_text("\\begin{tabular}{" + "r" * 30 + "}\n" + " & ".join(["88.8 $\\pm$ 8.8"] * 30) + " \\\\\n"
                    "\\end{tabular}\n", encoding="utf-8")
    log = compile_log(wide, tmp_path)
    assert any(float(points) > 1 for points in OVERFULL.findall(log))
