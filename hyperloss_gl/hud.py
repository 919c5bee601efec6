"""Overlay of the preview window over the frame: HUD, timeline bar, guides, help and errors.

The geometry and the HUD's text are plain functions of the playback state, so
tests check them without a window. The ``draw_*`` functions hand shapes and
text to an :class:`~hyperloss_gl.render.overlay.OverlayPainter`. Sizes are in
framebuffer pixels. ``ui`` is the scale of the overlay: 1.0 is a 540 pixels
wide image at a pixel ratio of 1.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hyperloss_gl.playback import KEY_HELP, Playback
from hyperloss_gl.render.overlay import OverlayPainter, PixelRect
from hyperloss_gl.scene import layout
from hyperloss_gl.scene.timeline import Timeline

TEXT = (0.93, 0.94, 0.96, 1.0)
MUTED = (0.66, 0.69, 0.75, 1.0)
WARNING = (1.0, 0.72, 0.30, 1.0)
ERROR = (1.0, 0.42, 0.40, 1.0)
PANEL = (0.02, 0.03, 0.05, 0.72)
ERROR_PANEL = (0.10, 0.01, 0.02, 0.88)
TRACK = (1.0, 1.0, 1.0, 0.22)
PLAYED = (0.45, 0.75, 1.0, 0.95)
LOOP = (1.0, 0.80, 0.35, 0.35)
EPOCH_MARK = (1.0, 1.0, 1.0, 0.55)
PLAYHEAD = (1.0, 1.0, 1.0, 1.0)
GUIDE_FILL = (1.0, 0.25, 0.35, 0.22)
GUIDE_EDGE = (1.0, 0.35, 0.45, 0.9)
LETTERBOX = (0.015, 0.015, 0.02)

TEXT_SIZE = 14.0
"""HUD text size in pixels at ``ui`` 1.0."""
BAR_HEIGHT = 34.0
"""Height of the timeline bar at ``ui`` 1.0. Mouse presses anywhere on it start scrubbing."""
BAR_MARGIN = 14.0
SLOW_RATIO = 0.95
"""Below this share of the video's frame rate, the HUD warns that the preview skips frames."""
WINDOW_SCALES = (1.0, 3 / 4, 2 / 3, 1 / 2, 1 / 3, 1 / 4, 1 / 6, 1 / 8)
"""Window sizes tried, as fractions of the video size, largest first."""
SCREEN_SHARE = 0.9
"""Share of the screen's width and height that the window may take at most."""


# Geometry --------------------------------------------------------------------


def window_size_for(video_size: tuple[int, int], screen_size: tuple[int, int]) -> tuple[int, int]:
    """Return the window size: the video size times the largest of WINDOW_SCALES that fits.

    A 1080 x 1920 video on a 1920 x 1080 screen gets 540 x 960.
    """
    video_w, video_h = video_size
    limit_w, limit_h = screen_size[0] * SCREEN_SHARE, screen_size[1] * SCREEN_SHARE
    for scale in WINDOW_SCALES:
        if video_w * scale <= limit_w and video_h * scale <= limit_h:
            return round(video_w * scale), round(video_h * scale)
    return round(video_w * WINDOW_SCALES[-1]), round(video_h * WINDOW_SCALES[-1])


