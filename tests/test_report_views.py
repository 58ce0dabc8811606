"""Readable, ranked tables: threat and baseline display names, tie-aware ranks, the relative
mCE, the headline / detail views and the LaTeX layout that keeps every tabular on the page."""

from __future__ import annotations

import types

import numpy as np
import pytest

from bench.registry import THREATS
from bench.report.aggregate import add_aggregates
from bench.report.compare import Options, analyse
from bench.report.mce import relative_mce
from bench.report.model import Cell, Column, ColumnRole, SettingData
from bench.report.tables import LATEX_COLUMNS, LATEX_NOTES, latex_blocks
from bench.report.text import notes
from bench.report.views import MCE_NOTE, headline_columns, row_titles, setting_views
from bench.suite.published import Published
from bench.suite.values import DataSetting
from bench.threats.attacks import PGD, PGDConfig, Square, SquareConfig
from bench.threats.base import Threat, ThreatKind, ThreatModel

SETTING = DataSetting("glyphs", 28, 5, 1, 10)
LINF8 = ThreatModel("Linf", 8 / 255)


def _column(label: str, kind: ThreatKind, name: str = "", params: tuple = (),
            model: ThreatModel | None = None) -> Column:
    """A threat column with what the registered class ``name`` declares about the headline."""
    headline = name in THREATS and THREATS.get(name).in_headline
    return Column(label, kind, (), name, params, model, display=label.upper(), in_headline=headline)


def _table(columns: list[Column], accuracy: dict[tuple[str, str], np.ndarray], rows: list[tuple[str, str]],
           seeds: tuple[int, ...] = (0,)) -> SettingData:
    """A one-setting table whose cells hold ``accuracy`` (per-episode values, seed 0)."""
    cells = {}
    for label, _ in rows:
        for column in columns:
            cell = Cell(seeds)
            if (label, column.label) in accuracy:
                cell.per_seed[0], cell.hashes[0] = accuracy[(label, column.label)], "h"
            cells[(label, column.label)] = cell
    derived = add_aggregates(columns, cells, [r for r, _ in rows], seeds)
    return SettingData(SETTING, rows, columns + derived, cells, seeds, {})


def _episodes(mean: float, seed: int, n: int = 60) -> np.ndarray:
    return np.clip(mean + np.random.default_rng(seed).normal(0, 0.05, n), 0, 1)


def test_rows_no_test_separates_share_a_rank_and_a_clearly_worse_row_ranks_below_both() -> None:
    rows = [("a", "protonet"), ("b", "protonet"), ("c", "maml")]
    clean = _column("clean", ThreatKind.CLEAN)
    accuracy = {("a", "clean"): _episodes(0.90, 1), ("b", "clean"): _episodes(0.90, 2),
                ("c", "clean"): _episodes(0.30, 3)}
    result = analyse(_table([clean], accuracy, rows), Options())
    assert result.ranks == {("a", "clean"): 1, ("b", "clean"): 1, ("c", "clean"): 3}


def test_a_row_without_a_result_has_no_rank() -> None:
    rows = [("a", "protonet"), ("b", "maml")]
    clean = _column("clean", ThreatKind.CLEAN)
    result = analyse(_table([clean], {("a", "clean"): _episodes(0.9, 1)}, rows), Options())
    assert result.ranks == {("a", "clean"): 1}


def test_relative_mce_follows_hendrycks_and_dietterich() -> None:
    """Reference errors: clean 10, s1 20, s3 40 (loss 40); the model: clean 5, s1 10, s3 15 (loss
    15), so its relative CE is 37.5% on both corruptions, and the reference's is 100%."""
    rows = [("ref", "protonet"), ("model", "maml")]
    columns = [_column("clean", ThreatKind.CLEAN)]
    values = {"ref": (0.9, 0.8, 0.6), "model": (0.95, 0.9, 0.85)}
    accuracy = {}
    for name in ("fog", "snow"):
        columns += [_column(f"{name}[severity={s}]", ThreatKind.CORRUPTION, name, (("severity", str(s)),))
                    for s in (1, 3)]
    for label, (clean, s1, s3) in values.items():
        accuracy[(label, "clean")] = np.full(10, clean)
        for name in ("fog", "snow"):
            accuracy[(label, f"{name}[severity=1]")], accuracy[(label, f"{name}[severity=3]")] = \
                np.full(10, s1), np.full(10, s3)
    found = relative_mce(analyse(_table(columns, accuracy, rows), Options()), "ref")
    assert found is not None and found.left_out == ()
    assert found.values["ref"] == pytest.approx(100) and found.values["model"] == pytest.approx(37.5)


