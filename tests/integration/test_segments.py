"""Consecutive MPEG-TS chunks of a worker's run share one FFmpeg (a segment file each): the
chunks are the same frames as chunks encoded alone, each file stands on its own, and the
render starts one encoder per run instead of one per chunk."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import helios_render
from helios_render._ffmpeg import ffmpeg as _ffmpeg
from helios_render._ffmpeg.ffmpeg import encoder_args, find_ffmpeg
from helios_render._model.mpegts import count_ts_frames

from ..conftest import COMPOSITIONS, decode_frames
from ..factories import make_encoder, make_lossless_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

PAGE = COMPOSITIONS / "resume.html"  # every frame differs


def _render(tmp_path: Path, name: str, codec: str, **kwargs: object) -> Path:
    suffix = ".mp4"
    output = tmp_path / f"{name}{suffix}"
    options = make_lossless_options(tmp_path, PAGE, output=output, frames=40, codec=codec,
                                    **kwargs)
    helios_render.render_sync(options)
    return output


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_shared_encoder_chunks_equal_chunks_encoded_alone(
    tmp_path: Path, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    spawn = _ffmpeg.spawn  # type: ignore[attr-defined]

    def counting_spawn(args: list[str], **kwargs: object) -> object:
        started.append(list(args))
        return spawn(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_ffmpeg, "spawn", counting_spawn)
    shared = _render(tmp_path, "shared", codec, chunk_frames=10, concurrency=1)
    encoders = [args for args in started if "image2pipe" in args]
    assert len(encoders) == 1, "one FFmpeg for the run of 4 chunks"
    assert "-segment_frames" in encoders[0] and "10,20,30" in encoders[0]
    # One chunk, one encoder: the reference the segments must equal, frame for frame.
    alone = _render(tmp_path, "alone", codec, chunk_frames=40, concurrency=1)
    frames, reference = decode_frames(shared), decode_frames(alone)
    assert len(frames) == len(reference) == 40
    if codec == "h264":  # lossless at crf 0: the very same pixels
        differing = [i for i, (a, b) in enumerate(zip(frames, reference, strict=True)) if a != b]
        assert not differing, f"frames {differing} differ"
    else:  # x265 is lossy even at crf 0: the same pictures, to its quantization
        for index, (a, b) in enumerate(zip(frames, reference, strict=True)):
            mean = sum(abs(x - y) for x, y in zip(a.rgb, b.rgb, strict=True)) / len(a.rgb)
            assert mean < 1.0, (index, mean)


def test_each_segment_file_starts_with_an_idr_and_decodes_alone(tmp_path: Path) -> None:
    ffmpeg = find_ffmpeg(None)
    for codec in ("h264", "h265"):
        settings = make_encoder(width=64, height=36, codec=codec, crf=20,
                                preset="veryfast" if codec == "h264" else "fast",
                                image_format="png")
        folder = tmp_path / codec
        folder.mkdir()
        args = encoder_args(ffmpeg, settings, folder / "chunk-%05d.ts", [7, 5, 9], 3)
        # PNG frames from FFmpeg's test source, on stdin as the browser's would be.
        images = subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=30",
             "-frames:v", "21", "-c:v", "png", "-f", "image2pipe", "-"],
            capture_output=True, check=True,
        ).stdout
        subprocess.run(args, input=images, check=True)
        files = sorted(folder.glob("chunk-*.ts"))
        assert [f.name for f in files] == ["chunk-00003.ts", "chunk-00004.ts", "chunk-00005.ts"]
        for path, frames in zip(files, [7, 5, 9], strict=True):
            assert count_ts_frames(path) == frames
            first = subprocess.run(
                ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                 "frame=pict_type,key_frame", "-of", "csv=p=0", str(path)],
                capture_output=True, text=True, check=True,
            ).stdout.split()
            assert len(first) == frames and first[0].startswith("1,I"), (path, first[:3])
