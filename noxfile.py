"""Sessions: tests, lint, typecheck, docs (default); unit, bench and soak on demand."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, property-based and integration tests (real Chromium and FFmpeg)."""
    session.install("-e", ".[dask]", *_group("test"))
    # The slowest tests are listed at the end, so that a CI log shows where its time goes.
    session.run("pytest", *(session.posargs or ["-q", "--durations=30"]))


@nox.session(default=False)
def unit(session: nox.Session) -> None:
    """The fast tests: pure cores, property-based and fake-worker tests (no Chromium)."""
    session.install("-e", ".", *_group("test"))
    session.run("pytest", "-m", "not browser", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, with the flake8-async (ASYNC) rules."""
    session.install(*_group("lint"))
    session.run("ruff", "check", "helios_render", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    session.install("-e", ".[dask]", *_group("typecheck"))
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """mkdocs build --strict."""
    session.install(*_group("docs"))
    session.run("mkdocs", "build", "--strict", "--site-dir", session.create_tmp() + "/site")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Frames per second at 1080p against a bare CDP capture loop, and a concurrency sweep;
    ``nox -s bench -- --codecs``: the encode fps of every codec beside the capture fps.
    ``nox -s bench -- cluster [options]``: Dask scheduling overhead and local:2 against two
    local workers. ``nox -s bench -- batch [options]``: a 12-row batch against the same 12
    renders as separate commands. ``nox -s bench -- static [options]``: static frames skipped
    against not, on a page still for 60 % of its frames and on one that always moves."""
    if session.posargs[:1] == ["batch"]:
        session.install("-e", ".")
        session.run("python", "benchmarks/bench_batch.py", *session.posargs[1:])
        return
    if session.posargs[:1] == ["static"]:
        session.install("-e", ".")
        session.run("python", "benchmarks/bench_static.py", *session.posargs[1:])
        return
    if session.posargs[:1] == ["cluster"]:
        session.install("-e", ".[dask]")
        session.run("python", "benchmarks/bench_cluster.py", *session.posargs[1:])
        return
    session.install("-e", ".")
    session.run("python", "benchmarks/bench_render.py", *session.posargs)


@nox.session(default=False)
def soak(session: nox.Session) -> None:
    """20 renders in a row: open file descriptors, threads and child processes must not grow.
    ``nox -s soak -- --long`` (20,000 frames at 640x360) and ``-- --big`` (300 frames at 4K):
    the memory of every process, the descriptors and the job folder, sampled over time."""
    session.install("-e", ".")
    session.run("python", "benchmarks/soak.py", *session.posargs)
