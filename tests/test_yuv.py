"""The yuv420p readback: the conversion shader against the NumPy reference, and recordings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hyperloss_gl.encode import EncoderSettings, decode_frames, ffmpeg_exe, rgb_to_yuv420p
from hyperloss_gl.errors import UsageError
from hyperloss_gl.look import load_look
from hyperloss_gl.record import FrameSource, RenderOptions, record_video
from hyperloss_gl.render.yuv import resolve_readback

WIDTH, HEIGHT, FPS = 128, 224, 30
START, END = 3.0, 3.5


def decode_planes(path, width: int, height: int) -> np.ndarray:
    """Decode a video's stored yuv420p frames unchanged, shape (n, width * height * 3 / 2)."""
    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path),
               "-f", "rawvideo", "pipe:1"]
    data = subprocess.run(command, check=True, capture_output=True).stdout
    return np.frombuffer(data, np.uint8).reshape(-1, width * height * 3 // 2)


def fused_planes(source: FrameSource, t: float) -> np.ndarray:
    renderer = source.renderer
    size = renderer.width * renderer.height * 3 // 2
    packed = bytearray(size)
    renderer.render_yuv(source.states(t))
    renderer.read_yuv_into(packed)
    planes = np.empty(size, np.uint8)
    renderer.unpack_yuv(np.frombuffer(packed, np.uint8), planes)
    return planes


@pytest.mark.parametrize("width, height", [(128, 224), (130, 226)])
@pytest.mark.parametrize("t", [1.0, 10.0, 20.3])
def test_fused_yuv_matches_reference(gl, default_scene, width, height, t):
    # 130 / 2 is odd, which catches a luma block reordered by the wrong stride.
    source = FrameSource(default_scene, load_look(), RenderOptions(width, height, FPS), ctx=gl)
    expected = rgb_to_yuv420p(source.still(t))
    planes = fused_planes(source, t)
    assert planes.shape == (width * height * 3 // 2,)
    difference = np.abs(planes.astype(int) - expected)
    assert difference.max() <= 1, f"max difference {difference.max()} levels"
    assert np.count_nonzero(difference) <= difference.size // 1000


def test_fused_yuv_with_motion_blur(gl, default_scene):
    options = RenderOptions(WIDTH, HEIGHT, FPS, motion_blur=3)
    source = FrameSource(default_scene, load_look(), options, ctx=gl)
    t = source.animator.timeline.stage_start(2, "tracer") + 0.15
    expected = rgb_to_yuv420p(source.still(t))
    difference = np.abs(fused_planes(source, t).astype(int) - expected)
    assert difference.max() <= 1, f"max difference {difference.max()} levels"


def test_auto_readback_is_yuv(gl):
    assert resolve_readback("auto", gl) == "yuv"
    assert resolve_readback("yuv", gl) == "yuv"
    assert resolve_readback("rgba", gl) == "rgba"


def test_invalid_readback_raises(gl):
    with pytest.raises(UsageError, match="readback"):
        resolve_readback("bgra", gl)


@pytest.fixture(scope="module")
def both_readbacks(tmp_path_factory, default_scene):
    folder = tmp_path_factory.mktemp("readback")
    options = RenderOptions(WIDTH, HEIGHT, FPS, START, END)
    lossless = EncoderSettings(preset="ultrafast", crf=0)
    paths = {}
    for readback in ("rgba", "yuv"):
        paths[readback] = folder / f"{readback}.mp4"
        record_video(default_scene, load_look(), paths[readback], options, lossless,
                     progress=False, sound=False, readback=readback)
    return paths


def test_readbacks_store_same_planes(both_readbacks):
    rgba = decode_planes(both_readbacks["rgba"], WIDTH, HEIGHT).astype(int)
    yuv = decode_planes(both_readbacks["yuv"], WIDTH, HEIGHT).astype(int)
    assert rgba.shape == yuv.shape
    assert rgba.shape[0] == int((END - START) * FPS)
    # FFmpeg converts without accurate_rnd, so its planes may be one level off the shader's.
    assert np.abs(rgba - yuv).max() <= 1


def test_readbacks_decode_to_same_picture(both_readbacks):
    rgba = decode_frames(both_readbacks["rgba"], WIDTH, HEIGHT).astype(int)
    yuv = decode_frames(both_readbacks["yuv"], WIDTH, HEIGHT).astype(int)
    difference = np.abs(rgba - yuv)
    # One level of V moves red by up to 2 * (1 - KR) * 255 / 224 = 1.8 levels.
    assert difference.max() <= 3
    assert difference.mean() < 0.5


def test_cli_rejects_invalid_readback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = subprocess.run([sys.executable, "-m", "hyperloss_gl", "--record", "out.mp4",
                             "--readback", "bgra"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "--readback" in result.stderr
    assert not (tmp_path / "out.mp4").exists()
