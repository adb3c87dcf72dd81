"""The package's layering: no import cycle, no import from a lower folder to a higher one, pure
values at the bottom (docs/architecture.md draws the tree these tests hold to)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import helios_render

try:
    import distributed  # noqa: F401

    HAVE_DASK = True
except ImportError:  # the unit session installs no extras
    HAVE_DASK = False

PACKAGE = Path(helios_render.__file__).parent
NAME = "helios_render"

#: Bottom to top. A module may import its own layer and the layers below it, never above.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("values", ("_version", "_exceptions", "_model", "_props")),
    ("machine", ("_process", "_tempdirs", "_toolcache", "_nursery")),
    ("one chunk", ("_source", "_chromium", "_ffmpeg")),
    ("runs and output", ("_executors", "_output")),
    ("facts", ("_environment", "_doctor", "_props_source", "_timing", "_inspect")),
    ("render", ("_render", "_batch")),
    ("surface", ("", "__main__", "cli", "_cli_progress", "_cli_batch", "_preview")),
)
#: Within one layer: ``(a, b)``, a must not import b. The browser side and FFmpeg know
#: nothing of each other; where a composition comes from knows neither; the executors and the
#: job folder meet only in ``_render``. (The page imports the server's list of page types.)
STRANGERS = (
    ("_chromium", "_ffmpeg"),
    ("_ffmpeg", "_chromium"),
    ("_source", "_chromium"),
    ("_source", "_ffmpeg"),
    ("_executors", "_output"),
    ("_output", "_executors"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def top(module: str) -> str:
    """The module's folder or top-level module under the package ('' for the root)."""
    rest = module.removeprefix(NAME).removeprefix(".")
    return rest.split(".")[0]


def layer(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if top(module) in members:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def _targets(module: str, node: ast.ImportFrom | ast.Import) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:
        here = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        parts = here.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1])
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    for alias in node.names:
        yield f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target


def imports(module: str) -> Iterator[tuple[str, bool]]:
    """``(imported module, at module level)`` for every import of ours that runs (the
    ``TYPE_CHECKING`` blocks do not), with the packages an import runs on the way."""

    def visit(node: ast.AST, module_level: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, child):
                    if target == NAME or target.startswith(NAME + "."):
                        parts = target.split(".")
                        for end in range(2, len(parts) + 1):  # the packages on the way
                            name = ".".join(parts[:end])
                            # (a module's own packages are loaded before it)
                            if name in MODULES and not f"{module}.".startswith(f"{name}."):
                                yield name, module_level
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, False)
            else:
                yield from visit(child, module_level)

    yield from visit(ast.parse(MODULES[module].read_text()), True)


EDGES = {(module, target, eager) for module in MODULES for target, eager in imports(module)}


def test_there_is_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, target, _ in EDGES:
        graph[module].add(target)
    done: set[str] = set()
    cycles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                walk(target, [*path, target])
        done.add(module)

    for module in sorted(MODULES):
        if module not in done:
            walk(module, [module])
    assert cycles == []


def test_no_import_points_up() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, target, _ in EDGES
        if layer(target) > layer(module) and top(module) != top(target)
    )
    assert upward == []


@pytest.mark.parametrize(("a", "b"), STRANGERS)
def test_folders_of_one_layer_stay_apart(a: str, b: str) -> None:
    crossing = sorted(
        f"{module} -> {target}"
        for module, target, _ in EDGES
        if top(module) == a and top(target) == b
    )
    assert crossing == []


def test_values_import_only_values_and_the_standard_library() -> None:
    allowed_ours = {"_model", "_exceptions", "_version"}
    third_party = set()
    for module, path in MODULES.items():
        if top(module) not in allowed_ours:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root not in sys.stdlib_module_names and root != NAME:
                    third_party.add(f"{module}: {name}")
    # Trio appears in progress.py only under TYPE_CHECKING, for the channel's type.
    assert third_party == {f"{NAME}._model.progress: trio"}
    ours = {
        f"{module} -> {target}"
        for module, target, _ in EDGES
        if top(module) in allowed_ours and top(target) not in allowed_ours
    }
    assert ours == set()


def test_the_values_load_no_trio_cdp_or_ffmpeg() -> None:
    code = (
        "import sys, helios_render._model.options, helios_render._model.plan, "
        "helios_render._model.job, helios_render._model.progress\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [
        name
        for name in loaded
        if name.split(".")[0] in ("trio", "trio_websocket", "h11", "distributed")
        or name.startswith((f"{NAME}._chromium", f"{NAME}._ffmpeg", f"{NAME}._executors"))
    ]
    assert heavy == []


def test_every_module_imports_on_its_own() -> None:
    for module in sorted(MODULES):
        if module.endswith("__main__") or ("dask" in module and not HAVE_DASK):
            continue
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{module}: {done.stderr[-500:]}"
