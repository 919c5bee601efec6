"""Tests of the preview app on a headless EGL context: keys, scrubbing, pixels, stills, reload.

The app draws into an offscreen framebuffer the size of a 540 x 960 window.
The real window, under Xvfb, is tested in ``test_preview_window.py``.
"""

from __future__ import annotations

import logging
import shutil
import sys
import types
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from conftest import RecordingSound
from hyperloss_gl import hud, preview, resources
from hyperloss_gl.cli import build_parser
from hyperloss_gl.errors import HyperlossError
from hyperloss_gl.look import load_look
from hyperloss_gl.preview import PreviewApp
from hyperloss_gl.record import FrameSource, RenderOptions

WINDOW = (540, 960)
FULL = RenderOptions(1080, 1920, 60)
SETTLE = 1.0
"""Seconds between two ``update`` calls that let any file change settle and reload."""


@pytest.fixture(scope="module")
def window_target(gl_context):
    # Not released at the end: moderngl binds the last used framebuffer again
    # when it creates the next one, and a deleted one raises GL_INVALID_OPERATION.
    texture = gl_context.texture(WINDOW, 4)
    return gl_context.framebuffer([texture])


@pytest.fixture(scope="module")
def shared_app(gl_context, default_scene, tmp_path_factory):
    """One app for the tests that only move the playhead; each test resets it."""
    capture = tmp_path_factory.mktemp("capture")
    return PreviewApp(gl_context, default_scene, load_look(), FULL, capture_dir=capture)


@pytest.fixture
def app(shared_app, window_target):
    shared_app.playback.pause()
    shared_app.playback.speed = 1.0
    shared_app.playback.clear_loop()
    shared_app.playback.seek(500)
    shared_app.show_hud, shared_app.show_help, shared_app.show_guides = True, False, False
    shared_app.scrubbing = False
    shared_app.update(0.0)
    shared_app.draw(window_target, WINDOW)
    return shared_app


def read_window(fbo) -> np.ndarray:
    """Return the target's pixels as (height, width, 3), top row first."""
    data = fbo.read(components=3)
    return np.frombuffer(data, np.uint8).reshape(WINDOW[1], WINDOW[0], 3)[::-1]


# Keys and scrubbing ----------------------------------------------------------


KEYS_TO_FRAMES = [
    (["right"], 501),
    (["left"], 499),
    ([("right", True)], 560),
    (["]"], 666),
    (["["], 474),
    (["home"], 0),
    (["end"], "last"),
    (["3"], 474),
    (["0"], 1818),
]


@pytest.mark.parametrize("keys, frame", KEYS_TO_FRAMES,
                         ids=[str(case[0]) for case in KEYS_TO_FRAMES])
def test_app_key_moves_playhead(app, keys, frame):
    for key in keys:
        name, shift = key if isinstance(key, tuple) else (key, False)
        app.key(name, shift)
    expected = app.playback.last_frame if frame == "last" else frame
    assert app.playback.frame == expected


def test_app_window_keys_toggle_views(app):
    app.key("tab")
    assert not app.show_hud
    app.key("g")
    assert app.show_guides
    app.key("?")
    assert app.show_help
    app.key("h")
    assert not app.show_help
    assert app.playback.frame == 500


def test_app_quit_keys(app):
    for key in ("escape", "q"):
        app.quit_requested = False
        app.key(key)
        assert app.quit_requested
    app.quit_requested = False


def test_app_plays_in_real_time(app, window_target):
    app.update(10.0)
    app.key("space")
    app.update(10.5)
    app.draw(window_target, WINDOW)
    assert app.playback.frame == 530
    app.key("l")
    app.update(11.0)
    assert app.playback.frame == 590


def bar_point(app, fraction: float) -> tuple[float, float]:
    bar, ui = app.layout.bar, app.layout.ui
    left, right = hud.track_span(bar, ui)
    return left + (right - left) * fraction, bar.y + bar.h / 2


def test_scrub_moves_playhead_while_dragging(app, window_target):
    last = app.playback.last_frame
    app.mouse_press(*bar_point(app, 0.25))
    assert app.scrubbing
    assert app.playback.frame == round(0.25 * last)
    for fraction in (0.3, 0.5, 0.75):
        app.mouse_drag(*bar_point(app, fraction))
        app.update(1.0)
        app.draw(window_target, WINDOW)
        assert app.playback.frame == round(fraction * last)
    app.mouse_release(*bar_point(app, 0.75))
    assert not app.scrubbing
    assert app.playback.frame == round(0.75 * last)


