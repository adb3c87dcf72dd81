"""Security promises with a real Chromium: DevTools on loopback and out of the page's reach.
(Chromium's flags: tests/unit/test_browser.py; path traversal on the file server:
tests/unit/test_server.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helios_render._chromium.browser import find_browser, launch_browser
from helios_render._chromium.page import open_page
from helios_render._source.server import serve_directory

from ..conftest import COMPOSITIONS
from ..factories import make_page


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
            config = make_page(
                url=server.url_for("devtools_probe.html"), props={"endpoint": endpoint},
                timeout=10,
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
