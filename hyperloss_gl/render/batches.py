"""Turn a frame state into instance arrays, one array per shader program.

Nothing here touches OpenGL: the builder places every shape, line segment and
glyph in design pixels and hands NumPy arrays to the renderer, which uploads
each array and draws it with one instanced call. Colours are premultiplied
linear RGB; values above 1 glow through the bloom pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hyperloss_gl.look import Look
from hyperloss_gl.render.glyphs import GlyphAtlas
from hyperloss_gl.scene import easing, layout
from hyperloss_gl.scene.description import Scene
from hyperloss_gl.scene.state import FrameState

SHAPE_FLOATS = 20   # rect 4, fill 4, stroke 4, shape 4 (+ 4 spare for alignment)
LINE_FLOATS = 18    # segment 4, neighbours 4, colour0 4, colour1 4, width 2
GLYPH_FLOATS = 14   # rect 4, uv 4, colour 4, style 2
CHIP_HEIGHT = 58.0
CHIP_PADDING = 18.0
CHIP_GAP = 12.0
CHIP_ROW_GAP = 10.0
LABEL_CLEARANCE = 8.0
"""Minimum gap between the chips and a region label below them, in design pixels."""
MIN_CHIP_SHRINK = 0.7
"""Smallest chip scale before a third row is used: 22-pixel text, still readable."""
WAVE_SEGMENTS = 120


def chip_rows(widths: list[float], available: float) -> tuple[float, list[tuple[float, int]]]:
    """Place chips left to right in up to three rows, shrinking them as little as needed.

    Returns the shrink factor and, per chip, its x offset from the row's start
    and its row number. One row at full size is preferred, then two rows, then
    three, each down to ``MIN_CHIP_SHRINK``; past that three rows shrink further.
    """
    for rows in (1, 2, 3):
        shrink = 1.0
        while shrink >= MIN_CHIP_SHRINK - 1e-9 or (rows == 3 and shrink > 0.05):
            places, widest = _wrap_chips(widths, shrink, available)
            if places[-1][1] < rows and widest <= available:
                return shrink, places
            shrink -= 0.05
    return shrink, places


def _wrap_chips(widths: list[float], shrink: float, available: float):
    """Return each chip's (x, row) at one scale, and the widest row's width."""
    places, x, line, widest = [], 0.0, 0, 0.0
    for width in widths:
        w = width * shrink
        if x > 0.0 and x + w > available:
            x, line = 0.0, line + 1
        places.append((x, line))
        widest = max(widest, x + w)
        x += w + CHIP_GAP * shrink
    return places, widest


def rgba(rgb, alpha: float = 1.0, gain: float = 1.0) -> tuple[float, float, float, float]:
    """Return premultiplied RGBA from linear RGB, an opacity and a brightness gain."""
    return (rgb[0] * gain * alpha, rgb[1] * gain * alpha, rgb[2] * gain * alpha, alpha)


def mix(a, b, f: float):
    """Blend two RGB tuples linearly."""
    return tuple(x + (y - x) * f for x, y in zip(a, b))


def nice_ticks(limit: float, target: int = 5) -> list[float]:
    """Return round tick values from 0 to ``limit`` inclusive, about ``target`` of them."""
    raw = limit / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    count = int(math.floor(limit / step + 1e-9))
    return [i * step for i in range(count + 1)]


def format_tick(value: float) -> str:
    """Format a tick label without trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass
class Batches:
    """Rows collected for one frame, split into passes by draw order."""

    shapes_back: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    shapes_front: list = field(default_factory=list)
    glyphs: dict = field(default_factory=dict)
    """Glyph rows per font weight."""
    text_boxes: list = field(default_factory=list)
    """(text, x0, y0, x1, y1) ink bounds in design pixels of each visible text line."""
    chip_boxes: list = field(default_factory=list)
    """(text, x0, y0, x1, y1) bounds in design pixels of each visible token chip."""

    def arrays(self) -> dict[str, np.ndarray]:
        """Return every row list as a float32 array."""
        out = {
            "shapes_back": np.array(self.shapes_back, np.float32).reshape(-1, SHAPE_FLOATS),
            "lines": np.array(self.lines, np.float32).reshape(-1, LINE_FLOATS),
            "shapes_front": np.array(self.shapes_front, np.float32).reshape(-1, SHAPE_FLOATS),
        }
        for weight, rows in self.glyphs.items():
            out[f"glyphs_{weight}"] = np.array(rows, np.float32).reshape(-1, GLYPH_FLOATS)
        return out


