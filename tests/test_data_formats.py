"""The real-data loaders on small fake data sets written in each data set's native on-disk format.

Each test writes a few classes in the real format (Omniglot PNG folders, CIFAR-100 python
pickles, miniImageNet pickles and image folders, MNIST IDX files) into ``tmp_path``, prepares
it with ``strict=False`` (the fake sets hold only some classes of the published splits) and
checks pixels, labels, splits and the cache; then damages files and checks the `DataError`s.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import pickle
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import cifar, commands, miniimagenet, mnist, omniglot  # noqa: F401  (registers)
from bench.data.cache import load_cache, write_cache
from bench.data.download import Resource, download, file_digest, load_pickle, safe_extract, verify_file
from bench.data.splits import read_split
from bench.errors import DataError

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- split lists


def test_split_lists_have_published_sizes_and_are_disjoint() -> None:
    sizes = {name: {s: len(v) for s, v in read_split(name).items()}
             for name in ("miniimagenet", "cifarfs", "fc100", "omniglot", "omniglot-lake", "omniglot-minimal")}
    assert sizes["miniimagenet"] == {"train": 64, "val": 16, "test": 20}
    assert sizes["cifarfs"] == {"train": 64, "val": 16, "test": 20}
    assert sizes["fc100"] == {"train": 60, "val": 20, "test": 20}
    assert sizes["omniglot"] == {"train": 1028, "val": 172, "test": 423}  # 1,200 training characters
    assert sizes["omniglot-lake"] == {"train": 30, "val": 0, "test": 20}  # alphabets
    for name in sizes:
        lists = read_split(name).values()
        assert sum(map(len, lists)) == len(set().union(*map(set, lists))), name


def test_split_lists_are_well_formed() -> None:
    assert all(re.fullmatch(r"n\d{8}", w) for ws in read_split("miniimagenet").values() for w in ws)
    fc100 = read_split("fc100")
    supers = {s: {e.split("/")[0] for e in v} for s, v in fc100.items()}
    assert [len(supers[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    fine = {e.split("/")[1] for v in fc100.values() for e in v}
    assert fine == {c for v in read_split("cifarfs").values() for c in v}  # the same 100 CIFAR classes
    assert all(re.fullmatch(r"[^/]+/character\d\d", c) for v in read_split("omniglot").values() for c in v)


# ---------------------------------------------------------------- Omniglot


def write_glyphs(folder: Path, characters: list[str], drawers: int = 3) -> None:
    """Omniglot layout: <folder>/<Alphabet>/characterNN/<id>_<drawer>.png, 105x105 one-bit."""
    for character in characters:
        (folder / character).mkdir(parents=True)
        for d in range(drawers):
            pixels = np.ones((105, 105), dtype=bool)
            pixels[20 + 5 * d:60, 10:30] = False  # a black stroke, asymmetric so rotations differ
            Image.fromarray(pixels).convert("1").save(folder / character / f"0001_{d + 1:02d}.png")


@pytest.fixture
def omniglot_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    write_glyphs(raw / "omniglot-py" / "images_background", ["Hebrew/character01", "Latin/character01"])
    write_glyphs(raw / "omniglot-py" / "images_evaluation",
                 ["Angelic/character01", "Angelic/character02", "Gurmukhi/character42"])
    return raw


def test_omniglot_vinyals_split_with_rotations(omniglot_raw: Path, tmp_path: Path) -> None:
    ds = omniglot.OmniglotVinyals().prepare(tmp_path / "data", raw=omniglot_raw, strict=False)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (5 * 4 * 3, 1, 28, 28)  # 5 chars x 4 rotations
    split_names = {s: [ds.class_names[i] for i in ids] for s, ids in ds.splits.items()}
    assert split_names["train"][:2] == ["Angelic/character01/rot000", "Angelic/character01/rot090"]
    assert split_names["train"][-1] == "Latin/character01/rot270"  # Vinyals' list order, not folder order
    assert len(split_names["train"]) == 12 and len(split_names["test"]) == 4
    assert {n.rsplit("/", 1)[0] for n in split_names["val"]} == {"Hebrew/character01"}
    first = ds.images[ds.labels == 0]
    rotated = ds.images[ds.labels == 1]
    assert torch.equal(rotated, torch.rot90(first, 1, dims=(-2, -1)))
    assert int(first[0, 0, 0, 0]) == 0 and int(first.max()) == 255  # strokes bright on black
    assert torch.bincount(ds.labels).tolist() == [3] * 20


def test_omniglot_lake_split_and_cache(omniglot_raw: Path, tmp_path: Path) -> None:
    source = omniglot.OmniglotLake()
    root = tmp_path / "data"
    built = source.prepare(root, raw=omniglot_raw, strict=False)
    assert [built.num_classes(s) for s in ("train", "val", "test")] == [2, 0, 3]
    shutil.rmtree(omniglot_raw)  # the second load must read the cache, not the raw files
    loaded = source.load(root)
    assert loaded.content_hash == built.content_hash and torch.equal(loaded.images, built.images)
    assert source.is_prepared(root) and not source.is_prepared(root, 32)


def test_omniglot_strict_refuses_partial_set(omniglot_raw: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="lack"):
        omniglot.OmniglotVinyals().prepare(tmp_path / "data", raw=omniglot_raw)


def test_omniglot_truncated_png_names_file(omniglot_raw: Path, tmp_path: Path) -> None:
    png = omniglot_raw / "omniglot-py/images_evaluation/Angelic/character02/0001_02.png"
    png.write_bytes(png.read_bytes()[:40])
    with pytest.raises(DataError, match=re.escape(str(png))):
        omniglot.OmniglotLake().prepare(tmp_path / "data", raw=omniglot_raw, strict=False)
    assert not omniglot.OmniglotLake().is_prepared(tmp_path / "data")  # nothing half-written


def test_omniglot_zip_with_wrong_checksum_is_refused(tmp_path: Path) -> None:
    write_glyphs(tmp_path / "src" / "images_background_small1", ["Greek/character01"])
    shutil.make_archive(str(tmp_path / "raw" / "images_background_small1"), "zip", tmp_path / "src")
    with pytest.raises(DataError, match="sha256"):
        omniglot.OmniglotMinimal().prepare(tmp_path / "data", raw=tmp_path / "raw", strict=False)


def test_omniglot_missing_raw_says_where(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="images_background_small1.zip"):
        omniglot.OmniglotMinimal().prepare(tmp_path / "data", raw=tmp_path / "empty")


# ---------------------------------------------------------------- CIFAR-100 (CIFAR-FS, FC100)


def cifar_names() -> tuple[list[str], list[str], dict[str, str]]:
    entries = [e for v in read_split("fc100").values() for e in v]
    parent = {e.split("/")[1]: e.split("/")[0] for e in entries}
    return sorted(parent), sorted(set(parent.values())), parent


def write_cifar(folder: Path, classes: list[str], per_class: int = 3) -> np.ndarray:
    """torchvision's cifar-100-python/{train,test,meta}; returns the images written, (N, 3072)."""
    fine_names, coarse_names, parent = cifar_names()
    folder.mkdir(parents=True)
    meta = {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    fine = [fine_names.index(c) for c in classes for _ in range(per_class)]
    coarse = [coarse_names.index(parent[fine_names[f]]) for f in fine]
    data = RNG.integers(0, 256, (len(fine), 3072), dtype=np.uint8)
    half = len(fine) // 2  # classes spread over both files, as in the real train/test files
    for name, rows in (("train", slice(0, half)), ("test", slice(half, None))):
        record = {b"data": data[rows], b"fine_labels": fine[rows], b"coarse_labels": coarse[rows]}
        (folder / name).write_bytes(pickle.dumps(record, protocol=2))
    return data


def test_cifarfs_from_python_files(tmp_path: Path) -> None:
    classes = ["dolphin", "seal", "beaver", "whale"]  # train, train, val, test in Bertinetto's split
    data = write_cifar(tmp_path / "raw" / "cifar-100-python", classes)
    ds = cifar.CifarFS().prepare(tmp_path / "data", raw=tmp_path / "raw", strict=False)
    assert ds.images.shape == (12, 3, 32, 32)
    names = {s: [ds.class_names[i] for i in ids] for s, ids in ds.splits.items()}
    assert names == {"train": ["dolphin", "seal"], "val": ["beaver"], "test": ["whale"]}
    beaver = ds.images[ds.labels == ds.class_names.index("beaver")]
    assert torch.equal(beaver.reshape(3, -1), torch.from_numpy(data[6:9]))  # R, G, B planes kept


def test_fc100_by_superclass(tmp_path: Path) -> None:
    write_cifar(tmp_path / "raw", ["aquarium_fish", "bear", "baby", "boy"])
    ds = cifar.FC100().prepare(tmp_path / "data", raw=tmp_path / "raw", strict=False, image_size=16)
    names = {s: [ds.class_names[i] for i in ids] for s, ids in ds.splits.items()}
    assert names == {"train": ["aquarium_fish"], "val": ["bear"], "test": ["baby", "boy"]}
    assert ds.images.shape == (12, 3, 16, 16)
    assert cifar.FC100().cache_dir(tmp_path / "data", 16).name == "fc100-16"


def test_cifar_strict_checks_official_files(tmp_path: Path) -> None:
    write_cifar(tmp_path / "raw", ["dolphin"])
    with pytest.raises(DataError, match="md5"):
        cifar.CifarFS().prepare(tmp_path / "data", raw=tmp_path / "raw")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_keys"])
def test_cifar_corrupt_pickle(tmp_path: Path, damage: str) -> None:
    write_cifar(tmp_path / "raw", ["dolphin", "beaver"])
    path = tmp_path / "raw" / "train"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "garbage":
        path.write_bytes(b"<html><body>Quota exceeded</body></html>")
    else:
        path.write_bytes(pickle.dumps({b"pixels": 1}))
    with pytest.raises(DataError, match=re.escape(str(path))):
        cifar.CifarFS().prepare(tmp_path / "data", raw=tmp_path / "raw", strict=False)


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


def test_pickle_with_code_is_refused_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"data": _Evil()}))
    with pytest.raises(DataError, match="not allowed"):
        load_pickle(path)
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- miniImageNet

