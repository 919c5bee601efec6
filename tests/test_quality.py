"""Measured picture quality: size independence, temporal stability, banding after encoding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hyperloss_gl.encode import EncoderSettings, VideoWriter, ffmpeg_exe
from hyperloss_gl.look import load_look
from hyperloss_gl.record import FrameSource, RenderOptions
from hyperloss_gl.render.renderer import design_transform
from hyperloss_gl.scene import layout


def make_source(gl_context, scene, width, height, look=None):
    """Return a frame source on the session context, which the ``gl`` fixture made current."""
    return FrameSource(scene, look or load_look(), RenderOptions(width, height, 60),
                       ctx=gl_context)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(error, 1e-12)))


def test_half_size_matches_full_size_scaled(gl, gl_context, default_scene):
    t = 17.3  # epoch 5: chips, glowing region, curve and tracer all on screen
    half = make_source(gl_context, default_scene, 540, 960).still(t)[..., :3]
    full = make_source(gl_context, default_scene, 1080, 1920).still(t)[..., :3]
    reduced = full.reshape(960, 2, 540, 2, 3).astype(np.float64).mean(axis=(1, 3))
    value = psnr(reduced, half)
    assert value >= 30.0, f"PSNR {value:.1f} dB between 540x960 and 1080x1920 scaled down"


def band_pixels(width: int, height: int, top: float, bottom: float):
    """Return the rows and columns of a horizontal band given in design pixels."""
    scale, ox, oy = design_transform(width, height)
    return (slice(int(top * scale + oy), int(bottom * scale + oy)),
            slice(int(ox + 20), int(width - ox - 20)))


@pytest.mark.parametrize("top, bottom", [(0.0, layout.SAFE_TOP - 20),
                                         (layout.DESIGN_HEIGHT - 300, layout.DESIGN_HEIGHT)])
def test_still_band_is_stable_between_frames(gl, gl_context, default_scene, top, bottom):
    source = make_source(gl_context, default_scene, 540, 960)
    timeline = source.animator.timeline
    start = timeline.stage_start(4, "backprop")  # vectors jitter and the wave lights them
    rows, columns = band_pixels(540, 960, top, bottom)
    previous = source.still(start)[rows, columns, :3].astype(np.int16)
    for n in range(1, 6):
        current = source.still(start + n / 60)[rows, columns, :3].astype(np.int16)
        change = int(np.abs(current - previous).max())
        assert change <= 1, f"band {top:.0f}-{bottom:.0f} changed by {change} levels at frame {n}"
        previous = current


def smooth_residual(plane: np.ndarray) -> float:
    """Return the RMS of a 7x7-blurred plane around a smooth polynomial surface fitted to it.

    A smooth gradient leaves almost nothing; bands leave their steps.
    """
    k = 7
    c = np.cumsum(np.cumsum(np.pad(plane, ((1, 0), (1, 0))), 0), 1)
    blur = (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)
    yy, xx = np.mgrid[0:blur.shape[0], 0:blur.shape[1]]
    yy, xx = yy / blur.shape[0], xx / blur.shape[1]
    terms = np.stack([(xx ** i * yy ** j).ravel() for i in range(5) for j in range(5 - i)], 1)
    coefficients, *_ = np.linalg.lstsq(terms, blur.ravel(), rcond=None)
    return float(np.sqrt(np.mean((blur.ravel() - terms @ coefficients) ** 2)))


def encoded_luma(tmp_path, frame: np.ndarray) -> np.ndarray:
    import subprocess

    height, width = frame.shape[:2]
    out = tmp_path / "dark.mp4"
    with VideoWriter(out, width, height, 30, EncoderSettings()) as writer:
        for _ in range(3):
            writer.write(frame.tobytes())
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(out), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw[:width * height], np.uint8).reshape(height, width).astype(float)


def caption_band_banding(tmp_path, gl_context, scene, dither: bool) -> float:
    look = load_look()
    look = replace(look, tone={**look.tone, "dither": dither})
    frame = make_source(gl_context, scene, 540, 960, look).still(20.0)
    luma = encoded_luma(tmp_path, frame)
    rows, columns = band_pixels(540, 960, layout.DESIGN_HEIGHT - 300, layout.DESIGN_HEIGHT - 8)
    return smooth_residual(luma[rows, columns])


def test_encoded_dark_gradient_has_no_bands(gl, gl_context, default_scene, tmp_path):
    residual = caption_band_banding(tmp_path, gl_context, default_scene, dither=True)
    assert residual < 0.1, f"banding residual {residual:.3f} levels after encoding"


def test_gradient_bands_without_dither(gl, gl_context, default_scene, tmp_path):
    # The measure above can fail: without dithering the same gradient bands.
    residual = caption_band_banding(tmp_path, gl_context, default_scene, dither=False)
    assert residual > 0.15, f"banding residual {residual:.3f} levels without dither"
