"""Suite validation: every shipped suite is valid; lists are grid axes at every level; labels name
what distinguishes a variant; fractions of 255 only for pixel quantities; declarations drive
validation (malformed suites: tests/test_config_malformed.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.fields import FieldError, check_value
from bench.registry import BACKBONES, BASELINES, THREATS
from bench.suite.load import data_needed, load_suite, shipped_suites
from bench.suite.params import parse_number
from bench.threats.base import target_dataset
from tests.helpers import VALID_SUITE

VALID = VALID_SUITE


def _load(tmp_path: Path, text: str):  # noqa: ANN202 - a Suite
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return load_suite(str(path))


def _labels(tmp_path: Path, baselines: str, extra: str = "") -> list[str]:
    suite = _load(tmp_path, VALID.replace("[protonet]", baselines) + extra)
    return [v.baseline.label for v in suite.baselines]


@pytest.mark.parametrize("name", shipped_suites())
def test_every_shipped_suite_validates(name: str) -> None:
    suite = load_suite(name)
    assert suite.baselines and suite.threats and suite.datasets


def test_smoke_labels_are_unchanged() -> None:
    assert [v.baseline.label for v in load_suite("smoke").baselines] == ["protonet", "maml"]


def test_a_list_under_a_baselines_train_is_an_axis(tmp_path: Path) -> None:
    suite = _load(tmp_path, VALID.replace("[protonet]", "[{name: protonet, train: {steps: [5, 50]}}]"))
    assert [v.train.steps for v in suite.baselines] == [5, 50]
    assert [v.baseline.label for v in suite.baselines] == ["protonet[train.steps=5]", "protonet[train.steps=50]"]


def test_a_top_level_train_list_is_an_axis_an_entry_can_fix(tmp_path: Path) -> None:
    suite = _load(tmp_path, VALID.replace("steps: 2", "steps: [2, 3]").replace(
        "[protonet]", "[protonet, {name: maml, train: {steps: 6}}]"))
    assert [(v.baseline.label, v.train.steps) for v in suite.baselines] == [
        ("protonet[train.steps=2]", 2), ("protonet[train.steps=3]", 3), ("maml", 6)]


def test_backbone_params_are_axes_at_both_levels(tmp_path: Path) -> None:
    entries = "[protonet, {name: maml, backbone: {params: {hidden: [16, 8]}}}]"
    suite = _load(tmp_path, VALID.replace("[protonet]", entries) + "backbone: {params: {hidden: [32, 64]}}\n")
    assert [(v.baseline.label, v.backbone.config.hidden) for v in suite.baselines] == [
        ("protonet[backbone.hidden=32]", 32), ("protonet[backbone.hidden=64]", 64),
        ("maml[backbone.hidden=16]", 16), ("maml[backbone.hidden=8]", 8)]
    assert all(v.backbone.config.bn_stats == "batch" for v in suite.baselines[2:])  # MAML's paper default kept


def test_threat_params_and_data_settings_are_axes(tmp_path: Path) -> None:
    suite = _load(tmp_path, VALID.replace("shot: 1", "shot: [1, 5]").replace(
        "[clean]", "[{name: pgd, params: {eps: [2/255, 8/255], steps: 7}}]"))
    assert [d.shot for d in suite.datasets] == [1, 5]
    assert [t.config.eps for t in suite.threats] == [2 / 255, 8 / 255]
    assert [t.label for t in suite.threats] == ["pgd[eps=2/255,steps=7]", "pgd[eps=8/255,steps=7]"]


@pytest.mark.parametrize("baselines,labels", [
    ("[protonet, {name: protonet, train: {steps: 6}}]", ["protonet", "protonet[train.steps=6]"]),
    ("[maml, {name: maml, backbone: {name: resnet12}}]", ["maml", "maml[backbone=resnet12]"]),
    ("[protonet, {name: protonet, train: {adversarial: pgd, adv_steps: 5}}]", ["protonet", "protonet+aq"]),
    ("[{name: protonet, train: {adversarial: pgd}}, {name: protonet, train: {adversarial: pgd, adv_eps: 4/255}}]",
     ["protonet+aq", "protonet[train.adv_eps=4/255]+aq"]),
    ("[protonet, {name: protonet, params: {lr: 0.01}, label: fast}]", ["protonet", "fast"]),
    ("[maml, {name: maml, params: {inner_lr: 0.2}}]", ["maml", "maml[inner_lr=0.2]"]),
    ("[protonet, maml, {name: maml, params: {first_order: true}}]", ["protonet", "maml", "maml[first_order=True]"]),
    ("[protonet, {name: protonet, train: {steps: 6}}, {name: protonet, backbone: {params: {hidden: 32}}}, "
     "{name: protonet, train: {steps: 6, adversarial: pgd}}]",
     ["protonet", "protonet[train.steps=6]", "protonet[backbone.hidden=32]", "protonet[train.steps=6]+aq"]),
])
def test_labels_name_what_distinguishes_a_variant(tmp_path: Path, baselines: str, labels: list[str]) -> None:
    assert _labels(tmp_path, baselines) == labels


def test_fractions_of_255_only_for_pixel_quantities(tmp_path: Path) -> None:
    threats = ("[{name: label_noise, params: {fraction: 0.4}}, {name: pgd_l2, params: {eps: 0.4}}, "
               "{name: apgd_ce, params: {norm: L2, eps: 0.4}}, {name: apgd_ce, params: {eps: 8/255}}, "
               "{name: fgsm, params: {eps: 0}}, {name: apgd_ce, params: {norm: L2, eps: 2.0}}]")
    suite = _load(tmp_path, VALID.replace("[clean]", threats))
    assert [t.label for t in suite.threats] == [
        "label_noise[fraction=0.4]", "pgd_l2[eps=0.4]", "apgd_ce[eps=0.4,norm=L2]", "apgd_ce[eps=8/255]",
        "fgsm[eps=0]", "apgd_ce[eps=2,norm=L2]"]  # an L2 radius is no fraction of 255, nor bounded by 1
    assert _labels(tmp_path, "[adml, {name: adml, params: {attack_eps: 4/255}}]") == [
        "adml", "adml[attack_eps=4/255]"]


def test_a_training_way_other_than_the_evaluation_way_is_fine_for_metric_heads(tmp_path: Path) -> None:
    suite = _load(tmp_path, VALID.replace("[protonet]", "[{name: protonet, train: {way: 20}}, r2d2]"))
    assert suite.baselines[0].train.way == 20


def test_fixed_size_heads_are_declared() -> None:
    assert {n for n, c in BASELINES if c.any_way} >= {"protonet", "matchingnet", "relationnet", "r2d2"}
    assert not any(BASELINES.get(n).any_way for n in ("maml", "anil", "reptile", "mamlpp", "promaml"))


def test_domain_shift_comes_from_the_declaration_not_the_field_name(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Lookalike:
        dataset: str = "mnist"

    assert target_dataset(Lookalike()) is None
    assert target_dataset(THREATS.get("domain_shift").Config(dataset="omniglot-minimal")) == "omniglot-minimal"
    suite = _load(tmp_path, VALID.replace("[clean]", "[clean, {name: domain_shift, params: {dataset: omniglot}}]"))
    assert data_needed(suite) == [("glyphs", 28), ("omniglot", 28)]


@pytest.mark.parametrize("registry", [BASELINES, BACKBONES, THREATS], ids=["baselines", "backbones", "threats"])
def test_every_default_satisfies_its_own_declaration(registry: object) -> None:
    for name, cls in registry:  # type: ignore[attr-defined]
        for f in dataclasses.fields(cls.Config):
            values = f.default if isinstance(f.default, tuple) else (f.default,)
            for value in values:
                try:
                    check_value(value, f.metadata)
                except FieldError as exc:
                    pytest.fail(f"{name}.{f.name} = {value!r}: {exc}")


def test_validate_command_exits_0_on_a_valid_suite_and_2_with_a_hint(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(VALID)
    assert main(["validate", str(path)]) == 0
    path.write_text(VALID.replace("[protonet]", "[protonett]"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'protonet'" in err and "Traceback" not in err


def test_unknown_suite_name_suggests_a_close_one() -> None:
    with pytest.raises(BenchError, match="Did you mean 'smoke'"):
        load_suite("smok")


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), ("1e-3", 1e-3), (" 0.5 / 255 ", 0.5 / 255),
                                        (3, 3.0), ("__import__('os')", None), ("1/0", None), (True, None)])
def test_parse_number_never_evaluates_code(text: object, value: float | None) -> None:
    assert parse_number(text) == value
