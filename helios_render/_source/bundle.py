"""A local composition's folder as one tar, for workers on other machines.

:func:`make_bundle` packs the folder of a :class:`~helios_render._model.plan.FolderSource` (hidden
entries left out: job folders and temporary outputs are ours) into a
:class:`~helios_render._model.plan.BundleSource` named by the SHA-256 of its bytes, refusing folders
over :data:`BUNDLE_LIMIT`. :func:`unpack_bundle` unpacks a bundle once per process into a
private folder (by digest) and returns it; :func:`release_bundles` removes those folders.

Unpacking accepts regular files and folders only, inside the target (no links, devices or
``..``), so a bundle cannot write outside its folder.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import shutil
import tarfile
import threading
from pathlib import Path

from .._exceptions import SourceError
from .._model.job import BundleSource, FolderSource
from .._tempdirs import make_private_dir

__all__ = ["BUNDLE_LIMIT", "make_bundle", "release_bundles", "unpack_bundle"]

#: Most bytes of files a composition folder may hold to travel to a cluster (override with
#: ``HELIOS_BUNDLE_LIMIT_MB``).
BUNDLE_LIMIT = 256 * 1024 * 1024

_lock = threading.Lock()
_unpacked: dict[str, Path] = {}


def bundle_limit() -> int:
    """:data:`BUNDLE_LIMIT`, or ``HELIOS_BUNDLE_LIMIT_MB`` mebibytes when set."""
    text = os.environ.get("HELIOS_BUNDLE_LIMIT_MB")
    if text:
        try:
            return int(float(text) * 1024 * 1024)
        except ValueError:
            pass
    return BUNDLE_LIMIT


def _files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file():
                found.append(path)
    return found


def make_bundle(source: FolderSource, *, limit: int | None = None) -> BundleSource:
    """The tar of ``source.root``, for workers on other machines.

    Raises:
        SourceError: The folder holds more than ``limit`` bytes (default
            :func:`bundle_limit`).
    """
    limit = bundle_limit() if limit is None else limit
    root = Path(source.root)
    files = _files(root)
    size = sum(path.stat().st_size for path in files)
    if size > limit:
        raise SourceError(
            f"the composition's folder {root} holds {size / 2**20:.0f} MiB, more than the "
            f"{limit / 2**20:.0f} MiB a cluster render ships to its workers: move the "
            "composition into a folder of its own, serve it over http(s) and give the URL, "
            "or raise HELIOS_BUNDLE_LIMIT_MB"
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in files:
            info = tar.gettarinfo(path, arcname=path.relative_to(root).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    data = buffer.getvalue()
    return BundleSource(hashlib.sha256(data).hexdigest(), source.entry, data)


def unpack_bundle(bundle: BundleSource) -> Path:
    """The folder holding ``bundle``'s files, unpacked on first use in this process.

    Raises:
        SourceError: The bundle's bytes do not match its digest, or hold something other than
            plain files and folders.
    """
    with _lock:
        folder = _unpacked.get(bundle.digest)
        if folder is not None and folder.is_dir():
            return folder
        if hashlib.sha256(bundle.data).hexdigest() != bundle.digest:
            raise SourceError(
                f"the composition bundle {bundle.digest[:12]} arrived damaged: render again"
            )
        folder = make_private_dir("bundle")
        try:
            with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:") as tar:
                for member in tar.getmembers():
                    if not (member.isfile() or member.isdir()):
                        raise SourceError(f"the composition bundle holds {member.name!r}, "
                                          "which is not a plain file")
                tar.extractall(folder, filter="data")
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise SourceError(f"cannot unpack the composition bundle: {exc}") from exc
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        _unpacked[bundle.digest] = folder
        return folder


def release_bundles() -> int:
    """Remove every folder :func:`unpack_bundle` made in this process; return how many."""
    with _lock:
        folders = list(_unpacked.values())
        _unpacked.clear()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return len(folders)


atexit.register(release_bundles)