MINI = {s: read_split("miniimagenet")[s][:2] for s in ("train", "val", "test")}


def test_miniimagenet_pickles(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    written = {}
    for split, wnids in MINI.items():
        written[split] = RNG.integers(0, 256, (6, 84, 84, 3), dtype=np.uint8)
        rows = {w: [i, i + 2, i + 4] for i, w in enumerate(wnids)}  # classes interleaved in the file
        record = {"image_data": written[split], "class_dict": rows}
        (raw / f"mini-imagenet-cache-{split}.pkl").write_bytes(pickle.dumps(record, protocol=4))
    ds = miniimagenet.MiniImageNet().prepare(tmp_path / "data", raw=raw, strict=False)
    assert ds.images.shape == (18, 3, 84, 84)
    assert {s: [ds.class_names[i] for i in ids] for s, ids in ds.splits.items()} == MINI
    second_val_class = ds.images[ds.labels == ds.class_names.index(MINI["val"][1])]
    expected = torch.from_numpy(written["val"][[1, 3, 5]]).permute(0, 3, 1, 2)
    assert torch.equal(second_val_class, expected)


def write_jpegs(paths: list[Path], size: int = 84) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=90)


def test_miniimagenet_image_folder_with_csv(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for split, wnids in MINI.items():
        rows = [(f"{w}{i:08d}.jpg", w) for w in wnids for i in range(2)]
        write_jpegs([raw / "images" / f for f, _ in rows], size=100)  # resized to 84 (Lanczos)
        with (raw / f"{split}.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows([("filename", "label"), *rows])
    ds = miniimagenet.MiniImageNet().prepare(tmp_path / "data", raw=raw, strict=False)
    assert ds.images.shape == (12, 3, 84, 84)
    assert [ds.num_classes(s) for s in ("train", "val", "test")] == [2, 2, 2]


def test_miniimagenet_split_folders_and_truncated_jpeg(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    paths = [raw / split / w / f"{i}.jpg" for split, ws in MINI.items() for w in ws for i in range(2)]
    write_jpegs(paths)
    ds = miniimagenet.MiniImageNet().prepare(tmp_path / "data", raw=raw, strict=False, image_size=42)
    assert ds.images.shape == (12, 3, 42, 42)
    paths[5].write_bytes(paths[5].read_bytes()[:100])
    with pytest.raises(DataError, match=re.escape(str(paths[5]))):
        miniimagenet.MiniImageNet().prepare(tmp_path / "data", raw=raw, strict=False)


def test_miniimagenet_without_files_says_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="mini-imagenet-cache-train.pkl"):
        miniimagenet.MiniImageNet().prepare(tmp_path / "data")
    with pytest.raises(DataError, match="bench data prepare miniimagenet"):
        miniimagenet.MiniImageNet().load(tmp_path / "data")


# ---------------------------------------------------------------- MNIST


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    body = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body) if compress else body)


