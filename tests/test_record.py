"""Recording through FFmpeg: frame count, size, format, colour tags and decoded pixels."""

from __future__ import annotations

import numpy as np
import pytest

from hyperloss_gl.encode import EncoderSettings, decode_frames, probe
from hyperloss_gl.look import load_look
from hyperloss_gl.record import FrameSource, RenderOptions, record_video

WIDTH, HEIGHT, FPS = 180, 320, 30
START, END = 3.0, 3.5


@pytest.fixture(scope="module")
def recording(tmp_path_factory, default_scene):
    out = tmp_path_factory.mktemp("record") / "range.mp4"
    options = RenderOptions(WIDTH, HEIGHT, FPS, START, END)
    summary = record_video(default_scene, load_look(), out, options,
                           EncoderSettings(preset="veryfast", crf=12), progress=False)
    return out, summary


def test_recording_has_range_frames(recording):
    out, summary = recording
    assert summary.frames == int((END - START) * FPS)
    assert probe(out)["frame_count"] == summary.frames


def test_recording_format_and_tags(recording):
    info = probe(recording[0])
    assert info["codec"] == "h264"
    assert info["profile"] == "High"
    assert info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (WIDTH, HEIGHT)
    assert info["color_range"] == "tv"
    assert info["color_space"] == "bt709"
    assert info["color_transfer"] == "bt709"
    assert info["color_primaries"] == "bt709"
    assert info["fps"] == pytest.approx(FPS)


def test_decoded_frame_matches_render(gl, recording, default_scene):
    out, _ = recording
    index = 7
    decoded = decode_frames(out, WIDTH, HEIGHT, start=index, count=1)[0]
    source = FrameSource(default_scene, load_look(), RenderOptions(WIDTH, HEIGHT, FPS),
                         ctx=gl)
    rendered = source.still(START + index / FPS)[..., :3]
    error = np.mean((decoded.astype(np.float64) - rendered) ** 2)
    psnr = 10 * np.log10(255.0 ** 2 / max(error, 1e-12))
    assert psnr >= 35.0, f"PSNR {psnr:.1f} dB between decoded and rendered frame {index}"


def test_recording_leaves_no_temporary_files(recording):
    out, _ = recording
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
