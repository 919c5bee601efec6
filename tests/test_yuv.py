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
from hyperloss_gl.render.yuv import YuvConverter, is_software_rasterizer, resolve_readback

WIDTH, HEIGHT, FPS = 128, 224, 30
START, END = 3.0, 3.5


def random_image(width: int, height: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)


def decode_planes(path, width: int, height: int) -> np.ndarray:
    """Decode a video's stored yuv420p frames unchanged, shape (n, width * height * 3 / 2)."""
    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path),
               "-f", "rawvideo", "pipe:1"]
    data = subprocess.run(command, check=True, capture_output=True).stdout
    return np.frombuffer(data, np.uint8).reshape(-1, width * height * 3 // 2)


@pytest.mark.parametrize("width, height", [(128, 224), (130, 226)])
def test_converter_matches_reference_on_frame(gl, default_scene, width, height):
    # 130 is not a multiple of 4, so that size uses the two-byte (RG8) target.
    source = FrameSource(default_scene, load_look(), RenderOptions(width, height, FPS), ctx=gl)
    converter = YuvConverter(source.renderer)
    source.draw(10.0, flip_for_readback=True)
    expected = rgb_to_yuv420p(source.renderer.read_rgba())
    converter.convert(source_flipped=True)
    converted = converter.read()
    assert converted.shape == (width * height * 3 // 2,)
    difference = np.abs(converted.astype(int) - expected)
    assert difference.max() <= 1, f"max difference {difference.max()} levels"
    converter.release()


@pytest.mark.parametrize("flipped", [True, False])
def test_converter_matches_reference_on_noise(gl, default_scene, flipped):
    # Noise makes every 2x2 block different, so a wrong chroma block or row shows.
    source = FrameSource(default_scene, load_look(), RenderOptions(WIDTH, HEIGHT, FPS), ctx=gl)
    converter = YuvConverter(source.renderer)
    image = random_image(WIDTH, HEIGHT)
    source.renderer.output_texture.write(image.tobytes())
    converter.convert(source_flipped=flipped)
    picture = image if flipped else image[::-1]
    difference = np.abs(converter.read().astype(int) - rgb_to_yuv420p(picture))
    assert difference.max() <= 1, f"max difference {difference.max()} levels"
    assert np.count_nonzero(difference) <= difference.size // 1000
    converter.release()


def test_auto_readback_follows_renderer(gl):
    expected = "rgba" if is_software_rasterizer(gl) else "yuv"
    assert resolve_readback("auto", gl) == expected
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