@pytest.fixture(params=[True, False], ids=["gz", "raw"])
def mnist_raw(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, np.ndarray, np.ndarray]:
    images = RNG.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.arange(30) % 10
    suffix = ".gz" if request.param else ""
    folder = tmp_path / "raw" / "MNIST" / "raw"
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", images, 0x0803, request.param)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", labels, 0x0801, request.param)
    return tmp_path / "raw", images, labels


def test_mnist_idx_all_classes_in_test(mnist_raw: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    raw, images, labels = mnist_raw
    ds = mnist.Mnist().prepare(tmp_path / "data", raw=raw, strict=False)
    assert ds.images.shape == (30, 1, 28, 28)
    assert [ds.num_classes(s) for s in ("train", "val", "test")] == [0, 0, 10]
    assert torch.equal(ds.images[ds.labels == ds.class_names.index("7")][:, 0], torch.from_numpy(images[labels == 7]))


@pytest.mark.parametrize("damage", ["magic", "truncate"])
def test_mnist_bad_idx(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "raw"
    images = RNG.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    write_idx(folder / "t10k-images-idx3-ubyte", images, 0x0801 if damage == "magic" else 0x0803, False)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(10), 0x0801, False)
    path = folder / "t10k-images-idx3-ubyte"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=re.escape(str(path))):
        mnist.Mnist().prepare(tmp_path / "data", raw=folder, strict=False)


