"""The embedded glyphs data set: shapes, class rules, whole-script splits, determinism, caching."""

from __future__ import annotations

import fcntl
import hashlib
import re
import threading
import unicodedata
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from matplotlib import ft2font

from bench.data.cache import load_cache, read_manifest, write_cache
from bench.data.dataset import ImageDataset
from bench.data.glyphs import source as g
from bench.errors import DataError
from bench.registry import DATASETS

# Latin A-J (train), Greek alpha-kappa (val), Cyrillic a-i (test), arrows (test), math operators
# (train): a small build that still fills every split.
SMALL = [*range(0x41, 0x4B), *range(0x3B1, 0x3BB), *range(0x430, 0x43A), *range(0x2190, 0x219A),
         *range(0x2200, 0x220A)]


def _code_points(dataset: ImageDataset) -> list[int]:
    return [g.code_point_of(name) for name in dataset.class_names]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_registered_under_its_name() -> None:
    assert DATASETS.get("glyphs") is g.GlyphsSource
    source = g.GlyphsSource()
    assert (source.name, source.channels, source.default_size) == ("glyphs", 1, 28)
    assert "bench data prepare glyphs" in source.missing_message(Path("/nowhere"), 28)


def test_shapes_dtype_and_samples_per_class(glyphs: ImageDataset) -> None:
    n_classes = len(glyphs.class_names)
    assert glyphs.images.dtype == torch.uint8
    assert tuple(glyphs.images.shape) == (n_classes * 20, 1, 28, 28)
    assert glyphs.labels.dtype == torch.int64
    assert torch.equal(torch.bincount(glyphs.labels, minlength=n_classes), torch.full((n_classes,), 20))
    peaks = glyphs.images.flatten(1).amax(1)
    ink = (glyphs.images.flatten(1) > 127).float().mean(1)
    assert bool((peaks == 255).all()), "every image has full-contrast ink"
    assert 0 < float(ink.min()) and float(ink.max()) < 0.95, "no blank and no all-ink image"


def test_class_count_matches_declared_splits(glyphs: ImageDataset) -> None:
    assert len(glyphs.class_names) >= 2000
    counts = {split: glyphs.num_classes(split) for split in ("train", "val", "test")}
    assert counts == g.GlyphsSource.split_classes


def test_class_names_are_drawable_characters(glyphs: ImageDataset) -> None:
    code_points = _code_points(glyphs)
    assert code_points == sorted(set(code_points))
    for name, cp in zip(glyphs.class_names, code_points, strict=True):
        assert re.fullmatch(r"U\+[0-9A-F]{4,6} [A-Z0-9 \-]+", name), name
        assert name == f"U+{cp:04X} {unicodedata.name(chr(cp))}"
        assert unicodedata.category(chr(cp))[0] in "LNPS", name


def test_splits_disjoint_nonempty_and_whole_scripts(glyphs: ImageDataset) -> None:
    members = {split: set(ids.tolist()) for split, ids in glyphs.splits.items()}
    assert set(members) == {"train", "val", "test"}
    assert all(members.values())
    assert not (members["train"] & members["val"] or members["train"] & members["test"]
                or members["val"] & members["test"])
    assert set().union(*members.values()) == set(range(len(glyphs.class_names)))
    code_points = _code_points(glyphs)
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for split, ids in members.items():
        for i in ids:
            splits_of_group[g.script_group(code_points[i])].add(split)
    assert {group: s for group, s in splits_of_group.items() if len(s) > 1} == {}
    assert {"Latin", "Greek", "Cyrillic"} <= splits_of_group.keys()
    total = len(code_points)
    assert 0.55 < len(members["train"]) / total < 0.75
    assert 0.10 < len(members["val"]) / total < 0.20
    assert 0.15 < len(members["test"]) / total < 0.25


def test_lookalikes_dropped_keeping_lowest_code_point(glyphs: ImageDataset) -> None:
    code_points = set(_code_points(glyphs))
    assert 0x41 in code_points  # LATIN CAPITAL LETTER A
    assert 0x391 not in code_points and 0x410 not in code_points  # Greek Alpha, Cyrillic A
    assert 0x3B1 in code_points  # Greek small alpha has its own shape


def test_no_two_kept_classes_render_alike(glyphs: ImageDataset) -> None:
    paths = g.font_files()
    fonts = [ft2font.FT2Font(str(p)) for p in paths]
    reference = [p.name for p in paths].index(g.REFERENCE_FONT)
    images = g.reference_images(fonts, reference, _code_points(glyphs))
    flat = images.flatten(1)
    assert len(torch.unique(flat, dim=0)) == len(flat), "two classes share a reference rendering"
    assert g.lookalike_pairs(images) == []