def test_scrub_resumes_playing(app):
    app.key("space")
    app.mouse_press(*bar_point(app, 0.5))
    assert not app.playback.playing
    app.update(5.0)  # no playback advance while the mouse button is down
    assert app.playback.frame == round(0.5 * app.playback.last_frame)
    app.mouse_release(*bar_point(app, 0.5))
    assert app.playback.playing


def test_press_outside_bar_does_not_scrub(app):
    app.mouse_press(270, 100)
    assert not app.scrubbing
    assert app.playback.frame == 500


def test_hidden_hud_disables_scrubbing(app):
    app.key("tab")
    app.mouse_press(*bar_point(app, 0.5))
    assert not app.scrubbing


# Pixels ----------------------------------------------------------------------


def test_window_shows_recorders_frame(app, gl_context, default_scene, window_target):
    app.key("tab")
    app.key("3")
    app.draw(window_target, WINDOW)
    shown = read_window(window_target).astype(np.int16)
    source = FrameSource(default_scene, load_look(), RenderOptions(*WINDOW, 60), ctx=gl_context)
    recorded = source.still(app.playback.time)[..., :3].astype(np.int16)
    source.release()
    difference = np.abs(shown - recorded)
    # Only the dither differs: it follows gl_FragCoord, which the readback flip changes.
    assert difference.max() <= 2
    assert abs(shown.mean() - recorded.mean()) < 0.2


def test_paused_frame_has_recorders_motion_blur(app, gl_context, default_scene, window_target):
    timeline = app.timeline
    t = timeline.stage_start(2, "tracer") + 0.2
    app.playback.seek(round(t * 60))
    app.key("tab")
    blurred_options = replace(app.options, motion_blur=4)
    original_options = app.options
    app.options = blurred_options
    try:
        app.draw(window_target, WINDOW)
        paused = read_window(window_target).astype(np.int16)
        app.key("space")
        app.draw(window_target, WINDOW)
        playing = read_window(window_target).astype(np.int16)
    finally:
        app.options = original_options
    frames = {}
    for blur in (1, 4):
        options = RenderOptions(*WINDOW, 60, motion_blur=blur)
        source = FrameSource(default_scene, load_look(), options, ctx=gl_context)
        frames[blur] = source.still(app.playback.time)[..., :3].astype(np.int16)
    assert np.abs(frames[4] - frames[1]).max() > 8, "no motion at this time"
    assert np.abs(paused - frames[4]).max() <= 2
    assert np.abs(playing - frames[1]).max() <= 2


def test_hud_draws_only_into_window(app, window_target):
    before = app.renderer.read_rgba().copy()
    app.key("g")
    app.key("h")
    app.draw(window_target, WINDOW)
    assert np.array_equal(app.renderer.read_rgba(), before)
    shown = read_window(window_target)
    bare = np.flipud(before)[..., :3]
    assert np.abs(shown.astype(int) - bare).mean() > 5, "the overlay drew nothing"


def test_still_key_matches_still_option(app, gl_context, default_scene, tmp_path, monkeypatch):
    app.capture_dir = tmp_path
    app.key("3")
    app.key("right")
    app.key("s")
    saved = list(tmp_path.glob("still-*.png"))
    assert len(saved) == 1
    image = np.asarray(Image.open(saved[0]))
    assert image.shape == (1920, 1080, 3)
    # What ``hyperloss --still T`` writes: a FrameSource at full size on its own context.
    source = FrameSource(default_scene, load_look(), FULL)
    try:
        expected = source.still(app.playback.time)
    finally:
        source.release()
    assert np.array_equal(image, expected[..., :3])


def test_screenshot_key_writes_window(app, window_target, tmp_path):
    app.capture_dir = tmp_path
    app.key("f12")
    app.draw(window_target, WINDOW)
    saved = list(tmp_path.glob("window-*.png"))
    assert len(saved) == 1
    image = Image.open(saved[0])
    assert image.size == WINDOW
    assert image.text["hyperloss:frame"] == "500"
    assert image.text["hyperloss:image_rect"] == "0,0,540,960"


# Live reload -----------------------------------------------------------------