def test_mnist_truncated_gzip(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 28)), 0x0803, True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10), 0x0801, True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DataError, match="truncated"):
        mnist.Mnist().prepare(tmp_path / "data", raw=tmp_path, strict=False)


# ---------------------------------------------------------------- downloads and archives


def test_download_by_url_checks_checksum_and_html(tmp_path: Path) -> None:
    good = tmp_path / "served" / "a.bin"
    good.parent.mkdir()
    good.write_bytes(b"\x00binary payload")
    resource = Resource("a.bin", (good.as_uri(),), sha256=file_digest(good, "sha256"))
    assert download(resource, tmp_path / "dl").read_bytes() == good.read_bytes()
    wrong = Resource("b.bin", (good.as_uri(),), md5="0" * 32)
    with pytest.raises(DataError, match="md5"):
        download(wrong, tmp_path / "dl")
    assert not list((tmp_path / "dl").glob("b.bin*"))  # no partial file left
    page = tmp_path / "served" / "c.tar.gz"
    page.write_text("\n  <!DOCTYPE html><html><body>Sign in to continue</body></html>")
    with pytest.raises(DataError, match="HTML page"):
        download(Resource("c.tar.gz", (page.as_uri(),), md5="0" * 32), tmp_path / "dl")
    with pytest.raises(DataError, match="could not download"):
        download(Resource("d.bin", ((tmp_path / "nope").as_uri(),), md5="0" * 32), tmp_path / "dl")


def test_cifar_download_and_unpack_without_raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar(tmp_path / "src" / "cifar-100-python", ["dolphin", "whale"])
    archive = Path(shutil.make_archive(str(tmp_path / "served" / "cifar"), "gztar", tmp_path / "src"))
    served = Resource("cifar-100-python.tar.gz", (archive.as_uri(),), md5=file_digest(archive, "md5"))
    monkeypatch.setattr(cifar, "ARCHIVE", served)  # a file:// URL: the real code path, no network
    ds = cifar.CifarFS().prepare(tmp_path / "data", strict=False)
    assert [ds.class_names[i] for i in ds.splits["test"]] == ["whale"]
    assert (tmp_path / "data" / "raw" / "cifar100" / "cifar-100-python" / "meta").is_file()


def test_omniglot_download_without_raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i, character in ((1, "Korean/character01"), (2, "Tagalog/character01")):
        write_glyphs(tmp_path / "src" / f"small{i}" / f"images_background_small{i}", [character])
        made = shutil.make_archive(str(tmp_path / "served" / f"images_background_small{i}"), "zip",
                                   tmp_path / "src" / f"small{i}")
        served = Resource(Path(made).name, (Path(made).as_uri(),), sha256=file_digest(Path(made), "sha256"))
        monkeypatch.setitem(omniglot.RESOURCES, f"images_background_small{i}", served)
    ds = omniglot.OmniglotMinimal().prepare(tmp_path / "data", strict=False)
    assert [ds.num_classes(s) for s in ("train", "val", "test")] == [1, 0, 1]
    assert (tmp_path / "data" / "raw" / "omniglot" / "images_background_small1.zip").is_file()


def test_a_failed_omniglot_download_names_both_archives_and_leaves_no_empty_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in (1, 2):
        gone = Resource(f"images_background_small{i}.zip", ((tmp_path / "nowhere.zip").as_uri(),), sha256="0" * 64)
        monkeypatch.setitem(omniglot.RESOURCES, f"images_background_small{i}", gone)
    with pytest.raises(DataError) as caught:
        omniglot.OmniglotMinimal().prepare(tmp_path / "data" / "fresh")
    message = str(caught.value)
    assert "images_background_small1.zip and images_background_small2.zip" in message
    assert "could not download images_background_small1.zip" in message
    assert not (tmp_path / "data").exists()  # every folder the attempt made is gone again


