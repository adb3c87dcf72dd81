"""The file this machine draws a font family from, as fontconfig (and so Chromium) picks it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helios_render._chromium import fonts


@pytest.mark.skipif(shutil.which("fc-match") is None, reason="no fontconfig on this machine")
def test_each_family_resolves_to_an_existing_font_file() -> None:
    found = fonts.font_files(["DejaVu Sans", "monospace", "DejaVu Sans"])
    assert list(found) == ["DejaVu Sans", "monospace"]
    assert found["DejaVu Sans"] is not None and found["DejaVu Sans"].endswith("DejaVuSans.ttf")
    assert all(path is not None and Path(path).is_file() for path in found.values())


def test_without_fontconfig_every_family_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert fonts.font_files(["Inter", "serif"]) == {"Inter": None, "serif": None}
