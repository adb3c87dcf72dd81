"""The root rule: which folder serves a local composition (pure, on temporary folders)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helios_render import SourceError
from helios_render._source.root import choose_root, page_references

from ..factories import make_page


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def helios_build(tmp_path: Path, marker: str | None = "package.json") -> Path:
    """A Vite repo-wide build: examples/scene/composition.html and a shared assets/."""
    if marker:
        write(tmp_path / marker)
    write(tmp_path / "assets" / "index-abc.js")
    write(tmp_path / "assets" / "style.css")
    return write(
        tmp_path / "examples" / "scene" / "composition.html",
        '<link rel="stylesheet" href="../../assets/style.css">'
        '<script type="module" crossorigin src="../../assets/index-abc.js"></script>',
    )


def test_references_are_local_paths_without_queries_or_schemes() -> None:
    html = """
      <script src="a.js?v=1"></script><link href='../b.css#x'><img src=c.png>
      <img srcset="d.png 1x, e.png 2x"><div style="background: url(&quot;f.gif&quot;)"></div>
      <style>.x { background: url('g.png') }</style>
      <script type="module">import x from "/h.js"; import("./i.js"); import y from "lib";</script>
      <a href="https://example.com/j.js"></a><img src="data:image/png;base64,AAAA">
      <a href="#top"></a><script src="//cdn.example.com/k.js"></script>
    """
    assert page_references(html) == [
        "a.js", "../b.css", "c.png", "d.png", "e.png", "f.gif", "g.png", "/h.js", "./i.js"
    ]


def test_a_page_with_its_assets_beside_it_is_served_from_its_folder(tmp_path: Path) -> None:
    write(tmp_path / "package.json")
    entry = write(tmp_path / "site" / "index.html", '<script src="app.js"></script>')
    write(tmp_path / "site" / "app.js")
    assert choose_root(entry) == (tmp_path / "site", "index.html")


def test_a_vite_build_is_served_from_the_folder_holding_its_assets(tmp_path: Path) -> None:
    entry = helios_build(tmp_path)
    assert choose_root(entry) == (tmp_path, "examples/scene/composition.html")


def test_the_root_stops_at_the_lowest_folder_that_holds_the_assets(tmp_path: Path) -> None:
    write(tmp_path / ".git" / "HEAD")
    entry = helios_build(tmp_path / "dist", marker=None)
    assert choose_root(entry) == (tmp_path / "dist", "examples/scene/composition.html")


def test_root_relative_references_find_the_nearest_folder_holding_them(tmp_path: Path) -> None:
    write(tmp_path / "package.json")
    write(tmp_path / "dist" / "assets" / "index.js")
    entry = write(tmp_path / "dist" / "examples" / "a" / "index.html",
                  '<script type="module" src="/assets/index.js"></script>')
    assert choose_root(entry) == (tmp_path / "dist", "examples/a/index.html")


def test_without_a_project_marker_the_root_never_leaves_the_pages_folder(
    tmp_path: Path,
) -> None:
    entry = helios_build(tmp_path, marker=None)
    assert choose_root(entry) == (entry.parent, "composition.html")


def test_the_root_never_goes_above_the_project_root(tmp_path: Path) -> None:
    write(tmp_path / "secret.js")
    entry = write(tmp_path / "project" / "index.html", '<script src="../secret.js"></script>')
    write(tmp_path / "project" / "package.json")
    assert choose_root(entry) == (tmp_path / "project", "index.html")


def test_references_to_missing_files_do_not_move_the_root(tmp_path: Path) -> None:
    write(tmp_path / "package.json")
    entry = write(tmp_path / "a" / "b" / "index.html", '<script src="../../gone.js"></script>')
    assert choose_root(entry) == (tmp_path / "a" / "b", "index.html")


def test_an_explicit_root_is_used_as_given(tmp_path: Path) -> None:
    entry = helios_build(tmp_path, marker=None)
    assert choose_root(entry, tmp_path) == (tmp_path, "examples/scene/composition.html")
    assert choose_root(entry, tmp_path / "examples") == (
        tmp_path / "examples", "scene/composition.html"
    )


def test_an_explicit_root_must_contain_the_page(tmp_path: Path) -> None:
    entry = helios_build(tmp_path)
    write(tmp_path / "other" / "x.txt")
    with pytest.raises(SourceError, match="is not inside --root"):
        choose_root(entry, tmp_path / "other")
    with pytest.raises(SourceError, match="is not a folder"):
        choose_root(entry, tmp_path / "nowhere")


def test_a_failed_request_names_the_folder_above_the_root_that_holds_it(tmp_path: Path) -> None:
    from helios_render._chromium.page import asset_failure

    entry = helios_build(tmp_path, marker=None)
    config = make_page(url="http://127.0.0.1:9/composition.html", width=2, height=2,
                       served_root=str(entry.parent))
    message = asset_failure(config, "Script", "http://127.0.0.1:9/assets/index-abc.js", "HTTP 404")
    assert f"serve that folder with --root {tmp_path}" in message
    assert "outside the served folder" in message
    for url in ("http://127.0.0.1:9/assets/gone.js", "http://127.0.0.1:9",
                "http://example.com/assets/index-abc.js"):
        message = asset_failure(config, "Script", url, "HTTP 404")
        assert "--root" not in message and "--allow-missing-assets" in message
    long = "data:image/png;base64," + "A" * 5000
    assert len(asset_failure(config, "Image", long, "net::ERR_INVALID_URL")) < 250