def test_a_corruption_that_costs_the_reference_nothing_is_left_out_and_named() -> None:
    rows = [("ref", "protonet"), ("model", "maml")]
    columns = [_column("clean", ThreatKind.CLEAN),
               _column("fog[severity=1]", ThreatKind.CORRUPTION, "fog", (("severity", "1"),)),
               _column("snow[severity=1]", ThreatKind.CORRUPTION, "snow", (("severity", "1"),))]
    accuracy = {(r, c.label): np.full(10, v) for r, v in (("ref", 0.9), ("model", 0.8)) for c in columns}
    accuracy[("ref", "snow[severity=1]")] = np.full(10, 0.7)
    accuracy[("model", "snow[severity=1]")] = np.full(10, 0.7)
    found = relative_mce(analyse(_table(columns, accuracy, rows), Options()), "ref")
    assert found is not None and found.left_out == ("fog",)
    assert found.values["model"] == pytest.approx(50)  # loss 10 against the reference's 20


def _mce_notes(reference_snow: bool) -> list[str]:
    """The notes under a table whose reference loses 20 points to fog and, where it has a
    result there (``reference_snow``), to snow."""
    rows = [("ref", "protonet"), ("model", "maml")]
    columns = [_column("clean", ThreatKind.CLEAN),
               _column("fog[severity=1]", ThreatKind.CORRUPTION, "fog", (("severity", "1"),)),
               _column("snow[severity=1]", ThreatKind.CORRUPTION, "snow", (("severity", "1"),))]
    accuracy = {(r, c.label): np.full(10, v) for r, v in (("ref", 0.7), ("model", 0.8)) for c in columns}
    accuracy[("ref", "clean")] = np.full(10, 0.9)
    if not reference_snow:
        del accuracy[("ref", "snow[severity=1]")]
    data = _table(columns, accuracy, rows)
    data.facts = dict.fromkeys(("episodes", "hashes", "devices", "code", "fingerprints", "kept_stale"), "")
    table = analyse(data, Options())
    assert "rel. mCE" in setting_views(table, {}, "ref", "s", "glyphs")[0].headers
    suite = types.SimpleNamespace(mce_reference="ref", references={}, datasets=(), path="s.yaml")
    return notes(table, types.SimpleNamespace(published={}, suite=suite))  # type: ignore[arg-type]


def test_the_notes_name_the_corruptions_the_relative_mce_leaves_out() -> None:
    """The reference has no snow result: rel. mCE is over fog alone, and the notes under the
    table (md, tex and html render them) say so by the corruption's display name."""
    left_out = [line for line in _mce_notes(reference_snow=False) if line.startswith(MCE_NOTE)]
    assert left_out == [f"{MCE_NOTE} Snow: the reference (ref) has no result on them or loses no accuracy "
                        f"to them (the ratio's denominator would be missing or not positive)"]
    assert left_out[0].startswith(LATEX_NOTES)  # printed under the LaTeX headline, not hidden in a comment
    assert not [line for line in _mce_notes(reference_snow=True) if "leaves out" in line]


def test_the_headline_takes_a_threat_by_its_declaration_not_its_name() -> None:
    assert THREATS.get("label_noise").in_headline and not THREATS.get("support_outliers").in_headline
    rows = [("protonet", "protonet")]
    columns = [_column("clean", ThreatKind.CLEAN),
               Column("label_noise", ThreatKind.SUPPORT, (), "label_noise"),  # the name, no declaration
               Column("declared", ThreatKind.SUPPORT, (), "my_noise", in_headline=True)]
    table = analyse(_table(columns, {("protonet", c.label): _episodes(0.5, 1) for c in columns}, rows), Options())
    assert [c.label for c in headline_columns(table)] == ["clean", "declared"]


def test_a_column_kind_is_declared_not_spelt() -> None:
    with pytest.raises(TypeError, match="needs a ThreatKind"):
        Column("pgd", "attack")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a ThreatKind"):
        Column("worst", ThreatKind.ATTACK, ("pgd",), role=ColumnRole.WORST_CASE)
    assert Column("worst", None, ("pgd",), role=ColumnRole.WORST_CASE).kind_text == "worst-case"
    assert Column("pgd", ThreatKind.ATTACK).kind_text == "attack"


