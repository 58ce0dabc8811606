"""Untrusted data files handled safely: pinned-checksum downloads, archive unpacking, pickles.

Three ways a data file goes wrong in practice, each caught here with a message saying what to do:
a mirror or a file host answers with an HTML page (login, quota, error) that gets saved under
the archive's name; a download is cut short or is another version (checksum mismatch); an
archive holds members whose paths leave the target folder (``/etc/...``, ``../..``, a symlink
pointing out). Archives are checked member by member *before* anything is written, then
unpacked into a temporary folder inside the target and moved into place, so a failure never
leaves a half-unpacked data set behind (DESIGN.md "Safe by default"). The CIFAR and
miniImageNet pickles are read by `load_pickle`, which only rebuilds plain containers and numpy
arrays: an ordinary ``pickle.load`` would run whatever code a tampered file names.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import shutil
import stat
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from bench.errors import DataError

# The only globals a pickle of dicts, lists, strings and numpy arrays needs (numpy 1 and 2 names).
_PICKLE_GLOBALS = {
    ("_codecs", "encode"), ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}

TIMEOUT_S = 60
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")


@dataclass(frozen=True)
class Resource:
    """One downloadable file with its pinned checksum (at least one of ``sha256``, ``md5``)."""

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None

    def expected(self) -> tuple[str, str]:
        """``(algorithm, hex digest)``, preferring SHA-256."""
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        raise ValueError(f"resource {self.filename} has no pinned checksum")


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in 4 MiB blocks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def looks_like_html(path: Path) -> bool:
    """True if the file starts like a web page rather than binary data."""
    with path.open("rb") as handle:
        head = handle.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(_HTML_MARKERS)


def verify_file(path: Path, resource: Resource, shown: Path | None = None) -> None:
    """Raise `DataError` if ``path`` is an HTML page or does not match the pinned checksum.

    Args:
        path: the file to check.
        resource: what it should be.
        shown: the path to name in messages (the final name of a partial download).
    """
    shown = shown or path
    source = resource.urls[0] if resource.urls else "its source"
    if looks_like_html(path):
        raise DataError(
            f"{shown} is an HTML page, not {resource.filename}: the download was answered by a web page "
            f"(a login, quota or error page). Delete it, download {source} in a browser, and put the "
            f"file at {shown}.")
    algorithm, expected = resource.expected()
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise DataError(
            f"{shown} has {algorithm} {actual}, but {resource.filename} must have {expected}: the file is "
            f"truncated, corrupt or another version. Delete it and download it again from {source}.")


def download(resource: Resource, directory: Path) -> Path:
    """The verified file ``directory/resource.filename``, downloaded if absent.

    Raises:
        DataError: no URL answered, or the result fails `verify_file`.
    """
    target = directory / resource.filename
    if target.is_file():
        verify_file(target, resource)
        return target
    with folders_removed_on_failure(directory):
        return _download_into(resource, target)


@contextlib.contextmanager
def folders_removed_on_failure(directory: Path) -> Iterator[None]:
    """Make ``directory`` (and missing parents); if the body raises, remove the ones made here
    that are still empty, so a failed download leaves the disk as it found it."""
    made = [p for p in (directory, *directory.parents) if not p.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty folder; anything written since is kept
        raise


def _download_into(resource: Resource, target: Path) -> Path:
    """`download` once the folder exists: each URL in turn, verified, atomically renamed."""
    errors = []
    for url in resource.urls:
        partial = target.with_name(target.name + ".part")
        try:
            _fetch(url, partial)
        except OSError as exc:  # URLError and timeouts are OSErrors
            errors.append(f"{url}: {exc}")
            partial.unlink(missing_ok=True)
            continue
        try:
            verify_file(partial, resource, shown=target)
        except DataError:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        return target
    algorithm, expected = resource.expected()
    raise DataError(
        f"could not download {resource.filename} ({'; '.join(errors) or 'no URL known'}). On a machine "
        f"with network access download {' or '.join(resource.urls)}, put it at {target} (its {algorithm} "
        f"must be {expected}) and run the command again.")


def _fetch(url: str, destination: Path) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "fewshot-bench"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, destination.open("wb") as out:
        shutil.copyfileobj(response, out, length=1 << 22)


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Unpack a zip or tar archive inside ``target``; returns the top-level entries created.

    Every member is checked first: absolute paths, ``..`` that leaves ``target``, links pointing
    outside it, and device or FIFO members are refused, and nothing is written.

    Raises:
        DataError: the archive is unreadable, not a zip/tar, or has an unsafe member.
    """
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif _is_tar(archive):
            _extract_tar(archive, staging)
        else:
            hint = " (it is an HTML page)" if looks_like_html(archive) else ""
            raise DataError(f"{archive} is neither a zip nor a tar archive{hint}; delete it and download it "
                            f"again.")
        created = []
        for entry in sorted(staging.iterdir()):
            final = target / entry.name
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            elif final.exists() or final.is_symlink():
                final.unlink()
            entry.replace(final)
            created.append(final)
        return created
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_tar(archive: Path) -> bool:
    try:
        return tarfile.is_tarfile(archive)
    except OSError:
        return False


def _check_member_path(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path, or `DataError` if it is absolute or climbs out with ``..``."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise DataError(f"{archive} holds a member with an absolute path ({name!r}); refusing to unpack it. "
                        f"Delete the archive and download it again from the official source.")
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise DataError(f"{archive} holds a member whose path leaves the target folder ({name!r}); "
                            f"refusing to unpack it. Delete the archive and download it again from the "
                            f"official source.")
    return path


def _check_link(name: PurePosixPath, link: str, archive: Path, relative_to_member: bool) -> None:
    """A link target must stay inside the target folder."""
    base = name.parent if relative_to_member else PurePosixPath()
    _check_member_path(str(base / link) if not link.startswith("/") else link, archive)


def _extract_zip(archive: Path, staging: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                path = _check_member_path(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    _check_link(path, zf.read(info).decode("utf-8", "replace"), archive, True)
            for info in members:
                zf.extract(info, staging)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{archive} is a damaged zip file ({exc}); delete it and download it again.") from exc


def _extract_tar(archive: Path, staging: Path) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                path = _check_member_path(member.name, archive)
                if member.issym() or member.islnk():
                    _check_link(path, member.linkname, archive, member.issym())
                elif not (member.isfile() or member.isdir()):
                    raise DataError(f"{archive} holds a device or FIFO member ({member.name!r}); refusing "
                                    f"to unpack it. Delete the archive and download it again.")
            # The "data" filter (Python >= 3.11.4) repeats these checks inside tarfile.
            tf.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive} is a damaged tar archive ({exc}); delete it and download it "
                        f"again.") from exc


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core." + module.removeprefix("numpy.core.")  # numpy 2 renamed the module
        return super().find_class(module, name)


def load_pickle(path: Path) -> object:
    """Unpickle a data file (Python 2 pickles included) allowing only containers and numpy arrays.

    Raises:
        DataError: missing, truncated, corrupt, or naming any other global (a tampered file).
    """
    try:
        with path.open("rb") as handle:
            return _DataUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError as exc:
        raise DataError(f"{path} is missing; put the data set's files in place (see docs/datasets.md).") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OSError, MemoryError) as exc:
        hint = " (it is an HTML page)" if path.is_file() and looks_like_html(path) else ""
        raise DataError(f"{path} is not a readable data pickle{hint} ({type(exc).__name__}: {exc}); the file "
                        f"is truncated, corrupt or not the expected file. Replace it with a fresh copy "
                        f"and prepare the data set again.") from exc