@pytest.fixture(scope="module")
def editable_app(tmp_path_factory, gl_context, default_scene):
    """An app on copies of the shipped shaders and look file; ``editable`` resets it."""
    folder = tmp_path_factory.mktemp("editable")
    shaders = folder / "shaders"
    shutil.copytree(resources.shader_dir(), shaders)
    look_path = folder / "look.toml"
    shutil.copy(resources.DEFAULT_LOOK, look_path)
    options = RenderOptions(1080, 1920, 60, shader_dir=shaders)
    app = PreviewApp(gl_context, default_scene, load_look(look_path), options,
                     look_path=look_path, capture_dir=folder / "capture")
    originals = {path: path.read_bytes() for path in [*shaders.iterdir(), look_path]}
    return types.SimpleNamespace(app=app, shaders=shaders, look=look_path, originals=originals)


@pytest.fixture
def editable(editable_app):
    """The editable app with its files restored, paused at frame 700 at 2x in a loop range."""
    for path, content in editable_app.originals.items():
        if path.read_bytes() != content:
            path.write_bytes(content)
    app = editable_app.app
    app.reload("test reset", forced=True)
    assert app.shader_error is None
    assert app.look_error is None
    app.render_error = None
    app._notice = None
    app.show_hud = True
    app.playback.pause()
    app.playback.seek(700)
    app.playback.speed = 2.0
    app.playback.loop_in, app.playback.loop_out = 600, 800
    # The watcher's clock must not run backwards from one test to the next.
    editable_app.now = getattr(editable_app, "now", 0.0) + 10.0
    app.update(editable_app.now)
    return editable_app


def settle(editable, target) -> None:
    """Let the watcher see the edit, settle and reload, then draw one frame."""
    for _ in range(3):
        editable.now += SETTLE
        editable.app.update(editable.now)
    editable.app.draw(target, WINDOW)


def playback_state(app):
    playback = app.playback
    return (playback.frame, playback.playing, playback.speed, playback.loop)


def test_broken_shader_keeps_drawing_and_shows_error(editable, window_target, caplog):
    app = editable.app
    app.key("tab")
    app.draw(window_target, WINDOW)
    good_window = read_window(window_target).astype(int)
    good_frame = app.renderer.read_rgba().copy()
    state = playback_state(app)
    # The composite's body lives in an included file, so the error must name it.
    common = editable.shaders / "composite_common.glsl"
    lines = common.read_text().splitlines()
    broken_line = 20
    lines.insert(broken_line - 1, "this is not GLSL;")
    common.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.INFO, logger="hyperloss_gl"):
        settle(editable, window_target)
    assert app.shader_error is not None
    assert f"composite_common.glsl:{broken_line}" in app.shader_error
    assert any("composite_common.glsl changed" in record.message for record in caplog.records)
    errors = [record.message for record in caplog.records if record.levelno == logging.ERROR]
    assert any(f"composite_common.glsl:{broken_line}" in message for message in errors)
    # The error panel shows even with the HUD hidden.
    shown = read_window(window_target).astype(int)
    assert np.abs(shown - good_window).mean() > 1, "no error panel over the frame"
    # The last good programs keep drawing: a frame drawn again after a seek
    # away and back is the frame from before the edit.
    app.key("right")
    app.draw(window_target, WINDOW)
    app.key("left")
    app.draw(window_target, WINDOW)
    assert np.array_equal(app.renderer.read_rgba(), good_frame)
    assert app.playback.frame == state[0]


def test_fixed_shader_is_used_and_keeps_playhead(editable, window_target):
    app = editable.app
    app.key("tab")
    app.draw(window_target, WINDOW)
    before = read_window(window_target).astype(int)
    state = playback_state(app)
    composite = editable.shaders / "composite.frag"
    original = composite.read_text()
    composite.write_text(original + "\nthis is not GLSL;\n")
    settle(editable, window_target)
    assert app.shader_error is not None
    # The fix: a composite that swaps the red and blue channels.
    line = "f_color = vec4(composite_srgb(v_uv, gl_FragCoord.xy), 1.0);"
    swapped = "f_color = vec4(composite_srgb(v_uv, gl_FragCoord.xy).bgr, 1.0);"
    fixed = original.replace(line, swapped)
    assert fixed != original, f"composite.frag no longer contains {line}"
    composite.write_text(fixed)
    settle(editable, window_target)
    assert app.shader_error is None
    shown = read_window(window_target).astype(int)
    assert np.array_equal(shown, before[:, :, ::-1])
    assert not np.array_equal(shown, before)
    assert playback_state(app) == state