def image_rect(buffer_size: tuple[int, int], video_size: tuple[int, int]) -> PixelRect:
    """Return where the frame goes in the window: as large as fits, centred, in whole pixels."""
    buffer_w, buffer_h = buffer_size
    scale = min(buffer_w / video_size[0], buffer_h / video_size[1])
    width = max(int(round(video_size[0] * scale)), 1)
    height = max(int(round(video_size[1] * scale)), 1)
    return PixelRect((buffer_w - width) // 2, (buffer_h - height) // 2, width, height)


def ui_scale(image: PixelRect, pixel_ratio: float) -> float:
    """Return the overlay's scale for an image: it grows with the image within limits."""
    return max(0.75 * pixel_ratio, min(image.w / 540.0, 1.6 * pixel_ratio))


def timeline_rect(image: PixelRect, ui: float) -> PixelRect:
    """Return the band of the timeline bar along the bottom of the image."""
    height = round(BAR_HEIGHT * ui)
    return PixelRect(image.x, image.bottom - height, image.w, height)


def track_span(bar: PixelRect, ui: float) -> tuple[float, float]:
    """Return the x of frame 0 and of the last frame on the timeline bar."""
    margin = BAR_MARGIN * ui
    return bar.x + margin, bar.right - margin


def fraction_at(x: float, bar: PixelRect, ui: float) -> float:
    """Return the fraction 0..1 of the video under ``x`` on the timeline bar."""
    left, right = track_span(bar, ui)
    return min(max((x - left) / max(right - left, 1.0), 0.0), 1.0)


def design_to_image(image: PixelRect, x: float, y: float) -> tuple[float, float]:
    """Map a point in design pixels onto the frame's image in the window."""
    scale = min(image.w / layout.DESIGN_WIDTH, image.h / layout.DESIGN_HEIGHT)
    offset_x = image.x + (image.w - layout.DESIGN_WIDTH * scale) / 2
    offset_y = image.y + (image.h - layout.DESIGN_HEIGHT * scale) / 2
    return offset_x + x * scale, offset_y + y * scale


# Text ------------------------------------------------------------------------


def format_timecode(frame: int, fps: int) -> str:
    """Return ``MM:SS:FF`` (minutes, seconds, frame within the second) of a frame."""
    seconds, frames = divmod(frame, fps)
    minutes, seconds = divmod(seconds, 60)
    width = len(str(fps - 1))
    return f"{minutes:02d}:{seconds:02d}:{frames:0{width}d}"


def format_speed(speed: float) -> str:
    """Return a speed as ``1x``, ``0.25x`` or ``-2x``."""
    return f"{speed:g}x"


def describe_position(timeline: Timeline, t: float) -> str:
    """Return the phase at ``t`` for the HUD: ``intro``, ``epoch 3 / 10: forward`` or ``outro``."""
    position = timeline.locate(t)
    if position.phase != "epoch":
        return position.phase
    return f"epoch {position.epoch + 1} / {timeline.epochs}: {position.stage}"


class FrameRateMeter:
    """Frames drawn per second over the last ``window_s`` seconds of wall-clock time."""

    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self.times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self.times.append(now)
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()

    def reset(self) -> None:
        self.times.clear()

    @property
    def span(self) -> float:
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0

    @property
    def rate(self) -> float:
        """Frames per second, or 0.0 before two frames are drawn."""
        span = self.span
        return (len(self.times) - 1) / span if span > 0 else 0.0


def is_slow(meter: FrameRateMeter, fps: int, playing: bool) -> bool:
    """Return whether the preview draws fewer frames than the video has while playing."""
    return playing and meter.span >= 0.5 * meter.window_s and meter.rate < SLOW_RATIO * fps


def status_lines(playback: Playback, timeline: Timeline, meter: FrameRateMeter,
                 preview_size: tuple[int, int], motion_blur: int = 1) -> list[tuple[str, tuple]]:
    """Return the HUD's lines as (text, colour), top line first."""
    fps = playback.fps
    lines = [
        (f"{format_timecode(playback.frame, fps)}   frame {playback.frame} / "
         f"{playback.last_frame}   {playback.time:.3f} s", TEXT),
        (describe_position(timeline, playback.time), TEXT),
        (f"{'playing' if playback.playing else 'paused'}   speed "
         f"{format_speed(playback.speed)}", TEXT),
    ]
    rate = meter.rate
    size = f"{preview_size[0]}x{preview_size[1]}"
    if is_slow(meter, fps, playback.playing):
        lines.append((f"{rate:.0f} fps at {size}: below {fps} fps, frames are skipped "
                      "(a smaller --preview-scale draws faster)", WARNING))
    else:
        lines.append((f"{rate:.0f} fps at {size}", MUTED))
    loop = playback.loop
    if loop is not None:
        lines.append((f"loop {format_timecode(loop.first, fps)} to "
                      f"{format_timecode(loop.last, fps)}", MUTED))
    if motion_blur > 1:
        lines.append((f"motion blur {motion_blur} sub-frames, paused frames only", MUTED))
    return lines


# Drawing ---------------------------------------------------------------------


def draw_panel_lines(painter: OverlayPainter, ui: float, x: float, y: float, max_width: float,
                     lines: list[tuple[str, tuple]]) -> float:
    """Draw lines of text on a dark panel with its top-left corner at (x, y).

    Returns the y of the panel's bottom edge.
    """
    size = TEXT_SIZE * ui
    pad = 8 * ui
    line_height = painter.line_height(size)
    rows = []
    for text, color in lines:
        # Wrapping shapes many candidate lines, so it runs only for a line that does not fit.
        if painter.text_width(text, size) <= max_width - 2 * pad:
            rows.append((text, size, color))
        else:
            block = painter.wrap(text, size, max_width - 2 * pad, 3)
            rows += [(run.text, block.size_px, color) for run in block.lines]
    height = len(rows) * line_height + 2 * pad
    width = max((painter.text_width(text, row_size) for text, row_size, _ in rows),
                default=0.0) + 2 * pad
    painter.rect(PixelRect(x, y, width, height), PANEL)
    baseline = y + pad + line_height * 0.78
    for text, row_size, color in rows:
        painter.text(text, x + pad, baseline, row_size, color)
        baseline += line_height
    return y + height


def draw_timeline(painter: OverlayPainter, ui: float, bar: PixelRect, playback: Playback) -> None:
    """Draw the timeline bar: track, played part, loop range, epoch marks and playhead."""
    painter.rect(bar, PANEL)
    left, right = track_span(bar, ui)
    last = max(playback.last_frame, 1)

    def x_of(frame: int) -> float:
        return left + (right - left) * frame / last

    middle = bar.y + bar.h * 0.62
    track = max(round(4 * ui), 2)
    loop = playback.loop
    if loop is not None:
        painter.rect(PixelRect(x_of(loop.first), bar.y + 3 * ui,
                               max(x_of(loop.last) - x_of(loop.first), 2.0), bar.h - 6 * ui),
                     LOOP)
    painter.rect(PixelRect(left, middle - track / 2, right - left, track), TRACK)
    painter.rect(PixelRect(left, middle - track / 2, x_of(playback.frame) - left, track), PLAYED)
    label_size = 10 * ui
    mark = max(round(1.5 * ui), 1)
    spacing = (right - left) / max(len(playback.epoch_frames), 1)
    for number, frame in enumerate(playback.epoch_frames, start=1):
        x = x_of(frame)
        painter.rect(PixelRect(x - mark / 2, middle - 7 * ui, mark, 14 * ui), EPOCH_MARK)
        # Label every epoch when there is room, else every fifth.
        if spacing >= 18 * ui or number % 5 == 0 or number == 1:
            painter.text(str(number), x + 3 * ui, middle - 6 * ui, label_size, MUTED)
    head = x_of(playback.frame)
    width = max(round(2 * ui), 2)
    painter.rect(PixelRect(head - width / 2, bar.y + 2 * ui, width, bar.h - 4 * ui), PLAYHEAD)


def draw_guides(painter: OverlayPainter, image: PixelRect, ui: float) -> None:
    """Shade the bands that TikTok, Reels and Shorts cover with their interface."""
    x0, y0 = design_to_image(image, 0.0, 0.0)
    x1, y1 = design_to_image(image, layout.DESIGN_WIDTH, layout.DESIGN_HEIGHT)
    safe_x0, safe_y0 = design_to_image(image, layout.SAFE_LEFT, layout.SAFE_TOP)
    safe_x1, safe_y1 = design_to_image(image, layout.DESIGN_WIDTH - layout.SAFE_RIGHT,
                                       layout.DESIGN_HEIGHT - layout.SAFE_BOTTOM)
    painter.rect(PixelRect(x0, y0, x1 - x0, safe_y0 - y0), GUIDE_FILL)
    painter.rect(PixelRect(x0, safe_y1, x1 - x0, y1 - safe_y1), GUIDE_FILL)
    painter.rect(PixelRect(x0, safe_y0, safe_x0 - x0, safe_y1 - safe_y0), GUIDE_FILL)
    painter.rect(PixelRect(safe_x1, safe_y0, x1 - safe_x1, safe_y1 - safe_y0), GUIDE_FILL)
    edge = max(round(1.5 * ui), 1)
    painter.frame(PixelRect(safe_x0, safe_y0, safe_x1 - safe_x0, safe_y1 - safe_y0), edge,
                  GUIDE_EDGE)
    size = 11 * ui
    painter.text("safe zone (G hides)", safe_x0 + 4 * ui, safe_y0 - 5 * ui, size, GUIDE_EDGE)


def draw_help(painter: OverlayPainter, image: PixelRect, ui: float) -> None:
    """Draw the list of keys in a panel over the middle of the image."""
    size = 13 * ui
    line_height = painter.line_height(size) * 1.05
    pad = 12 * ui
    key_width = max(painter.text_width(key, size) for key, _ in KEY_HELP) + 14 * ui
    text_width = image.w - 2 * pad - key_width - 16 * ui
    rows = [(key, painter.wrap(text, size, text_width, 2)) for key, text in KEY_HELP]
    lines = sum(len(block.lines) for _, block in rows) + 2
    height = min(lines * line_height + 2 * pad, image.h)
    panel = PixelRect(image.x + 8 * ui, image.y + max((image.h - height) / 2, 0.0),
                      image.w - 16 * ui, height)
    painter.rect(panel, (0.02, 0.03, 0.05, 0.9))
    baseline = panel.y + pad + line_height * 0.8
    painter.text("Keys (H or ? closes)", panel.x + pad, baseline, size * 1.1, TEXT)
    baseline += line_height * 2
    for key, block in rows:
        painter.text(key, panel.x + pad, baseline, size, PLAYED)
        for run in block.lines:
            painter.text(run.text, panel.x + pad + key_width, baseline, block.size_px, TEXT)
            baseline += line_height


def draw_errors(painter: OverlayPainter, image: PixelRect, ui: float,
                errors: list[tuple[str, str]], top: float) -> None:
    """Draw each (title, message) error in a red panel, the first at y ``top``."""
    size = 12.5 * ui
    pad = 10 * ui
    line_height = painter.line_height(size)
    width = image.w - 16 * ui
    y = top
    for title, message in errors:
        blocks = [painter.wrap(line, size, width - 2 * pad, 4)
                  for line in message.splitlines() if line.strip()]
        count = 1 + sum(len(block.lines) for block in blocks)
        height = min(count * line_height + 2 * pad, image.bottom - y)
        panel = PixelRect(image.x + 8 * ui, y, width, height)
        painter.rect(panel, ERROR_PANEL)
        painter.frame(panel, max(round(ui), 1), ERROR)
        baseline = y + pad + line_height * 0.78
        painter.text(title, panel.x + pad, baseline, size * 1.05, ERROR)
        for block in blocks:
            for run in block.lines:
                baseline += line_height
                if baseline > panel.bottom - pad * 0.5:
                    break
                painter.text(run.text, panel.x + pad, baseline, block.size_px, TEXT)
        y = panel.bottom + 6 * ui
        if y >= image.bottom:
            return


def draw_notice(painter: OverlayPainter, image: PixelRect, ui: float, text: str,
                bottom: float) -> None:
    """Draw a short message centred above ``bottom``."""
    size = TEXT_SIZE * ui
    pad = 7 * ui
    block = painter.wrap(text, size, image.w - 40 * ui, 2)
    line_height = painter.line_height(size)
    height = len(block.lines) * line_height + 2 * pad
    width = block.width + 2 * pad
    panel = PixelRect(image.x + (image.w - width) / 2, bottom - height, width, height)
    painter.rect(panel, PANEL)
    baseline = panel.y + pad + line_height * 0.78
    for run in block.lines:
        painter.text(run.text, image.x + image.w / 2, baseline, block.size_px, TEXT,
                     align="center")
        baseline += line_height


@dataclass(frozen=True)
class OverlayLayout:
    """Positions of the overlay's parts in one window size, in framebuffer pixels."""

    buffer_size: tuple[int, int]
    image: PixelRect
    bar: PixelRect
    ui: float


def overlay_layout(buffer_size: tuple[int, int], video_size: tuple[int, int],
                   pixel_ratio: float) -> OverlayLayout:
    """Return the image rectangle, the timeline bar and the overlay scale of a window."""
    image = image_rect(buffer_size, video_size)
    ui = ui_scale(image, pixel_ratio)
    return OverlayLayout(buffer_size, image, timeline_rect(image, ui), ui)
