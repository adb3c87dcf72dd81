"""The Dask executor without a cluster: a clear message without Dask, none imported by the core
package, workers of other versions refused. (On a real cluster: integration/test_cluster.py.)"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from helios_render import DaskExecutor, UsageError
from helios_render._executors._dask_cluster import check_versions


def test_without_dask_cluster_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UsageError, match=r'pip install "helios-render\[dask\]"') as caught:
        DaskExecutor("local:2")
    assert caught.value.exit_code == 2


def test_the_core_package_does_not_import_dask() -> None:
    code = "import sys, helios_render; print(any(m.startswith(('dask', 'distributed')) " \
           "for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_workers_with_other_versions_are_refused_with_the_versions_listed() -> None:
    same = {"helios_render": "0.1.0", "chromium": "Chromium 1", "ffmpeg": "5.1", "host": "a"}
    facts = {"tcp://a:1": same, "tcp://b:1": {**same, "chromium": "Chromium 2", "host": "b"}}
    with pytest.raises(UsageError) as caught:
        check_versions(facts, allow_mixed=False)
    assert "Chromium 1" in str(caught.value) and "Chromium 2" in str(caught.value)
    assert "--allow-mixed-versions" in str(caught.value)
    assert check_versions(facts, allow_mixed=True) == ["tcp://a:1", "tcp://b:1"]


def test_workers_that_draw_a_family_from_other_files_are_refused_naming_it() -> None:
    files = {"Inter": "/usr/share/fonts/Inter.ttf", "sans-serif": "/f/DejaVuSans.ttf"}
    same: dict[str, Any] = {"helios_render": "0.1.0", "chromium": "Chromium 1", "ffmpeg": "5.1",
                            "host": "a", "fonts": files}
    other = {**same, "fonts": {**files, "Inter": "/usr/share/fonts/DejaVuSans.ttf"}}
    facts = {"tcp://a:1": same, "tcp://b:1": other}
    with pytest.raises(UsageError) as caught:
        check_versions(facts, allow_mixed=False)
    message = str(caught.value)
    assert "font family 'Inter'" in message and "sans-serif" not in message
    assert "tcp://b:1: /usr/share/fonts/DejaVuSans.ttf" in message
    assert "--allow-mixed-versions" in message
    assert check_versions(facts, allow_mixed=True) == ["tcp://a:1", "tcp://b:1"]
    assert check_versions({"tcp://a:1": same, "tcp://b:1": same}, allow_mixed=False) == [
        "tcp://a:1", "tcp://b:1"]