def test_shader_dropping_uniforms_still_draws(editable, window_target):
    # The edited composite no longer uses its uniforms; the renderer skips them.
    app = editable.app
    composite = editable.shaders / "composite.frag"
    original = composite.read_text()
    fixed = original.replace("f_color = vec4(composite_srgb(v_uv, gl_FragCoord.xy), 1.0);",
                             "f_color = vec4(1.0, 0.0, 0.0, 1.0);")
    composite.write_text(fixed)
    settle(editable, window_target)
    assert app.shader_error is None
    assert app.render_error is None
    pixels = read_window(window_target)
    center = pixels[pixels.shape[0] // 2, pixels.shape[1] // 2]
    assert int(center[0]) == 255, center
    assert int(center[1]) == 0, center
    composite.write_text(original)
    settle(editable, window_target)
    assert app.render_error is None


def test_same_content_save_does_not_reload(editable, window_target, caplog):
    composite = editable.shaders / "composite.frag"
    composite.write_text(composite.read_text())
    with caplog.at_level(logging.INFO, logger="hyperloss_gl"):
        settle(editable, window_target)
    assert not any("reloading" in record.message for record in caplog.records)


def test_bad_look_keeps_values_and_names_key(editable, window_target):
    app = editable.app
    good_look = app.look
    text = editable.look.read_text()
    editable.look.write_text(text + "\n[glow]\nstrenght = 2.0\n" if "[glow]" not in text
                             else text.replace("[glow]", "[glow]\nstrenght = 2.0", 1))
    settle(editable, window_target)
    assert app.look_error is not None
    assert "strenght" in app.look_error
    assert app.look is good_look
    assert app.renderer.look is good_look


def test_look_edit_changes_frame(editable, window_target):
    app = editable.app
    app.key("tab")
    app.draw(window_target, WINDOW)
    before = read_window(window_target).astype(float)
    state = playback_state(app)
    text = editable.look.read_text()
    assert "exposure" in text
    lines = [("exposure = 0.3" if line.strip().startswith("exposure") else line)
             for line in text.splitlines()]
    editable.look.write_text("\n".join(lines) + "\n")
    settle(editable, window_target)
    assert app.look_error is None
    assert app.look.tone["exposure"] == 0.3
    after = read_window(window_target).astype(float)
    assert after.mean() < before.mean() - 5
    assert playback_state(app) == state


def test_r_key_reloads_now(editable, window_target, caplog):
    with caplog.at_level(logging.INFO, logger="hyperloss_gl"):
        editable.app.key("r")
    messages = [record.message for record in caplog.records]
    assert any("reloading shaders" in message and "R pressed" in message for message in messages)
    assert any("reloading look file" in message for message in messages)


# Sound hook ------------------------------------------------------------------


def test_load_sound_tolerates_missing_module(monkeypatch, default_scene):
    monkeypatch.setitem(sys.modules, "hyperloss_gl.audio", None)
    assert preview.load_sound(default_scene, load_look()) is None


def test_app_drives_sound(gl_context, default_scene, window_target):
    sound = RecordingSound()
    app = PreviewApp(gl_context, default_scene, load_look(), RenderOptions(1080, 1920, 60),
                     preview_scale=0.25, sound=sound)
    app.update(0.0)
    app.key("3")
    app.key("space")
    app.update(0.1)
    assert sound.calls == [("play", app.playback.time)]
    assert app.playback.frame == 474 + 6
    app.key("l")
    app.update(0.2)
    assert sound.calls[-1] == ("stop",)
    app.key("j")
    app.key("l")
    app.update(0.3)
    assert sound.calls[-1][0] == "play"
    app.close()
    assert sound.calls[-2:] == [("stop",), ("close",)]


# Command line ----------------------------------------------------------------


def test_no_display_suggests_record_and_xvfb(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(HyperlossError) as caught:
        preview.open_window("test", (1080, 1920))
    message = str(caught.value)
    assert "DISPLAY" in message
    assert "--record" in message
    assert "xvfb-run hyperloss" in message


@pytest.mark.parametrize("value", ["0.05", "1.5", "half", "nan"])
def test_preview_scale_rejects_invalid(value, capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["--preview-scale", value])
    assert caught.value.code == 2
    assert "--preview-scale" in capsys.readouterr().err


def test_preview_scale_default_and_value():
    assert build_parser().parse_args([]).preview_scale == 0.5
    assert build_parser().parse_args(["--preview-scale", "0.25"]).preview_scale == 0.25
