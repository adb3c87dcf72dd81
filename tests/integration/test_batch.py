"""``helios-render batch`` with real Chromium and FFmpeg: one file per row showing its own row,
invalid rows reported before anything renders, browsers kept across rows, a killed batch
resumed with only what is missing, a changed row rendered again, --fail-fast."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ..conftest import COMPOSITIONS, decode_frames, our_processes, probe, wait_no_processes

pytestmark = pytest.mark.browser

CARD = COMPOSITIONS / "props_card.html"
COLOURS = [
    "#e00000", "#00b000", "#0000e0", "#e0e000", "#00e0e0", "#e000e0",
    "#804000", "#008080", "#400080", "#808000", "#c06000", "#006040",
]
SIZE = ["--width", "320", "--height", "180", "--fps", "30"]


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def close_to(pixel: tuple[int, int, int], colour: str, tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, rgb(colour), strict=True))


def events_of(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def run_batch(
    cwd: Path, *args: str, card: Path = CARD, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_render", "batch", str(card), *args, "--progress", "json"],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd,
    )


@pytest.mark.slow
def test_every_row_renders_its_own_values_on_two_browsers(tmp_path: Path) -> None:
    """12 valid rows and one invalid: the invalid row is reported with its line and prop
    before any row starts; the others render on 2 browsers in all; exit code 1."""
    rows = [{"name": f"Row{i}", "color": colour} for i, colour in enumerate(COLOURS)]
    rows.insert(5, {"name": "Bad", "color": "blue"})  # row 5: not a #rrggbb colour
    write_rows(tmp_path / "rows.csv", rows)
    done = run_batch(
        tmp_path, "rows.csv", "--output", "out/{index:02d}-{name}.mp4", *SIZE,
        "--frames", "4", "--concurrency", "2", "--image-format", "png", "--crf", "0",
    )
    assert done.returncode == 1, done.stderr
    events = events_of(done.stdout)
    kinds = [event["event"] for event in events if event["event"] != "progress"]
    # The invalid row first, before any row starts; then every valid row starts and ends.
    assert kinds[0] == "row-error" and "row-start" not in kinds[:1]
    error = events[[e["event"] for e in events].index("row-error")]
    assert error["row"] == 5 and error["invalid"] is True
    assert "row 5 (rows.csv line 7)" in error["message"] and "prop 'color'" in error["message"]
    assert "row 5 (rows.csv line 7): prop 'color'" in done.stderr
    final = events[-1]
    assert final["event"] == "done" and final["exit_code"] == 1
    assert final["rows_done"] == 12 and final["rows_invalid"] == 1
    # Two workers, each one browser, kept across the 12 renders (no crash here).
    assert final["browsers_launched"] == 2
    progress = [e["progress"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    outputs = sorted((tmp_path / "out").glob("*.mp4"))
    assert [p.name for p in outputs] == [
        f"{i:02d}-{row['name']}.mp4" for i, row in enumerate(rows) if row["name"] != "Bad"
    ]
    for output, row in zip(outputs, [r for r in rows if r["name"] != "Bad"], strict=True):
        assert probe(output)["nb_read_frames"] == "4"
        frame = decode_frames(output, [3])[0]
        assert close_to(frame.pixel(300, 90), row["color"]), (output.name, frame.pixel(300, 90))
        # The row's text is drawn (white) at the bottom left.
        text = [frame.pixel(x, y) for x in range(4, 60) for y in range(150, 176)]
        assert any(min(p) > 200 for p in text), output.name
    # The frames differ between rows by their text, not only their colour.
    first, second = (decode_frames(outputs[i], [3])[0] for i in (0, 1))
    def mask(frame: Any) -> list[bool]:
        return [min(frame.pixel(x, y)) > 200 for x in range(4, 80) for y in range(150, 176)]
    assert mask(first) != mask(second)


def test_an_invalid_row_with_fail_fast_renders_nothing(tmp_path: Path) -> None:
    write_rows(tmp_path / "rows.csv", [{"name": "A", "color": "#ff0000"}, {"name": "B",
               "color": "#12"}])
    done = run_batch(tmp_path, "rows.csv", "--output", "out/{name}.mp4", *SIZE, "--frames", "2",
                     "--fail-fast")
    assert done.returncode == 2, done.stderr
    events = events_of(done.stdout)
    assert not [e for e in events if e["event"] == "row-start"]
    assert events[-1]["event"] == "error" and "row 1 (rows.csv line 3)" in events[-1]["message"]
    assert not list((tmp_path / "out").glob("*.mp4"))


@pytest.mark.slow
def test_a_killed_batch_resumes_and_a_changed_row_renders_again(tmp_path: Path) -> None:
    # The composition, the rows and the outputs in one folder, as users keep them: the
    # outputs and the rows file are not part of any row's digest.
    card = tmp_path / "card.html"
    shutil.copy(CARD, card)
    rows = [{"name": f"R{i}", "color": COLOURS[i]} for i in range(6)]
    write_rows(tmp_path / "rows.csv", rows)
    args = ["rows.csv", "--output", "out/{index}.mp4", *SIZE, "--frames", "20",
            "--chunk-frames", "5", "--concurrency", "2"]
    command = [sys.executable, "-m", "helios_render", "batch", str(card), *args,
               "--progress", "json"]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    out = tmp_path / "out"
    # Kill it once two rows are done and another row has finished chunks in its job folder.
    deadline = time.monotonic() + 240
    half_done: dict[int, int] = {}
    while time.monotonic() < deadline and process.poll() is None:
        done_rows = {e["row"] for e in events_of("\n".join(lines)) if e["event"] == "row-done"}
        half_done = {}
        for folder in out.glob(".*.helios-job-*"):
            row = int(folder.name.split(".")[1])
            try:
                recorded = json.loads((folder / "manifest.json").read_text())["chunks"]
            except (OSError, ValueError, KeyError):
                continue
            if row not in done_rows and 0 < len(recorded) <= 2:  # of 4: far from its end
                half_done[row] = len(recorded)
        if len(done_rows) >= 2 and half_done:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=30)
    reader.join(timeout=10)
    assert process.stdout is not None
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL, "the batch ended before it could be killed"
    assert not wait_no_processes(timeout=5, owner=process.pid)
    first = events_of("\n".join(lines))
    done_first = {e["row"] for e in first if e["event"] == "row-done"}
    # What the job folders hold now (the kill may have come between the check and here, even
    # between a row's folder being made and its first manifest being written: such a folder
    # holds no chunk, and the resume must treat it so).
    kept: dict[int, int] = {}
    for folder in out.glob(".*.helios-job-*"):
        row = int(folder.name.split(".")[1])
        manifest = folder / "manifest.json"
        records = json.loads(manifest.read_text()).get("chunks", {}) if manifest.exists() else {}
        kept[row] = len(records)

    again = run_batch(tmp_path, *args, card=card)
    assert again.returncode == 0, again.stderr
    second = events_of(again.stdout)
    ends = {e["row"]: e for e in second if e["event"] == "row-done"}
    assert sorted(ends) == list(range(6))
    for row, end in ends.items():
        if row in done_first:
            assert end["skipped"] is True, end  # complete: not rendered again
        else:
            assert end["skipped"] is False
            # Only the chunks its job folder did not hold were rendered.
            assert end["frames_reused"] == 5 * kept.get(row, 0), (row, end, kept)
    assert any(end["frames_reused"] > 0 for end in ends.values() if not end["skipped"])
    started = {e["row"] for e in second if e["event"] == "row-start"}
    assert started == set(range(6)) - done_first

    # A changed row is rendered again; the others are skipped.
    rows[3]["color"] = "#ffffff"
    write_rows(tmp_path / "rows.csv", rows)
    third = events_of(run_batch(tmp_path, *args, card=card).stdout)
    ends = {e["row"]: e for e in third if e["event"] == "row-done"}
    assert [row for row, end in sorted(ends.items()) if not end["skipped"]] == [3]
    assert close_to(decode_frames(out / "3.mp4", [19])[0].pixel(300, 90), "#ffffff")
    for row in (0, 5):
        assert close_to(decode_frames(out / f"{row}.mp4", [19])[0].pixel(300, 90),
                        rows[row]["color"])


def test_fail_fast_stops_every_browser_at_the_first_failure(tmp_path: Path) -> None:
    rows: list[dict[str, str]] = [
        {"name": f"R{i}", "color": COLOURS[i], "fail": "false"} for i in range(6)
    ]
    rows[2]["fail"] = "true"  # its page throws as it loads
    write_rows(tmp_path / "rows.csv", rows)
    before = our_processes()
    process = subprocess.Popen(
        [sys.executable, "-m", "helios_render", "batch", str(CARD), "rows.csv", "--output",
         "out/{index}.mp4", *SIZE, "--frames", "60", "--chunk-frames", "10", "--concurrency",
         "2", "--fail-fast", "--progress", "json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    failed_at = None
    try:
        for line in process.stdout:
            event = json.loads(line)
            if event["event"] == "row-error":
                failed_at = event
                break
        assert failed_at is not None and failed_at["row"] == 2
        # Every browser and encoder of the batch is gone within 2 s of the first failure.
        assert not wait_no_processes(timeout=2.0, owner=process.pid)
    finally:
        if process.poll() is None and failed_at is None:
            process.kill()
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    final = events_of(rest)[-1]
    assert final["event"] == "error" and "this row asked to fail" in final["message"]
    assert our_processes() <= before
