"""What a table of a report shows: a headline table per data setting, then detail tables.

- **headline**: clean, the worst case per threat model (else the one attack run there), the
  mean corruption accuracy (else the one corruption), the relative mCE against the suite's
  ``report.mce_reference`` (`bench.report.mce`), every threat whose class declares its own headline
  column (`Threat.in_headline`: label noise) and every shift, the published clean
  accuracy and ours minus it, and the mean tie-aware rank (`bench.report.ranks`);
- **attacks at one threat model**: every attack at that (norm, eps), by steps, and the worst case;
- **corruptions of one baseline**: corruption x severity, and the mean per severity;
- **other threats**: every column no other table shows (support-set threats, ...).

A view lists cell keys ``(row label, column label)`` or plain text per entry; md, tex and
html render the same views (`bench.report.text.view_rows`). Column headers are the threats'
display names; the raw labels stay in CSV/JSON and travel with each view (``raw``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bench.registry import BASELINES, THREATS
from bench.report.mce import relative_mce
from bench.report.model import Column, ColumnRole
from bench.report.ranks import mean_rank
from bench.report.results import TableResult, clean_column
from bench.suite.published import Published
from bench.threats.base import ThreatKind, ThreatModel

CellKey = tuple[str, str]
Entry = CellKey | str
SEVERITY = re.compile(r", s(\d)")
MCE_NOTE = "rel. mCE leaves out"  # starts the note naming what the relative mCE left out


@dataclass(frozen=True)
class View:
    """One rendered table: ``key`` is stable (file anchors, LaTeX labels); ``raw`` gives each
    header's raw label ("" where the header is no threat column)."""

    key: str
    heading: str
    caption: str
    headers: tuple[str, ...]
    raw: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Entry, ...]], ...]


def headline_columns(table: TableResult) -> list[Column]:
    """The headline's cell columns, in reading order (see the module docstring)."""
    columns = table.data.columns
    out = [c for c in columns if c.kind is ThreatKind.CLEAN]
    for model in _attack_models(columns):
        worst = [c for c in columns if c.role is ColumnRole.WORST_CASE and c.threat_model == model]
        at_model = [c for c in columns if c.kind is ThreatKind.ATTACK and c.threat_model == model]
        if worst:
            out += worst
        elif len(at_model) == 1:
            out += at_model
    mean = [c for c in columns if c.role is ColumnRole.MEAN_CORRUPTION and not c.params]
    corruptions = [c for c in columns if c.kind is ThreatKind.CORRUPTION]
    out += mean or (corruptions if len(corruptions) == 1 else [])
    return out + [c for c in columns if c.in_headline or c.kind is ThreatKind.SHIFT]


def _attack_models(columns: list[Column]) -> list[ThreatModel]:
    """The threat models the attack columns declare, in order (L2 before L-inf, small radii first)."""
    return sorted({c.threat_model for c in columns if c.kind is ThreatKind.ATTACK and c.threat_model is not None})


def headline_view(table: TableResult, extras: dict[str, dict[str, str]], slug: str, title: str,
                  row_title: dict[str, str]) -> View:
    """The headline table; ``extras``: header -> row label -> text (rel. mCE, paper columns)."""
    columns = headline_columns(table)
    rows = []
    for label, _ in table.data.rows:
        rank = mean_rank(table.ranks, label, [c.label for c in columns])
        entries: list[Entry] = [(label, c.label) for c in columns]
        entries += [extras[h].get(label, "–") for h in extras]
        rows.append((row_title[label], (*entries, "–" if rank is None else f"{rank:.1f}")))
    return View(f"{slug}-headline", title, f"Few-shot accuracy (%) on {title}: clean, per threat model, "
                f"corruptions and shifts.", ("baseline", *(c.header for c in columns), *extras, "mean rank"),
                ("", *(c.label for c in columns), *("" for _ in extras), ""), tuple(rows))


def attack_views(table: TableResult, slug: str, title: str, row_title: dict[str, str]) -> list[View]:
    """One table per threat model with two or more attacks (rows: baselines)."""
    columns, views = table.data.columns, []
    for model in _attack_models(columns):
        shown = [c for c in columns if c.threat_model == model
                 and (c.kind is ThreatKind.ATTACK or c.role is ColumnRole.WORST_CASE)]
        attacks = [c.label for c in shown if c.kind is ThreatKind.ATTACK]
        if len(attacks) < 2:
            continue
        rows: list[tuple[str, tuple[Entry, ...]]] = []
        for label, _ in table.data.rows:
            rank = mean_rank(table.ranks, label, attacks)
            rows.append((row_title[label], (*((label, c.label) for c in shown),
                                            "–" if rank is None else f"{rank:.1f}")))
        key = f"{slug}-attacks-{model.norm.lower()}-{model.eps * 255:g}".replace(".", "p")
        views.append(View(key, f"Attacks at {model.text()}", f"Accuracy (%) under each attack at {model.text()} "
                          f"and their per-episode worst case, {title}.", ("baseline", *(c.header for c in shown),
                                                                          "mean rank"),
                          ("", *(c.label for c in shown), ""), tuple(rows)))
    return views