def _robust_table() -> SettingData:
    rows = [("protonet", "protonet"), ("maml+aq", "maml")]
    columns = [_column("clean", ThreatKind.CLEAN), _column("fgsm", ThreatKind.ATTACK, "fgsm", (), LINF8),
               _column("pgd", ThreatKind.ATTACK, "pgd", (), LINF8),
               _column("support_pgd", ThreatKind.SUPPORT, "support_pgd"),
               _column("label_noise", ThreatKind.SUPPORT, "label_noise"),
               _column("domain_shift", ThreatKind.SHIFT, "domain_shift"),
               *(_column(f"{n}[severity={s}]", ThreatKind.CORRUPTION, n, (("severity", str(s)),))
                 for n in ("fog", "snow") for s in (1, 3))]
    columns = [Column(c.label, c.kind, (), c.name, c.params, c.threat_model, in_headline=c.in_headline,
                      display=(f"{c.name.capitalize()}, s{dict(c.params)['severity']}"
                               if c.kind is ThreatKind.CORRUPTION else c.label.upper())) for c in columns]
    accuracy = {(r, c.label): _episodes(0.5, i) for r, _ in rows for i, c in enumerate(columns)}
    return _table(columns, accuracy, rows)


def test_the_headline_shows_clean_worst_case_mean_corruption_noise_and_shift_and_details_show_the_rest() -> None:
    table = analyse(_robust_table(), Options())
    assert [c.label for c in headline_columns(table)] == ["clean", "worst L∞ 8/255", "mean corruption",
                                                          "label_noise", "domain_shift"]
    published = {("protonet", SETTING.label): Published("49.42", "0.78", "Snell et al. 2017")}
    views = setting_views(table, published, None, "s", "glyphs")
    assert [v.heading for v in views] == ["glyphs", "Attacks at L∞ 8/255", "Corruptions at severity 1",
                                          "Corruptions at severity 3", "Other threats"]
    headline = views[0]
    assert headline.headers[-3:] == ("paper (clean)", "ours − paper", "mean rank")
    assert headline.rows[0][1][-3] == "49.42 ± 0.78" and headline.rows[1][1][-3] == "–"
    corruptions = views[3]  # severity 3: the baselines side by side
    assert corruptions.headers == ("corruption", "ProtoNet", "MAML + AQ")
    assert [name for name, _ in corruptions.rows] == ["Fog", "Snow", "Mean"]
    assert corruptions.rows[0][1] == (("protonet", "fog[severity=3]"), ("maml+aq", "fog[severity=3]"))
    assert views[-1].raw == ("", "support_pgd")  # nothing recorded is left out of the tables
    every = {e for v in views for _, entries in v.rows for e in entries if isinstance(e, tuple)}
    assert {c.label for c in table.data.columns} == {column for _, column in every}


def test_baselines_show_as_their_papers_name_them() -> None:
    table = analyse(_robust_table(), Options())
    assert row_titles(table) == {"protonet": "ProtoNet", "maml+aq": "MAML + AQ"}


def test_latex_views_wider_than_the_page_are_transposed_or_split() -> None:
    headers = ["baseline", *(f"c{i}" for i in range(LATEX_COLUMNS + 3))]
    few = [["a", *("1" for _ in headers[1:])], ["b", *("2" for _ in headers[1:])]]
    (transposed,) = latex_blocks(headers, few)
    assert transposed[0] == r"\begin{tabular}{lrr}"  # two baselines become the two columns
    many = [[f"r{r}", *("1" for _ in headers[1:])] for r in range(LATEX_COLUMNS + 1)]
    split = latex_blocks(headers, many)
    assert len(split) == 2 and all(b[0].count("r") <= LATEX_COLUMNS + 2 for b in split)


def test_threats_declare_display_names() -> None:
    assert PGD.display(PGDConfig(eps=8 / 255, alpha=2 / 255, steps=20)) == "PGD-20, ε = 8/255"
    assert Square.display(SquareConfig(eps=32 / 255, n_queries=500)) == "Square-500, ε = 32/255"
    gaussian = THREATS.get("gaussian_noise")
    assert gaussian.display(gaussian.Config(severity=3)) == "Gaussian noise, s3"
    pgd_l2 = THREATS.get("pgd_l2")
    assert pgd_l2.display(pgd_l2.Config()) == "PGD-L2-20, ε₂ = 0.5"
    label_noise = THREATS.get("label_noise")
    assert label_noise.display(label_noise.Config(fraction=0.4)) == "Label noise 40%"


def test_a_threat_kind_must_be_declared_as_a_threat_kind() -> None:
    with pytest.raises(TypeError, match="declare a ThreatKind"):
        type("Loose", (Threat,), {"kind": "attack", "evaluate": lambda self, a, e, s: None})
    assert THREATS.get("pgd").kind is ThreatKind.ATTACK and THREATS.get("pgd").kind == "attack"
