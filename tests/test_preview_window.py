"""The real preview window under Xvfb: keys and mouse from xdotool, pixels from F12 screenshots.

The test starts its own Xvfb on a display number that Xvfb picks (``-displayfd``),
runs ``python -m hyperloss_gl`` in it, and compares the window's picture with
the recorder's frame at the same time. F12 makes the preview save its default
framebuffer, with the frame number and the image's place in PNG text chunks.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperloss_gl import hud
from hyperloss_gl.look import load_look
from hyperloss_gl.record import FrameSource, RenderOptions
from hyperloss_gl.scene import Timeline

REPO = Path(__file__).resolve().parents[1]
TITLE = "Hyperloss preview"
SCREEN = "1920x1080x24"
"""Screen of the virtual display; the preview fits a 540 x 960 window on it."""
WINDOW = (540, 960)
TIMEOUT_S = 60.0

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool")),
    reason="needs Xvfb and xdotool (Debian: apt-get install xvfb xdotool)")


@pytest.fixture
def display():
    """Start Xvfb on a free display number and return it as ``:N``."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", SCREEN,
                               "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20.0)
        assert ready, "Xvfb did not report its display number within 20 s"
        number = os.read(read_end, 64).decode().strip()
        assert number.isdigit(), f"Xvfb wrote {number!r} instead of a display number"
        yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(timeout=10)


def xdotool(display: str, *args: str) -> str:
    result = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, f"xdotool {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def find_screenshot(folder: Path, process, accept=lambda text: True,
                    timeout_s: float = TIMEOUT_S) -> Path | None:
    """Return a window screenshot whose PNG text chunks ``accept`` takes, or None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("window-*.png")):
            if accept(Image.open(path).text):
                return path
        assert process.poll() is None, "the preview exited early"
        time.sleep(0.1)
    return None


def press_until_screenshot(display: str, keys: list[str], folder: Path, process) -> Path:
    """Press idempotent ``keys`` ending in F12 until a screenshot appears; return it.

    pyglet drops key events that reach the window before the preview's loop
    first pulls events, which can take seconds on a loaded machine.
    """
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        xdotool(display, "key", "--delay", "150", *keys)
        found = find_screenshot(folder, process, timeout_s=3.0)
        if found:
            return found
    raise AssertionError(f"no window screenshot in {folder} after {TIMEOUT_S} s")


def wait_for_log(path: Path, text: str, process) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        assert process.poll() is None, f"the preview exited early:\n{path.read_text()}"
        time.sleep(0.1)
    raise AssertionError(f"the preview did not log {text!r} within {TIMEOUT_S} s")


def screenshot_frame(path: Path) -> int:
    return int(Image.open(path).text["hyperloss:frame"])


def recorder_frame(scene, look, options: RenderOptions, t: float) -> np.ndarray:
    """Return the RGB frame at ``t`` as ``hyperloss --still`` renders it."""
    source = FrameSource(scene, look, options)
    try:
        return source.still(t)[..., :3]
    finally:
        source.release()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_window_keys_mouse_and_pixels(display, tmp_path, default_scene):
    env = {**os.environ, "DISPLAY": display,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    log_path = tmp_path / "preview.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "hyperloss_gl", "--preview-scale", "0.5"],
                                   cwd=tmp_path, env=env, stdout=log_file, stderr=log_file)
    try:
        window = xdotool(display, "search", "--sync", "--onlyvisible", "--name",
                         TITLE).split()[0]
        wait_for_log(log_path, "press H for the keys", process)
        xdotool(display, "windowfocus", "--sync", window, "sleep", "0.5")
        # Pause and jump to epoch 3 until the keys arrive, then hide the HUD
        # and save the screenshot to compare.
        capture = tmp_path / "capture"
        press_until_screenshot(display, ["k", "3", "F12"], capture, process)
        xdotool(display, "key", "--delay", "150", "Tab", "F12")
        first = find_screenshot(capture, process, lambda text: text["hyperloss:hud"] == "hidden")
        assert first is not None, "no screenshot with the HUD hidden"

        # Show the HUD again, press on the timeline bar, drag, and save a
        # screenshot before the button is released.
        layout = hud.overlay_layout(WINDOW, WINDOW, 1.0)
        left, right = hud.track_span(layout.bar, layout.ui)
        y = int(layout.bar.y + layout.bar.h / 2)
        start_x, end_x = int(left + 0.2 * (right - left)), int(left + 0.7 * (right - left))
        xdotool(display, "key", "Tab")
        xdotool(display, "mousemove", "--window", window, str(start_x), str(y),
                "mousedown", "1")
        xdotool(display, "mousemove", "--window", window, str((start_x + end_x) // 2), str(y),
                "sleep", "0.2", "mousemove", "--window", window, str(end_x), str(y),
                "sleep", "0.3")
        xdotool(display, "key", "F12")
        dragged = find_screenshot(
            capture, process,
            lambda text: text["hyperloss:hud"] == "shown" and text["hyperloss:frame"] != "474")
        assert dragged is not None, "no screenshot after a drag on the timeline bar"
        xdotool(display, "mouseup", "1", "sleep", "0.2", "key", "q")
        assert process.wait(timeout=TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log_text = log_path.read_text()

    last_frame = Timeline(default_scene).frame_count(60) - 1
    frame = screenshot_frame(first)
    assert frame == 474, log_text
    expected = round(hud.fraction_at(end_x, layout.bar, layout.ui) * last_frame)
    assert screenshot_frame(dragged) == expected, log_text

    # The picture at frame 474 against the recorder's frame at that time.
    picture = np.asarray(Image.open(first).convert("RGB"))
    x, y, w, h = (int(float(v)) for v in Image.open(first).text["hyperloss:image_rect"].split(","))
    assert (x, y, w, h) == (0, 0, *WINDOW)
    shown = picture[y:y + h, x:x + w].astype(np.float64)
    t = float(Image.open(first).text["hyperloss:time"])
    look = load_look()
    full = recorder_frame(default_scene, look, RenderOptions(1080, 1920, 60), t)
    # The window shows a half-size render; average 2 x 2 blocks of the full frame to compare.
    reduced = full.astype(np.float64).reshape(h, 2, w, 2, 3).mean(axis=(1, 3))
    # An extra sRGB encoding would lift the dark background from about 8 to about 50.
    assert abs(shown.mean() - reduced.mean()) < 1.5, "mean levels differ: a double gamma?"
    assert psnr(shown, reduced) > 32.0  # 39 dB on llvmpipe
    # At the preview's own size only the dither differs, because it follows
    # gl_FragCoord and the recorder's readback flip changes that.
    same_size = recorder_frame(default_scene, look, RenderOptions(*WINDOW, 60), t)
    difference = np.abs(shown - same_size)
    assert difference.max() <= 2
    assert difference.mean() < 1.0
    assert "saved a screenshot" in log_text