def corruption_views(table: TableResult, slug: str, title: str, row_title: dict[str, str]) -> list[View]:
    """Per severity: corruption (rows) x baseline (columns, side by side), then the mean."""
    corruptions = [c for c in table.data.columns if c.kind is ThreatKind.CORRUPTION]
    if len(corruptions) < 2:
        return []
    grid: dict[str, dict[int, Column]] = {}
    for column in corruptions:
        match = SEVERITY.search(column.header)
        severity = int(match.group(1)) if match else 0
        grid.setdefault(SEVERITY.sub("", column.header), {})[severity] = column
    means = {int(c.param("severity") or 0): c for c in table.data.columns
             if c.role is ColumnRole.MEAN_CORRUPTION and c.params}
    labels = [label for label, _ in table.data.rows]
    views = []
    for severity in sorted({s for by in grid.values() for s in by}):
        rows: list[tuple[str, tuple[Entry, ...]]] = [
            (name, tuple((label, by[severity].label) for label in labels)) for name, by in grid.items()
            if severity in by]
        if severity in means:
            rows.append(("Mean", tuple((label, means[severity].label) for label in labels)))
        at = f" at severity {severity}" if severity else ""
        views.append(View(f"{slug}-corruptions-s{severity}", f"Corruptions{at}",
                          f"Accuracy (%) of each baseline under each corruption{at}, {title}.",
                          ("corruption", *(row_title[label] for label in labels)), ("", *("" for _ in labels)),
                          tuple(rows)))
    return views


def other_view(table: TableResult, shown: set[str], slug: str, title: str, row_title: dict[str, str]) -> list[View]:
    """Every column no other view shows, so nothing recorded is left out of the tables."""
    rest = [c for c in table.data.columns if c.label not in shown]
    if not rest:
        return []
    rows = tuple((row_title[label], tuple((label, c.label) for c in rest)) for label, _ in table.data.rows)
    return [View(f"{slug}-other", "Other threats", f"Accuracy (%) under the remaining threats, {title}.",
                 ("baseline", *(c.header for c in rest)), ("", *(c.label for c in rest)), rows)]


def shown_columns(views: list[View]) -> set[str]:
    """The column labels the views show."""
    return {entry[1] for view in views for _, entries in view.rows for entry in entries if isinstance(entry, tuple)}


def row_titles(table: TableResult) -> dict[str, str]:
    """Row label -> the baseline as its paper names it, with the variant (``MAML + AQ``,
    ``ProtoNet [train.steps=6]``) and its declared modes (``MAML (transductive)``); the raw
    label stays in CSV/JSON."""
    out = {}
    for label, name in table.data.rows:
        title = (BASELINES.get(name).title if name in BASELINES else None) or name
        variant = label[len(name):] if label.startswith(name) else ""
        out[label] = title + (" + AQ" if variant == "+aq" else variant) if label.startswith(name) else label
        marks = table.data.modes[label].marks() if label in table.data.modes else []
        out[label] += f" ({'; '.join(marks)})" if marks else ""
    return out


def paper_extras(table: TableResult, published: dict[tuple[str, str], Published]) -> dict[str, dict[str, str]]:
    """``paper (clean)`` and ``ours − paper`` per row with a published number for this setting:
    the difference ± the half-widths of our interval and the paper's (when given) in quadrature."""
    setting, clean = table.data.setting.label, clean_column(table.data)
    papers = {label: published[(label, setting)] for label, _ in table.data.rows if (label, setting) in published}
    if not papers or clean is None:
        return {}
    differences = {}
    for label, paper in papers.items():
        ours = table.cells[(label, clean.label)].interval
        if ours is not None:
            half = math.hypot(100 * ours.half, float(paper.ci or 0))
            differences[label] = f"{100 * ours.mean - float(paper.mean):+.1f} ± {half:.1f}"
    return {"paper (clean)": {label: p.text() for label, p in papers.items()}, "ours − paper": differences}


def mce_extras(table: TableResult, reference: str | None) -> dict[str, dict[str, str]]:
    """``rel. mCE`` per row (`bench.report.mce`), when the suite names a reference."""
    found = relative_mce(table, reference)
    if found is None:
        return {}
    return {"rel. mCE": {label: "–" if v is None else f"{v:.1f}" for label, v in found.values.items()}}


def mce_notes(table: TableResult, reference: str | None) -> list[str]:
    """The corruptions the ``rel. mCE`` column leaves out (`RelativeMCE.left_out`), by their
    display names, when it leaves any out: a reader must not take it for a mean over them all."""
    found = relative_mce(table, reference)
    if found is None or not found.left_out:
        return []
    names = ", ".join(THREATS.get(name).title if name in THREATS else name for name in found.left_out)
    return [f"{MCE_NOTE} {names}: the reference ({row_titles(table)[found.reference]}) has no result "
            f"on them or loses no accuracy to them (the ratio's denominator would be missing or not positive)"]


def setting_views(table: TableResult, published: dict[tuple[str, str], Published], reference: str | None,
                  slug: str, title: str) -> list[View]:
    """Every view of one data setting: the headline, then the detail tables."""
    extras, titles = mce_extras(table, reference) | paper_extras(table, published), row_titles(table)
    views = [headline_view(table, extras, slug, title, titles), *attack_views(table, slug, title, titles),
             *corruption_views(table, slug, title, titles)]
    return views + other_view(table, shown_columns(views), slug, title, titles)
