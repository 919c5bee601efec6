"""Pixels of rendered frames on llvmpipe: tracer, bloom, region lighting, title text."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hyperloss_gl.look import load_look
from hyperloss_gl.record import FrameSource, RenderOptions
from hyperloss_gl.render.renderer import design_transform
from hyperloss_gl.scene import layout

WIDTH, HEIGHT = 540, 960


@pytest.fixture(scope="module")
def source(gl_context, default_scene):
    with gl_context:  # another test's recording may have left its own context current
        return FrameSource(default_scene, load_look(), RenderOptions(WIDTH, HEIGHT, 60),
                           ctx=gl_context)


def to_pixels(x: float, y: float) -> tuple[int, int]:
    scale, ox, oy = design_transform(WIDTH, HEIGHT)
    return int(round(x * scale + ox)), int(round(y * scale + oy))


def luminance(image: np.ndarray) -> np.ndarray:
    return image[..., :3].astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def disc_mean(image: np.ndarray, center, radius: float) -> float:
    yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    inside = (xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius ** 2
    return float(luminance(image)[inside].mean())


def epoch_stage_time(source, epoch: int, stage: str, progress: float = 0.5) -> float:
    timeline = source.animator.timeline
    return timeline.stage_start(epoch, stage) + progress * source.animator.scene.timing[stage]


def test_tracer_dot_is_yellow_at_loss_point(gl, source):
    t = epoch_stage_time(source, 4, "gibberish")
    state = source.animator.state_at(t)
    image = source.still(t)
    x, y = to_pixels(*state.loss.tracer)
    r, g, b = (int(c) for c in image[y, x, :3])
    assert r >= 240, f"red {r} at the tracer ({x}, {y})"
    assert g >= 200, f"green {g} at the tracer ({x}, {y})"
    assert b <= 200, f"blue {b} at the tracer: not yellow"
    assert b < g, f"blue {b} above green {g} at the tracer: not yellow"


def test_tracer_dot_is_absent_elsewhere(gl, source):
    t = epoch_stage_time(source, 4, "gibberish")
    state = source.animator.state_at(t)
    image = source.still(t)
    x, y = to_pixels(state.loss.tracer[0] + 150, state.loss.tracer[1] - 60)
    assert int(image[y, x, 0]) < 120


def test_bloom_spreads_light_around_tracer(gl, gl_context, default_scene, source):
    t = epoch_stage_time(source, 4, "gibberish")
    state = source.animator.state_at(t)
    look = load_look()
    no_glow = replace(look, glow={**look.glow, "strength": 0.0})
    plain = FrameSource(default_scene, no_glow, RenderOptions(WIDTH, HEIGHT, 60),
                        ctx=gl_context).still(t)
    glowing = source.still(t)
    radius = look.sizes["tracer_radius"] * design_transform(WIDTH, HEIGHT)[0]
    x, y = to_pixels(*state.loss.tracer)
    # A ring just outside the dot and its anti-aliased edge.
    ring = [(x + int(dx), y + int(dy)) for dx, dy in
            ((radius * 2.5, 0), (-radius * 2.5, 0), (0, radius * 2.5), (0, -radius * 2.5))]
    plain_level = np.mean([luminance(plain[py, px]) for px, py in ring])
    glow_level = np.mean([luminance(glowing[py, px]) for px, py in ring])
    assert glow_level > plain_level + 12, (plain_level, glow_level)


def region_levels(source, t: float) -> list[float]:
    """Return the mean luminance inside each region's boundary at ``t``."""
    state = source.animator.state_at(t)
    image = source.still(t)
    scale = design_transform(WIDTH, HEIGHT)[0]
    return [disc_mean(image, to_pixels(x, y), r * scale * 0.8)
            for x, y, r in state.cloud.region_screen]


def test_active_region_brightens(gl, source, default_scene):
    epoch = 3  # "Is democracy good?" trains Politics
    active = default_scene.examples[epoch].region
    before = region_levels(source, source.animator.timeline.epoch_start(epoch))
    during = region_levels(source, epoch_stage_time(source, epoch, "partial"))
    assert during[active] > before[active] + 25, (before, during)


