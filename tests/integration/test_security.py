"""Security promises: web security on, DevTools on loopback and out of the page's reach,
sandbox off only as root. (Path traversal on the file server: tests/test_server.py.)"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from helios_render._chromium.browser import chromium_args, find_browser, launch_browser
from helios_render._chromium.page import open_page
from helios_render._model.job import PageConfig
from helios_render._source.server import serve_directory

from ..conftest import COMPOSITIONS

PROFILE = Path("/tmp/profile")


def _args(as_root: bool) -> list[str]:
    return chromium_args(
        Path("/usr/bin/chromium"), PROFILE, width=640, height=360,
        begin_frame_control=False, extra_args=(), as_root=as_root,
    )


def test_web_security_stays_on() -> None:
    for args in (_args(True), _args(False)):
        assert not any("disable-web-security" in a for a in args)
        assert not any("allow-file-access-from-files" in a for a in args)
        assert not any(a.startswith("--remote-allow-origins") for a in args)


def test_devtools_listens_on_loopback_only() -> None:
    args = _args(False)
    assert "--remote-debugging-address=127.0.0.1" in args
    assert "--remote-debugging-port=0" in args


def test_sandbox_is_off_only_as_root() -> None:
    assert "--no-sandbox" in _args(True)
    assert "--no-sandbox" not in _args(False)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if int(port_hex, 16) == port and state == "0A":  # LISTEN
                found.add(address)
    return found


@pytest.mark.browser
async def test_devtools_endpoint_is_loopback_and_refuses_the_page(tmp_path: Path) -> None:
    async with launch_browser(find_browser(), width=320, height=180) as browser:
        port = int((browser.profile_dir / "DevToolsActivePort").read_text().split()[0])
        addresses = _listening_addresses(port)
        # 0100007F is 127.0.0.1; the IPv6 loopback is all zeros but the last 1.
        assert addresses, "the DevTools port is not listening"
        assert addresses <= {"0100007F", "00000000000000000000000001000000"}, addresses
        endpoint = "ws://127.0.0.1:{}{}".format(
            port, (browser.profile_dir / "DevToolsActivePort").read_text().split()[1]
        )
        async with serve_directory(COMPOSITIONS) as server:
            config = PageConfig(
                url=server.url_for("devtools_probe.html"), width=320, height=180,
                fps=Fraction(30), props={"endpoint": endpoint}, timeout=10,
            )
            async with open_page(browser, config) as page:
                await page.seek(0)
                colour = await page.evaluate(
                    "getComputedStyle(document.body).backgroundColor", await_promise=False
                )
    # Even a page that knows the endpoint cannot drive the browser: Chromium refuses
    # websocket connections from web origins to DevTools.
    assert colour == "rgb(0, 255, 0)"
    assert os.environ.get("HELIOS_RENDER_OWNER") is None  # the mark is for children only
