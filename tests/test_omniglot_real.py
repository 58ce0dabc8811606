"""The real Omniglot minimal background sets (Lake et al. 2015) through the `omniglot-minimal` loader.

Uses the official zips in ``../shared/data/omniglot/`` (skipped where they are absent): strict
preparation, so their pinned SHA-256 checksums and the published class counts are checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.data import commands
from bench.data.omniglot import OmniglotMinimal, list_characters

RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
ZIPS = [RAW / f"images_background_small{i}.zip" for i in (1, 2)]

pytestmark = pytest.mark.skipif(not all(p.is_file() for p in ZIPS), reason=f"real Omniglot zips not in {RAW}")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("omniglot-real")
    return root, OmniglotMinimal().prepare(root, raw=RAW)


def test_raw_sets_have_published_counts(prepared: tuple[Path, object]) -> None:
    root, _ = prepared
    counts = {}
    for i in (1, 2):
        characters = list_characters(root / "raw" / "omniglot" / f"images_background_small{i}")
        assert {len(files) for files in characters.values()} == {20}  # 20 drawers per character
        counts[i] = len(characters)
    assert counts == {1: 136, 2: 156}


def test_prepared_splits_shapes_and_disjoint_alphabets(prepared: tuple[Path, object]) -> None:
    _, ds = prepared
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape[1:]) == (1, 28, 28)
    sizes = {s: ds.num_classes(s) for s in ("train", "val", "test")}
    assert sizes == {"train": 112, "val": 24, "test": 106}
    assert sizes["train"] + sizes["val"] == 136  # all of small1
    assert torch.bincount(ds.labels).tolist() == [20] * 242
    alphabets = {s: {ds.class_names[i].split("/")[0] for i in ids.tolist()} for s, ids in ds.splits.items()}
    assert alphabets["test"] == {"Japanese_(katakana)", "Sanskrit", "Tagalog"}
    assert not (alphabets["train"] | alphabets["val"]) & alphabets["test"]
    assert not alphabets["train"] & alphabets["val"]
    ink = ds.images.float().mean() / 255
    assert 0.02 < ink < 0.25  # strokes bright on a black background, not inverted


def test_cache_round_trip_and_verify(prepared: tuple[Path, object]) -> None:
    root, ds = prepared
    loaded = OmniglotMinimal().load(root)
    assert loaded.content_hash == ds.content_hash and torch.equal(loaded.images, ds.images)
    report = commands.verify_dataset("omniglot-minimal", root)
    assert report["complete"] and report["strict"]
    assert report["splits"]["test"] == {"classes": 106, "expected": 106, "images": 2120}
