"""The composition's folder as a tar for other machines."""

from __future__ import annotations

from pathlib import Path

import pytest

import helios_render
from helios_render._model.job import FolderSource
from helios_render._source.bundle import make_bundle, unpack_bundle


def test_a_bundle_unpacks_to_the_same_files_and_refuses_big_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text("<p>hi</p>")
    (tmp_path / "sub" / "data.bin").write_bytes(bytes(range(256)) * 10)
    (tmp_path / ".helios-job").mkdir()
    (tmp_path / ".helios-job" / "chunk.ts").write_bytes(b"ours, not the page's")
    source = FolderSource(str(tmp_path), "index.html")
    bundle = make_bundle(source)
    assert make_bundle(source).digest == bundle.digest  # deterministic
    folder = unpack_bundle(bundle)
    assert (folder / "sub" / "data.bin").read_bytes() == bytes(range(256)) * 10
    assert not (folder / ".helios-job").exists()
    assert unpack_bundle(bundle) == folder  # once per process
    with pytest.raises(helios_render.SourceError, match="HELIOS_BUNDLE_LIMIT_MB"):
        make_bundle(source, limit=1000)