class BatchBuilder:
    """Places every element of the frame in design pixels."""

    def __init__(self, scene: Scene, look: Look, atlases: dict[str, GlyphAtlas]):
        self.scene = scene
        self.look = look
        self.atlases = atlases

    # Primitive helpers -------------------------------------------------

    @staticmethod
    def shape(rows: list, center, half, fill, stroke=(0, 0, 0, 0), radius=0.0, border=0.0,
              glow=0.0, glow_strength=0.0) -> None:
        """Add a rounded rectangle (a circle when ``radius`` >= the half size)."""
        rows.append((*center, *half, *fill, *stroke, radius, border, glow, glow_strength,
                     0.0, 0.0, 0.0, 0.0))

    @staticmethod
    def polyline(rows: list, points: np.ndarray, colors: np.ndarray, widths: np.ndarray,
                 closed: bool = False) -> None:
        """Add a polyline; ``colors`` (n, 4) and ``widths`` (n,) are given per point."""
        n = len(points)
        if n < 2:
            return
        for i in range(n - 1):
            if i > 0:
                prev = points[i - 1]
            else:
                prev = points[-2] if closed else points[i]
            if i + 2 < n:
                nxt = points[i + 2]
            else:
                nxt = points[1] if closed else points[i + 1]
            rows.append((*points[i], *points[i + 1], *prev, *nxt, *colors[i], *colors[i + 1],
                         widths[i], widths[i + 1]))

    def segment(self, rows: list, a, b, color, width: float) -> None:
        """Add one straight line with round caps."""
        self.polyline(rows, np.array([a, b]), np.array([color, color]), np.array([width, width]))

    def text(self, weight: str, text: str, size: float, x: float, y: float, color, *,
             align: str = "left", scale: float = 1.0, pivot=None, outline=(3.0, 0.55),
             char_colors=None, max_width: float | None = None) -> float:
        """Add one line of text with its baseline at ``y``; return its width.

        ``align`` is ``left``, ``center`` or ``right`` about ``x``. ``scale``
        grows the text about ``pivot`` (default: the text's centre) for pops.
        When ``max_width`` is given the text shrinks until it fits.
        """
        atlas = self.atlases[weight]
        run = atlas.layout(text, size)
        if max_width is not None and run.advance > max_width > 0:
            run = atlas.layout(text, size * max_width / run.advance)
        offset = {"left": 0.0, "center": -run.advance / 2, "right": -run.advance}[align]
        origin = np.array([x + offset, y])
        if pivot is None:
            pivot = (x + offset + run.advance / 2, y - run.size_px * 0.35)
        rows = self.glyphs_for(weight)
        if len(run.quads) and color[3] > 0.02:
            ink = (np.asarray(run.quads, np.float64)
                   + np.array([-1, -1, 1, 1]) * -run.sdf_spread_px)  # drop the SDF margin
            box = np.array([ink[:, 0].min(), ink[:, 1].min(), ink[:, 2].max(), ink[:, 3].max()])
            box = ((box.reshape(2, 2) + origin - pivot) * scale + pivot).ravel()
            self._batches.text_boxes.append((text, *box))
        for i in range(len(run.quads)):
            x0, y0, x1, y1 = run.quads[i]
            corners = np.array([[x0, y0], [x1, y1]]) + origin
            corners = (corners - pivot) * scale + pivot
            fill = color if char_colors is None else char_colors[run.char_index[i]]
            rows.append((*corners[0], *corners[1], *run.uvs[i], *fill,
                         outline[0] * scale, outline[1]))
        return run.advance * scale

    def glyphs_for(self, weight: str) -> list:
        return self._batches.glyphs.setdefault(weight, [])

    # Frame -------------------------------------------------------------

    def build(self, state: FrameState) -> Batches:
        """Return the instance rows of every element of ``state``."""
        self._batches = Batches()
        self._chips_bottom = layout.INPUT_ROW.bottom
        self._title(state)
        self._loss_panel(state)
        self._counter(state)
        self._input_row(state)
        self._regions(state)
        self._wave(state)
        self._output_row(state)
        return self._batches

    def _title(self, state: FrameState) -> None:
        look = self.look
        color = rgba(look.colors["text"], state.title_alpha, look.glow["text"])
        atlas = self.atlases["bold"]
        width = layout.SAFE.w - 20
        # One line down to 70 % of the full size. Longer titles take two smaller
        # lines, because both must fit between the safe zone's top and the loss panel.
        block = atlas.fit(self.scene.title, layout.TITLE_SIZE, width, max_lines=1,
                          min_size_px=layout.TITLE_SIZE * 0.7)
        if block.truncated:
            block = atlas.fit(self.scene.title, layout.TITLE_SIZE * 0.6, width, max_lines=2,
                              min_size_px=layout.TITLE_SIZE * 0.4)
        y = layout.TITLE_BASELINE - (len(block.lines) - 1) * block.size_px * 1.15
        for line in block.lines:
            self.text("bold", line.text, block.size_px,
                      layout.CONTENT_CENTER_X, y, color, align="center")
            y += block.size_px * 1.15

    def _loss_panel(self, state: FrameState) -> None:
        look, loss, plot = self.look, state.loss, layout.LOSS_PLOT
        batches = self._batches
        grow = loss.axes_progress
        card = layout.Rect(plot.x - 110, plot.y - 62, plot.w + 150, plot.h + 150)
        self.shape(batches.shapes_back, card.center, (card.w / 2, card.h / 2),
                   rgba(look.colors["chip_fill"], 0.55 * grow),
                   rgba(look.colors["chip_border"], 0.6 * grow), radius=28.0, border=2.0)
        axes = rgba(look.colors["axes"], grow)
        width = look.sizes["axis_width"] / 2
        origin = (plot.x, plot.bottom)
        self.segment(batches.lines, origin, (plot.x + plot.w * grow, plot.bottom), axes, width)
        self.segment(batches.lines, origin, (plot.x, plot.bottom - plot.h * grow), axes, width)
        steps = len(self.scene.loss) - 1
        muted = rgba(look.colors["muted"], grow)
        for tick in nice_ticks(steps, 3):
            x, _ = layout.loss_point(tick, 0.0, steps, self.scene.loss_axis_max)
            self.segment(batches.lines, (x, plot.bottom), (x, plot.bottom + 10), axes, width)
            self.text("semibold", format_tick(tick), layout.TICK_SIZE, x, plot.bottom + 40, muted,
                      align="center")
        for tick in nice_ticks(self.scene.loss_axis_max, 5):
            _, y = layout.loss_point(0, tick, steps, self.scene.loss_axis_max)
            if tick > 0:
                grid = rgba(look.colors["axes"], 0.35 * grow)
                self.segment(batches.lines, (plot.x, y), (plot.right, y), grid, width * 0.6)
            self.text("semibold", format_tick(tick), layout.TICK_SIZE, plot.x - 18, y + 9, muted,
                      align="right")
        self.text("semibold", "step", layout.TICK_SIZE, plot.x + plot.w / 2, plot.bottom + 76,
                  muted,
                  align="center")
        self.text("semibold", "loss", layout.TICK_SIZE, plot.x - 18, plot.y - 26, muted,
                  align="right")
        self._curve(state)

    def _curve(self, state: FrameState) -> None:
        look, loss = self.look, state.loss
        batches = self._batches
        if loss.axes_progress < 1.0:
            return
        n = len(loss.curve)
        curve_color = rgba(look.colors["curve"], 1.0, look.glow["curve"])
        self.polyline(batches.lines, loss.curve, np.tile(curve_color, (n, 1)),
                      np.full(n, look.sizes["curve_width"] / 2))
        tracer = look.colors["tracer"]
        appear = 1.0
        if state.position.phase == "intro":
            # The dot pops onto step 0 as the intro ends.
            appear = float(easing.ease_out_back((state.position.progress - 0.75) / 0.25))
            if appear <= 0.0:
                return
        trail_colors = np.array([rgba(tracer, a * 0.8, 2.5) for a in loss.trail_alpha])
        widths = look.sizes["tracer_radius"] * (0.25 + 0.55 * loss.trail_alpha)
        self.polyline(batches.lines, loss.trail, trail_colors, widths)
        radius = look.sizes["tracer_radius"] * (1.0 + 0.25 * loss.moving) * appear
        core = rgba(tracer, 1.0, look.glow["tracer"] * (1.0 + 0.5 * loss.moving))
        self.shape(batches.shapes_front, loss.tracer, (radius, radius), core, radius=radius,
                   stroke=rgba(tracer, 1.0, 1.5), glow=radius * 1.6, glow_strength=0.6)
        if appear < 1.0:
            return
        label = f"{loss.value:.2f}"
        x, y = loss.tracer
        if x + radius + 90 < layout.LOSS_PLOT.right:
            self.text("bold", label, 30.0, x + radius + 12, y - radius - 4,
                      rgba(tracer, 1.0, 1.3))
        else:
            self.text("bold", label, 30.0, x, y - radius - 16, rgba(tracer, 1.0, 1.3),
                      align="center")
        if state.outro > 0:
            badge = rgba(tracer, float(easing.smoothstep(state.outro / 0.25)), 1.4)
            self.text("bold", f"final loss {loss.value:.2f}", 36.0, layout.LOSS_PLOT.right,
                      layout.LOSS_PLOT.y + 20, badge, align="right",
                      scale=float(easing.ease_out_back(state.outro / 0.2)))

    def _counter(self, state: FrameState) -> None:
        look = self.look
        if state.counter_alpha <= 0:
            return
        text = state.counter_text
        split = text.index(" ") if " " in text else 0
        colors = [rgba(look.colors["muted"] if i < split else look.colors["text"],
                       state.counter_alpha, 1.0 + 1.5 * state.counter_pop)
                  for i in range(len(text))]
        self.text("bold", text, layout.COUNTER_SIZE, layout.CONTENT_CENTER_X,
                  layout.COUNTER_BASELINE, colors[-1], align="center",
                  scale=1.0 + 0.18 * state.counter_pop, char_colors=colors)

    def _input_row(self, state: FrameState) -> None:
        look, row = self.look, layout.INPUT_ROW
        if state.position.phase == "intro":
            return
        baseline = row.y + row.h / 2 + 11
        label_w = self.text("semibold", "Input:", layout.ROW_LABEL_SIZE, row.x + 6, baseline,
                            rgba(look.colors["muted"]))
        chips = state.chips
        if not chips:
            return
        atlas = self.atlases["semibold"]
        x0 = row.x + 6 + label_w + 18
        size = layout.CHIP_TEXT_SIZE
        widths = [atlas.layout(chip.text, size).advance + 2 * CHIP_PADDING for chip in chips]
        shrink, places = chip_rows(widths, row.right - x0)
        region = self.scene.regions[state.chip_region].color
        border = mix(look.colors["chip_border"], region, 0.6)
        line_count = max(line for _, line in places) + 1
        pitch = (CHIP_HEIGHT + CHIP_ROW_GAP) * shrink
        top = row.y + row.h / 2 - (line_count - 1) * pitch / 2
        # Chips overshoot by up to about 10 % while they pop in.
        self._chips_bottom = top + (line_count - 1) * pitch + CHIP_HEIGHT * shrink * 0.55
        for chip, width, (x, line) in zip(chips, widths, places):
            if chip.alpha <= 0.0:
                continue
            w = width * shrink
            center = (x0 + x + w / 2, top + line * pitch)
            half = (w / 2 * chip.scale, CHIP_HEIGHT / 2 * shrink * chip.scale)
            self._batches.chip_boxes.append((chip.text, center[0] - half[0],
                                             center[1] - half[1], center[0] + half[0],
                                             center[1] + half[1]))
            self.shape(self._batches.shapes_front, center, half,
                       rgba(look.colors["chip_fill"], chip.alpha),
                       rgba(border, chip.alpha, 1.4), radius=look.sizes["chip_radius"] * shrink,
                       border=2.5, glow=10.0, glow_strength=0.25 * chip.alpha)
            self.text("semibold", chip.text, size * shrink, center[0],
                      center[1] + size * shrink * 0.36, rgba(look.colors["text"], chip.alpha),
                      align="center", scale=chip.scale, pivot=center, outline=(0.0, 0.0))

    def _regions(self, state: FrameState) -> None:
        look, cloud = self.look, state.cloud
        batches = self._batches
        for index, region in enumerate(self.scene.regions):
            x, y, r = cloud.region_screen[index]
            lit = float(cloud.activation[index])
            gain = 1.0 + (look.glow["active_boundary"] - 1.0) * lit
            ring = rgba(region.color, 0.35 + 0.65 * lit, gain)
            self.shape(batches.shapes_back, (x, y), (r, r), rgba(region.color, 0.05 + 0.1 * lit),
                       ring, radius=r, border=look.sizes["boundary_width"] * (1 + lit),
                       glow=18.0 * lit, glow_strength=0.5 * lit)
            label = rgba(mix(region.color, (1.0, 1.0, 1.0), 0.35), 0.75 + 0.25 * lit,
                         1.0 + 0.8 * lit)
            block = self.atlases["semibold"].fit(region.name, layout.LABEL_SIZE,
                                                 max(3.0 * r, 240.0), max_lines=2,
                                                 min_size_px=layout.LABEL_SIZE * 0.75)
            baseline = y - r - 10 - (len(block.lines) - 1) * block.size_px * 1.1
            # The camera's sway can lift a top region's label into the input row; it
            # stops just below the chips instead.
            baseline = max(baseline, self._chips_bottom + LABEL_CLEARANCE + block.size_px * 0.8)
            for line in block.lines:
                self.text("semibold", line.text, block.size_px, x, baseline, label,
                          align="center")
                baseline += block.size_px * 1.1

    def _wave(self, state: FrameState) -> None:
        wave = state.wave
        if wave.strength <= 0.0 or wave.radius <= 1.0:
            return
        # Only the upper half of the ring: the wave rises from the output row
        # through the cloud, and its ends fade out where they meet the row.
        angles = np.linspace(math.pi, 2.0 * math.pi, WAVE_SEGMENTS + 1)
        points = np.stack([wave.center[0] + wave.radius * np.cos(angles),
                           wave.center[1] + wave.radius * np.sin(angles)], axis=1)
        fade = np.sin(angles - math.pi) ** 0.6
        color = mix(self.look.colors["wave"], wave.color, 0.5)
        colors = np.array([rgba(color, 0.9 * wave.strength * f, 2.2) for f in fade])
        self.polyline(self._batches.lines, points, colors, 1.5 + 2.5 * fade)

    def _output_row(self, state: FrameState) -> None:
        look, row, out = self.look, layout.OUTPUT_ROW, state.output
        if state.position.phase == "intro":
            return
        baseline = row.y + 48
        label_w = self.text("semibold", "Output:", layout.ROW_LABEL_SIZE, row.x + 6, baseline,
                            rgba(look.colors["muted"]))
        if not out.text or out.alpha <= 0:
            return
        region = self.scene.regions[self.scene.examples[max(state.position.epoch, 0)].region]
        x0 = row.x + 6 + label_w + 16
        atlas = self.atlases["semibold"]
        block = atlas.fit(out.text, layout.OUTPUT_TEXT_SIZE, row.right - x0, max_lines=2)
        correct = mix(look.colors["text"], region.color, 0.5 * out.flash)
        gain = look.glow["text"] * (1.0 + 1.8 * out.flash)
        garbled = np.append(out.garbled, False)  # a trailing ellipsis maps one past the end
        y = baseline - (len(block.lines) - 1) * block.size_px * 0.6
        for line, start in zip(block.lines, block.line_starts):
            flags = garbled[np.minimum(start + np.arange(len(line.text)), len(garbled) - 1)]
            colors = [rgba(look.colors["garbled"], out.alpha) if flag
                      else rgba(correct, out.alpha, gain) for flag in flags]
            self.text("semibold", line.text, block.size_px, x0, y, rgba(correct, out.alpha),
                      char_colors=colors)
            y += block.size_px * 1.2
