"""Chromium's command line, without a browser: web security on, DevTools on loopback,
the sandbox off only as root. (With a real Chromium: tests/integration/test_security.py.)"""

from __future__ import annotations

from pathlib import Path

from helios_render._chromium.browser import chromium_args

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