def test_inactive_regions_stay_dim(gl, source, default_scene):
    epoch = 3
    active = default_scene.examples[epoch].region
    before = region_levels(source, source.animator.timeline.epoch_start(epoch))
    during = region_levels(source, epoch_stage_time(source, epoch, "partial"))
    for index, (old, new) in enumerate(zip(before, during)):
        if index != active:
            assert new < old + 3, f"region {index} brightened from {old:.1f} to {new:.1f}"


def test_no_region_is_lit_in_intro(gl, source):
    state = source.animator.state_at(1.0)
    assert float(state.cloud.activation.max()) == 0.0
    image = source.still(1.0)
    scale = design_transform(WIDTH, HEIGHT)[0]
    levels = [disc_mean(image, to_pixels(x, y), r * scale * 0.8)
              for x, y, r in state.cloud.region_screen]
    assert max(levels) < 1.6 * min(levels), levels


def test_title_pixels_are_bright(gl, source):
    image = luminance(source.still(2.0))
    _, top = to_pixels(0, layout.TITLE_BASELINE - layout.TITLE_SIZE * 0.7)
    _, bottom = to_pixels(0, layout.TITLE_BASELINE)
    left, _ = to_pixels(layout.SAFE.x, 0)
    right, _ = to_pixels(layout.SAFE.right, 0)
    band = image[top:bottom, left:right]
    assert (band > 200).sum() > 400, "too few bright text pixels in the title band"


def test_band_above_title_is_dark(gl, source):
    image = luminance(source.still(2.0))
    _, bottom = to_pixels(0, layout.SAFE_TOP - 40)
    assert image[:bottom].max() < 60


def test_same_time_gives_same_image(gl, source):
    first = source.still(12.34)
    source.still(30.0)
    second = source.still(12.34)
    assert np.array_equal(first, second)




def test_motion_blur_averages_subframes(gl, gl_context, default_scene):
    from hyperloss_gl.record import shutter_times

    look = load_look()
    timeline = FrameSource(default_scene, look, RenderOptions(WIDTH, HEIGHT, 60),
                           ctx=gl_context).animator.timeline
    t = timeline.stage_start(2, "tracer") + 0.15  # the tracer moves fast here
    sharp = FrameSource(default_scene, look, RenderOptions(WIDTH, HEIGHT, 60), ctx=gl_context)
    blurred = FrameSource(default_scene, look, RenderOptions(WIDTH, HEIGHT, 60, motion_blur=4),
                          ctx=gl_context)
    times = shutter_times(t, 60, 4)
    assert times[0] < t < times[-1]
    assert times[-1] - times[0] == pytest.approx(0.5 / 60 * 3 / 4)
    sharp_image = sharp.still(t).astype(np.float64)
    blurred_image = blurred.still(t).astype(np.float64)
    # The average of the four sharp sub-frames approximates the blurred frame.
    average = np.mean([sharp.still(x).astype(np.float64) for x in times], axis=0)
    assert np.abs(blurred_image - average).mean() < 1.0
    assert np.abs(blurred_image - sharp_image).max() > 20, "blur changed nothing"


@pytest.fixture(scope="module")
def dense_source(gl_context, tmp_path_factory):
    import tomllib

    from conftest import dump_toml
    from hyperloss_gl import resources
    from hyperloss_gl.scene import load_scene

    data = tomllib.loads(resources.DEFAULT_SCENE.read_text(encoding="utf-8"))
    for region in data["regions"]:
        region["vectors"] = 20_000
    path = tmp_path_factory.mktemp("dense") / "dense.toml"
    path.write_text(dump_toml(data), encoding="utf-8")
    with gl_context:
        return FrameSource(load_scene(path), load_look(), RenderOptions(WIDTH, HEIGHT, 60),
                           ctx=gl_context)


def test_dense_cloud_uses_cpu_splat(gl, dense_source):
    assert dense_source.renderer.splatter is not None
    assert dense_source.animator.scene.vector_count == 100_000


def test_dense_active_region_brightens(gl, dense_source):
    epoch = 3
    active = dense_source.animator.scene.examples[epoch].region
    before = region_levels(dense_source, dense_source.animator.timeline.epoch_start(epoch))
    during = region_levels(dense_source, epoch_stage_time(dense_source, epoch, "partial"))
    assert during[active] > before[active] + 25, (before, during)
    for index, (old, new) in enumerate(zip(before, during)):
        if index != active:
            assert new < old + 3, f"region {index} brightened from {old:.1f} to {new:.1f}"