def test_html_in_place_of_cifar_archive(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "cifar-100-python.tar.gz").write_text("<html><head><title>Error</title></head></html>")
    with pytest.raises(DataError, match="HTML page"):
        cifar.CifarFS().prepare(tmp_path / "data", raw=tmp_path / "raw")


def test_verify_file_checksum_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match="truncated, corrupt or another version"):
        verify_file(path, Resource("x.zip", ("https://example.org/x.zip",), sha256="f" * 64))


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            data = b"x" * member.size if member.isfile() else None
            tf.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("member", [
    _member("../escape.txt"), _member("/tmp/absolute.txt"), _member("a/../../escape.txt"),
    _member("link", tarfile.SYMTYPE, "../../etc/passwd"), _member("link", tarfile.SYMTYPE, "/etc/passwd"),
    _member("hard", tarfile.LNKTYPE, "../outside"), _member("dev", tarfile.CHRTYPE),
], ids=["dotdot", "absolute", "nested-dotdot", "symlink-out", "symlink-abs", "hardlink-out", "device"])
def test_unsafe_tar_member_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", [_member("ok/file.txt"), member])
    target = tmp_path / "target"
    with pytest.raises(DataError, match="refusing"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []  # checked before anything was written
    assert not (tmp_path / "escape.txt").exists()


def test_unsafe_zip_member_refused_and_safe_archives_unpack(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr("../../escape.txt", "bad")
    with pytest.raises(DataError, match="leaves the target folder"):
        safe_extract(bad, tmp_path / "t1")
    good = _tar(tmp_path / "good.tar.gz", [_member("d/file.txt"), _member("d/link", tarfile.SYMTYPE, "file.txt")])
    created = safe_extract(good, tmp_path / "t2")
    assert created == [tmp_path / "t2" / "d"] and (tmp_path / "t2" / "d" / "link").read_bytes() == b"x"
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"<!doctype html><title>Not Found</title>" * 20)
    with pytest.raises(DataError, match=r"neither a zip nor a tar archive \(it is an HTML page\)"):
        safe_extract(junk, tmp_path / "t3")


# ---------------------------------------------------------------- commands (bench data ...)


def test_list_prepare_verify(omniglot_raw: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    rows = {r["name"]: r for r in commands.list_datasets(root)}
    assert {"omniglot", "omniglot-lake", "omniglot-minimal", "miniimagenet", "cifarfs", "fc100", "mnist"} <= set(rows)
    assert not rows["omniglot-lake"]["present"] and rows["omniglot-lake"]["hash"] is None
    with pytest.raises(DataError, match="bench data prepare omniglot-lake"):
        commands.verify_dataset("omniglot-lake", root)
    with pytest.raises(DataError, match="lack"):  # the CLI prepares strictly: a partial copy is refused
        commands.prepare_dataset("omniglot-lake", root, raw=omniglot_raw)
    built = omniglot.OmniglotLake().prepare(root, raw=omniglot_raw, strict=False)
    row = {r["name"]: r for r in commands.list_datasets(root)}["omniglot-lake"]
    assert row["present"] and row["hash"] == built.content_hash
    report = commands.verify_dataset("omniglot-lake", root)
    assert report["splits"]["train"] == {"classes": 2, "expected": 964, "images": 6}
    assert not report["complete"] and not report["strict"]
    images = root / "omniglot-lake-28" / "images.npy"
    array = np.load(images)
    array[0, 0, 0, 0] ^= 1
    np.save(images, array)
    with pytest.raises(DataError, match="checksum"):
        commands.verify_dataset("omniglot-lake", root)


def test_every_missing_message_names_a_command(tmp_path: Path) -> None:
    for name in ("omniglot", "omniglot-lake", "omniglot-minimal", "miniimagenet", "cifarfs", "fc100", "mnist"):
        message = commands._source(name).missing_message(tmp_path)
        assert f"bench data prepare {name} --root {tmp_path}" in message and "\n" not in message


@pytest.mark.parametrize("damage", ["truncate", "trailing", "not_npy"])
def test_damaged_cache_arrays_are_a_data_error(tmp_path: Path, damage: str) -> None:
    images = torch.arange(6 * 4 * 4, dtype=torch.uint8).view(6, 1, 4, 4)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    write_cache(tmp_path, "tiny", images, labels, ["a", "b"], {"train": ["a"], "test": ["b"]})
    loaded = load_cache(tmp_path)
    assert torch.equal(loaded.images, images) and torch.equal(loaded.labels, labels)
    path = tmp_path / "images.npy"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:-5], "trailing": data + b"\0", "not_npy": b"junk" * 40}[damage])
    with pytest.raises(DataError, match="unreadable"):
        load_cache(tmp_path)