def test_samples_of_a_class_differ(glyphs: ImageDataset) -> None:
    for c in (0, len(glyphs.class_names) // 2, len(glyphs.class_names) - 1):
        samples = glyphs.images[glyphs.labels == c].flatten(1)
        assert len(torch.unique(samples, dim=0)) == 20


def test_build_is_deterministic_and_independent_of_other_classes(tmp_path: Path, glyphs: ImageDataset) -> None:
    first, second = g.build_glyphs(code_points=SMALL), g.build_glyphs(code_points=SMALL)
    assert len(first.class_names) >= 40 and all(first.splits.values())
    written = [write_cache(tmp_path / str(i), "glyphs", b.images, b.labels, b.class_names, b.splits, b.extra)
               for i, b in enumerate((first, second))]
    assert written[0].content_hash == written[1].content_hash
    for filename in ("images.npy", "labels.npy", "manifest.json"):
        assert _sha256(tmp_path / "0" / filename) == _sha256(tmp_path / "1" / filename)
    # A class's images come from its own seed stream: the small build matches the full one.
    full = {name: i for i, name in enumerate(glyphs.class_names)}
    for i, name in enumerate(first.class_names):
        if name in full:
            assert torch.equal(first.images[i * 20:(i + 1) * 20], glyphs.images[full[name] * 20:(full[name] + 1) * 20])


def test_second_ensure_loads_the_cache(bench_data: Path, glyphs: ImageDataset,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    directory = g.GlyphsSource().cache_dir(bench_data, 28)
    stamps = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("ensure rebuilt a prepared cache")

    monkeypatch.setattr(g.GlyphsSource, "prepare", no_rebuild)
    again = DATASETS.get("glyphs")().ensure(bench_data, 28)
    assert again.content_hash == glyphs.content_hash
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == stamps


def test_manifest_records_versions_and_rules(bench_data: Path, glyphs: ImageDataset) -> None:
    manifest = read_manifest(g.GlyphsSource().cache_dir(bench_data, 28))
    assert {"matplotlib", "freetype", "torch"} <= manifest["versions"].keys()
    assert manifest["versions"]["freetype"] == ft2font.__freetype_version__
    assert manifest["build"]["image_size"] == 28 and manifest["build"]["min_fonts"] == g.MIN_FONTS
    assert manifest["content_hash"] == glyphs.content_hash


def test_image_size_parameter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = g.build_glyphs(32, code_points=SMALL, max_classes=5)
    assert tuple(built.images.shape) == (100, 1, 32, 32)
    source = g.GlyphsSource()
    directory = source.cache_dir(tmp_path, 32)
    assert directory.name == "glyphs-32"
    write_cache(directory, "glyphs", built.images, built.labels, built.class_names, built.splits, built.extra)
    monkeypatch.setattr(g.GlyphsSource, "prepare", lambda *a, **k: pytest.fail("rebuilt"))
    loaded = source.ensure(tmp_path, 32)
    assert loaded.image_size == 32 and torch.equal(loaded.images, load_cache(directory).images)


def test_missing_fonts_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "cmr10.ttf").write_bytes(b"")
    with pytest.raises(DataError, match="matplotlib"):
        g.font_files(tmp_path)
    with pytest.raises(DataError):
        g.build_glyphs(font_dir=tmp_path)


def test_parallel_ensure_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads that both find no cache: one builds under the lock, the other waits and loads.

    The overlap is made certain, not hoped for: each thread's first `is_prepared` check (the one
    before the lock) waits at a barrier until the other thread has made its check too, so both
    have seen "no cache" before either can build; the build then checks that it holds the lock.
    """
    built = g.build_glyphs(code_points=SMALL, max_classes=3)
    calls = []
    arrived = threading.Barrier(2, timeout=60)
    first_checks: dict[int, bool] = {}
    guard = threading.Lock()
    real_is_prepared = g.GlyphsSource.is_prepared

    def is_prepared(self: g.GlyphsSource, root: Path | None = None, image_size: int | None = None) -> bool:
        prepared = real_is_prepared(self, root, image_size)
        with guard:
            first = threading.get_ident() not in first_checks
            first_checks.setdefault(threading.get_ident(), prepared)
        if first:
            arrived.wait()  # both threads are past the unlocked check before either goes on
        return prepared

    def small_prepare(self: g.GlyphsSource, root: Path | None = None, image_size: int | None = None,
                      raw: Path | None = None) -> ImageDataset:
        calls.append(image_size)
        # The other thread waits on the build lock meanwhile: it is held (by this build).
        with (self.cache_dir(root, image_size) / ".build.lock").open("a") as probe, pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return write_cache(self.cache_dir(root, image_size), "glyphs", built.images, built.labels,
                           built.class_names, built.splits, built.extra)

    monkeypatch.setattr(g.GlyphsSource, "is_prepared", is_prepared)
    monkeypatch.setattr(g.GlyphsSource, "prepare", small_prepare)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: g.GlyphsSource().ensure(tmp_path, 28), range(2)))
    assert list(first_checks.values()) == [False, False]  # the threads did overlap
    assert len(calls) == 1
    assert results[0].content_hash == results[1].content_hash
