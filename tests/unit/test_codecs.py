"""The codec table and what is built from it, purely: encoder and concat arguments, defaults,
encoder fallback, image-sequence targets, option checks and the plan's digest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render import OptionsError, UsageError
from helios_render._environment import choose_encoder
from helios_render._ffmpeg.ffmpeg import (
    concat_args,
    encoder_args,
    gif_args,
    image_sequence_args,
    palette_args,
)
from helios_render._model.codecs import (
    CODECS,
    OUTPUT_MUXERS,
    Codec,
    alpha_codecs,
    codec_named,
    image_sequence_target,
)
from helios_render._model.job import UrlSource
from helios_render._model.plan import plan_render

from ..factories import make_encoder, make_env, make_options

FFMPEG = Path("/usr/bin/ffmpeg")
ENV = make_env(source=UrlSource("http://example.test/"), source_digest=None)


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_the_table_is_consistent() -> None:
    assert list(CODECS) == ["h264", "h265", "vp9", "vp8", "prores", "av1", "gif", "png"]
    for name, codec in CODECS.items():
        assert codec.name == name and codec.encoders
        assert all(suffix in OUTPUT_MUXERS for suffix in codec.suffixes)
        if codec.quality is not None:
            assert codec.quality.low <= codec.quality.default <= codec.quality.high
        if codec.speed is not None:
            assert codec.speed.default in codec.speed.names
            for encoder in codec.encoders:
                assert set(codec.speed.args[encoder]) == set(codec.speed.names)
    assert alpha_codecs() == ("vp9", "vp8", "prores", "png")
    assert CODECS["av1"].encoders == ("libsvtav1", "libaom-av1")
    assert CODECS["av1"].chunk_format == "matroska"  # FFmpeg 5.1 cannot read AV1 back from TS
    assert codec_named("hevc") is CODECS["h265"]
    assert codec_named("mpeg2") is None


@pytest.mark.parametrize(
    ("codec", "kw", "pix_fmt", "muxer", "present"),
    [
        ("h264", {}, "yuv420p", "mpegts", ["-crf", "18", "-preset", "veryfast"]),
        ("h265", {}, "yuv420p", "mpegts", ["-crf", "23", "-preset", "fast"]),
        ("vp9", {}, "yuv420p", "webm", ["-crf", "30", "-b:v", "0", "-row-mt", "1"]),
        ("vp9", {"transparent": True}, "yuva420p", "webm", ["-auto-alt-ref", "0"]),
        ("vp8", {"transparent": True}, "yuva420p", "webm", ["-auto-alt-ref", "0", "-crf", "10"]),
        ("prores", {}, "yuv422p10le", "mov", ["-profile:v", "3"]),
        ("prores", {"transparent": True, "prores_profile": "4444"}, "yuva444p10le", "mov",
         ["-profile:v", "4"]),
        ("prores", {"prores_profile": "4444xq"}, "yuv444p10le", "mov", ["-profile:v", "5"]),
        ("av1", {}, "yuv420p", "matroska", ["libsvtav1", "-crf", "35", "-preset", "8"]),
        ("av1", {"encoder": "libaom-av1", "preset": "fast"}, "yuv420p", "matroska",
         ["libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-b:v", "0"]),
    ],
)
def test_encoder_args_follow_the_table(
    codec: str, kw: dict[str, object], pix_fmt: str, muxer: str, present: list[str]
) -> None:
    args = encoder_args(FFMPEG, make_encoder(codec=codec, **kw), Path("/w/chunk"))
    vf = _after(args, "-vf")
    assert f"format={pix_fmt}," in vf
    # Colour tags on the stream and on the frames themselves (prores_ks reads only those).
    assert "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709" in vf
    assert _after(args, "-colorspace") == "bt709" and _after(args, "-color_range") == "tv"
    assert args[-3:] == ["-f", muxer, "/w/chunk"] or args[-5:-3] == ["-f", "mpegts"]
    assert all(p in args for p in present), args
    if not kw.get("transparent"):
        assert "-auto-alt-ref" not in args


@pytest.mark.parametrize("codec", ["gif", "png"])
def test_gif_and_png_chunks_are_a_stream_copy_of_the_browser_pngs(codec: str) -> None:
    args = encoder_args(FFMPEG, make_encoder(codec=codec, image_format="png"), Path("c.mkv"))
    assert args[args.index("-i") - 1] == "png"
    assert args[-5:] == ["-c:v", "copy", "-f", "matroska", "c.mkv"]
    assert "-vf" not in args


def test_finishing_steps() -> None:
    palette = palette_args(FFMPEG, Path("j.mkv"), Path("p.png"))
    assert _after(palette, "-vf") == "palettegen=stats_mode=diff"
    gif = gif_args(FFMPEG, Path("j.mkv"), Path("p.png"), Path("o.gif"))
    assert "paletteuse" in _after(gif, "-lavfi") and _after(gif, "-loop") == "0"
    assert _after(gif, "-fps_mode") == "passthrough"
    frames = image_sequence_args(FFMPEG, Path("j.mkv"), Path("/f"), "s-%05d.png", 7)
    assert _after(frames, "-c:v") == "copy" and _after(frames, "-start_number") == "7"
    assert frames[-1] == "/f/s-%05d.png"
    joined = concat_args(FFMPEG, Path("l"), Path("j.mkv"), "png", "matroska")
    assert joined[-3:-1] == ["-f", "matroska"]
    assert concat_args(FFMPEG, Path("l"), Path("o.webm"), "vp9")[-3:-1] == ["-f", "webm"]


def test_av1_falls_back_to_libaom_and_says_what_is_missing() -> None:
    av1 = CODECS["av1"]
    assert choose_encoder(av1, {"libsvtav1", "libaom-av1"}, FFMPEG) == "libsvtav1"
    assert choose_encoder(av1, {"libaom-av1", "libx264"}, FFMPEG) == "libaom-av1"
    with pytest.raises(UsageError, match=r"no libsvtav1 or libaom-av1 encoder.*doctor"):
        choose_encoder(av1, {"libx264"}, FFMPEG)


@pytest.mark.parametrize(
    ("output", "folder", "pattern"),
    [("/o/frames", "/o/frames", "%05d.png"), ("/o/frames/s-%05d.png", "/o/frames", "s-%05d.png"),
     ("/o/f/%d.png", "/o/f", "%d.png")],
)
def test_image_sequence_targets(output: str, folder: str, pattern: str) -> None:
    assert image_sequence_target(Path(output)) == (Path(folder), pattern)


@pytest.mark.parametrize("output", ["/o/a-%d-%d.png", "/o/%s.png", "/o/f-%05d.jpg",
                                    "/o/%05d/f.png", "/o/frames.png"])
def test_malformed_image_sequence_patterns_are_refused(output: str) -> None:
    with pytest.raises(ValueError):
        image_sequence_target(Path(output))


def test_defaults_come_from_the_table() -> None:
    h264 = make_options()
    assert (h264.effective_crf, h264.effective_preset, h264.effective_image_format) == (
        18, "veryfast", "jpeg")
    vp9 = make_options(codec="vp9", output="/tmp/o.webm", transparent=True)
    assert (vp9.effective_crf, vp9.effective_preset, vp9.effective_image_format) == (
        30, "good", "png")
    prores = make_options(codec="prores", output="/tmp/o.mov", transparent=True)
    assert prores.effective_prores_profile == "4444" and prores.effective_crf is None
    assert make_options(codec="prores", output="/tmp/o.mov").effective_prores_profile == "hq"
    gif = make_options(codec="gif", output="/tmp/o.gif", width=321, height=181)
    assert gif.effective_image_format == "png"  # odd sizes are fine without chroma subsampling
    png = make_options(codec="png", output="/tmp/seq/f-%05d.png")
    assert png.target_path == Path("/tmp/seq")


@given(
    codec=st.sampled_from([c for c in CODECS.values() if c.quality and c.speed]),
    data=st.data(),
)
def test_every_value_in_a_codecs_range_is_accepted_and_passed_on(
    codec: Codec, data: st.DataObject
) -> None:
    assert codec.quality is not None and codec.speed is not None
    crf = data.draw(st.integers(codec.quality.low, codec.quality.high))
    preset = data.draw(st.sampled_from(codec.speed.names))
    options = make_options(codec=codec.name, output=f"/tmp/o{codec.suffixes[0]}", crf=crf,
                           preset=preset)
    job = plan_render(options, ENV).jobs[0]
    args = encoder_args(FFMPEG, job.encoder, Path("c"))
    assert _after(args, codec.quality.flag) == str(crf)
    assert job.file_name.endswith(codec.chunk_suffix)
    for bad in (codec.quality.low - 1, codec.quality.high + 1):
        with pytest.raises(OptionsError, match=f"from {codec.quality.low} to"):
            make_options(codec=codec.name, output=f"/tmp/o{codec.suffixes[0]}", crf=bad)


@pytest.mark.parametrize(
    ("base", "change"),
    [
        ({"codec": "vp9", "output": "/tmp/o.webm"}, {"transparent": True}),
        ({"codec": "prores", "output": "/tmp/o.mov"}, {"prores_profile": "4444"}),
        ({"codec": "vp9", "output": "/tmp/o.webm"}, {"codec": "vp8"}),
        ({"codec": "av1", "output": "/tmp/o.mkv"}, {"preset": "slow"}),
        ({}, {"crf": 17}),
    ],
)
def test_codec_settings_change_the_digest(
    base: dict[str, object], change: dict[str, object]
) -> None:
    before = plan_render(make_options(**base), ENV)
    after = plan_render(make_options(**{**base, **change}), ENV)
    assert before.digest != after.digest
    assert before.chunks == after.chunks


def test_default_settings_spelled_out_keep_the_digest() -> None:
    assert (plan_render(make_options(crf=18, preset="veryfast", image_format="jpeg"), ENV).digest
            == plan_render(make_options(), ENV).digest)


def test_the_encoder_chosen_is_in_the_digest() -> None:
    options = make_options(codec="av1", output="/tmp/o.mkv")
    aom = plan_render(options, replace(ENV, video_encoder="libaom-av1"))
    assert aom.digest != plan_render(options, ENV).digest
    assert aom.jobs[0].encoder.chosen_encoder == "libaom-av1"

