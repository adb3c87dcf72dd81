"""How long the preview takes from a key press to the new frame drawn, per composition.

For each page of the corpus, a preview is served and a Chromium (driven over our CDP client,
as a user's browser would show the page) opens it at 100 %; ``→`` is pressed ``--presses``
times, each once the frame before is drawn. The control page times each frame from the key's
handler to the composition's "drawn" answer (its seek, then one frame of the browser's own);
printed: the median and the 90th percentile per page, and for ``←`` (which loads the page
again: virtual time only runs forward) the same.

``--screenshot PATH`` also saves a PNG of the control page (the docs' picture).

Usage: python benchmarks/bench_preview.py [--width 1920] [--height 1080] [--presses 30]
       [--screenshot docs/preview.png]
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import trio

from helios_render import RenderOptions
from helios_render._chromium.browser import find_browser, launch_browser
from helios_render._chromium.cdp import CdpSession
from helios_render._preview import open_preview

ROOT = Path(__file__).resolve().parent.parent
COMPOSITIONS = ROOT / "tests" / "compositions"
CORPUS = {
    "css": "css_linear.html",
    "waapi": "waapi.html",
    "gsap": "gsap.html",
    "timers+rAF": "clocks.html",
    "rAF canvas (replays)": "raf_canvas.html",
    "video": "media.html",
}


async def evaluate(tab: CdpSession, expression: str) -> Any:
    reply = await tab.execute("Runtime.evaluate", {"expression": expression,
                                                   "returnByValue": True, "awaitPromise": True})
    return reply["result"].get("value")


async def wait_shown(tab: CdpSession, frame: int) -> None:
    with trio.fail_after(60):
        while True:
            if await evaluate(tab, "document.body && document.body.dataset.shown") == str(frame):
                return
            await trio.sleep(0.005)


async def press(tab: CdpSession, key: str, code: int) -> None:
    for kind in ("keyDown", "keyUp"):
        await tab.execute("Input.dispatchKeyEvent",
                          {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code})


def video_site(folder: Path) -> Path:
    shutil.copy(COMPOSITIONS / "media.html", folder / "media.html")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=black:s=160x90:r=30:d=2",
         "-vf", "geq=r='8*N':g='8*N':b='8*N'", "-c:v", "libvpx-vp9", "-lossless", "1",
         "-pix_fmt", "yuv444p", "-g", "1", str(folder / "clip.webm")],
        check=True,
    )
    return folder / "media.html"


async def measure(args: argparse.Namespace, work: Path) -> None:
    width, height = args.width, args.height
    viewport = {"width": width + 40, "height": height + 160}
    async with launch_browser(find_browser(), **viewport) as browser:
        if args.screenshot:
            await screenshot(browser, work, Path(args.screenshot))
        for name, page in CORPUS.items():
            source = video_site(work) if page == "media.html" else COMPOSITIONS / page
            options = RenderOptions(source=source, output=work / "out.mp4", width=width,
                                    height=height, fps=30, frames=args.presses + 60)
            async with open_preview(options, watch=False) as preview:
                tab = await browser.open_tab(begin_frame=False, **viewport)
                await tab.execute("Page.enable")
                await tab.execute("Emulation.setDeviceMetricsOverride",
                                  {**viewport, "deviceScaleFactor": 1, "mobile": False})
                await tab.execute("Page.navigate", {"url": f"{preview.url}&frame=10&zoom=100"})
                await wait_shown(tab, 10)
                await evaluate(tab, "document.getElementById('frame').focus()")
                before = len(await evaluate(tab, "heliosPreviewTimings()"))
                for frame in range(11, 11 + args.presses):
                    await press(tab, "ArrowRight", 39)
                    await wait_shown(tab, frame)
                forward = (await evaluate(tab, "heliosPreviewTimings()"))[before:]
                back: list[float] = []
                for frame in range(9 + args.presses, 9 + args.presses - 5, -1):
                    started = trio.current_time()
                    await press(tab, "ArrowLeft", 37)
                    await wait_shown(tab, frame)
                    back.append((trio.current_time() - started) * 1000)
                print(f"{name:24s} → median {statistics.median(forward):6.1f} ms  "
                      f"p90 {sorted(forward)[int(len(forward) * 0.9) - 1]:6.1f} ms   "
                      f"← (reload) median {statistics.median(back):6.1f} ms", flush=True)
                await browser.cdp.execute("Target.closeTarget",
                                          {"targetId": await target_of(tab)})


async def target_of(tab: CdpSession) -> str:
    info = await tab.execute("Target.getTargetInfo")
    return str(info["targetInfo"]["targetId"])


async def screenshot(browser: Any, work: Path, path: Path) -> None:
    """The control page of examples/hello at 1024x640, fitted, at frame 40, with a loop range
    and the props panel open."""
    size = {"width": 1024, "height": 640}
    options = RenderOptions(source=ROOT / "examples" / "hello" / "index.html",
                            output=work / "hello.mp4", fps=30, frames=90,
                            props={"title": "hello"})
    async with open_preview(options, watch=False) as preview:
        tab = await browser.open_tab(begin_frame=False, **size)
        await tab.execute("Page.enable")
        await tab.execute("Emulation.setDeviceMetricsOverride",
                          {**size, "deviceScaleFactor": 1, "mobile": False})
        await tab.execute("Page.navigate", {"url": f"{preview.url}&frame=40&in=15&out=75"})
        await wait_shown(tab, 40)
        await evaluate(tab, "document.getElementById('props-panel').open = true")
        await trio.sleep(0.5)
        shot = await tab.execute("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        print(f"wrote {path}")
        await browser.cdp.execute("Target.closeTarget", {"targetId": await target_of(tab)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as work:
        trio.run(measure, args, Path(work))


if __name__ == "__main__":
    main()
