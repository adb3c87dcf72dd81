"""Which folder to serve for a local composition: the root rule.

A composition file is served over loopback HTTP from a folder, the *root*; the page can reach
nothing outside it. Build tools often put a page below the assets it loads: Vite's repo-wide
build writes ``examples/NAME/composition.html`` beside a shared ``assets/`` two levels up, and
the page asks for ``../../assets/index.js`` (or ``/assets/index.js``). Served from its own
folder, every such request would fail. :func:`choose_root` picks a root that holds them.

The rule, in order:

1. An explicit root (``--root DIR``) is used as it is; the entry must be inside it.
2. Otherwise the root starts at the entry's own folder and moves up only as far as the page's
   own references need: a relative reference (``src``/``href`` attributes, ``url(...)`` in the
   HTML) that points above the folder to a file that exists, and a root-relative one
   (``/assets/x.js``) that exists below the nearest ancestor holding it.
3. It never moves above the *project root*: the nearest ancestor of the entry (itself
   included) holding a ``package.json`` or ``.git``. Without such a marker it never moves at
   all above the entry's folder, so nothing the user did not point at is served.

References with a scheme (``https:``, ``data:``), protocol-relative ones (``//cdn``) and
fragments are ignored; so are references to files that do not exist (they fail when the
page asks for them, with a message that suggests ``--root``).
"""

from __future__ import annotations

import html as html_text
import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from .._exceptions import SourceError

__all__ = ["PROJECT_MARKERS", "choose_root", "page_references"]

#: Files or folders whose presence marks a project root, above which no root is chosen.
PROJECT_MARKERS = ("package.json", ".git")
#: Bytes of the entry HTML read to find its references.
_READ_LIMIT = 4 * 1024 * 1024

_ATTRIBUTE = re.compile(
    r"""\b(?:src|href|poster|data)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.IGNORECASE
)
_SRCSET = re.compile(r"""\bsrcset\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))\s*\)""", re.IGNORECASE)
_IMPORT = re.compile(r"""\b(?:import|from)\s*\(?\s*["']([^"']+)["']""")


def page_references(html: str) -> list[str]:
    """The local references of an HTML text: paths of ``src``, ``href``, ``srcset``,
    ``url(...)`` and module ``import`` specifiers, without query or fragment, in order.
    URLs with a scheme or a host, bare module names and fragments are left out."""
    found: list[str] = []
    for match in _ATTRIBUTE.finditer(html):
        found.append(next(group for group in match.groups() if group is not None))
    for match in _SRCSET.finditer(html):
        text = next(group for group in match.groups() if group is not None)
        found.extend(item.split()[0] for item in text.split(",") if item.split())
    for match in _CSS_URL.finditer(html_text.unescape(html)):
        found.append(next(group for group in match.groups() if group is not None))
    for match in _IMPORT.finditer(html):
        specifier = match.group(1)
        if specifier.startswith(("/", "./", "../")):
            found.append(specifier)
    references = []
    for text in found:
        parts = urlsplit(html_text.unescape(text).strip())
        if parts.scheme or parts.netloc or not parts.path:
            continue
        references.append(unquote(parts.path))
    return list(dict.fromkeys(references))


def _project_root(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return None


def _needed_root(folder: Path, reference: str, bound: Path) -> Path | None:
    """The folder a reference needs as root, if it is within ``bound`` and the file exists."""
    path = PurePosixPath(reference)
    if path.is_absolute():
        relative = str(path).lstrip("/")
        for candidate in (folder, *folder.parents):
            if (candidate / relative).is_file():
                return candidate
            if candidate == bound:
                break
        return None
    target = Path(os.path.normpath(folder / path))
    if not target.is_file():
        return None
    common = Path(os.path.commonpath([folder, target]))
    return common if common.is_relative_to(bound) else None


def choose_root(entry: Path, root: Path | None = None) -> tuple[Path, str]:
    """The folder to serve and the entry's ``/``-separated path inside it.

    Args:
        entry: The composition's HTML file (absolute or relative to the working folder).
        root: An explicit root (``--root``); ``None`` applies the rule of this module.

    Raises:
        SourceError: ``root`` is not a folder, or ``entry`` is not inside it.
    """
    entry = Path(os.path.abspath(entry))
    folder = entry.parent
    if root is not None:
        chosen = Path(os.path.abspath(root.expanduser()))
        if not chosen.is_dir():
            raise SourceError(f"--root {chosen} is not a folder: give the folder to serve")
        resolved_entry = entry.resolve()
        resolved_root = chosen.resolve()
        if not resolved_entry.is_relative_to(resolved_root):
            raise SourceError(
                f"the composition {entry} is not inside --root {chosen}: "
                "give a root folder that contains it"
            )
        return chosen, resolved_entry.relative_to(resolved_root).as_posix()
    bound = _project_root(folder) or folder
    chosen = folder
    try:
        with entry.open("rb") as file:
            html = file.read(_READ_LIMIT).decode("utf-8", "replace")
    except OSError:
        html = ""
    for reference in page_references(html):
        needed = _needed_root(folder, reference, bound)
        if needed is not None and chosen.is_relative_to(needed) and needed != chosen:
            chosen = needed
    return chosen, entry.relative_to(chosen).as_posix()
