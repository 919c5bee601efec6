"""Positions of the frame's bands, in design pixels of a 1080 x 1920 portrait frame.

The renderer maps design pixels onto the real output size with one uniform
scale, so a 540 x 960 frame is the 1080 x 1920 frame at half size. The y axis
points down. Vertical video apps cover the top, the bottom (captions) and the
right edge (buttons) with their interface; everything that must be read stays
inside ``SAFE``.
"""

from __future__ import annotations

from dataclasses import dataclass

DESIGN_WIDTH = 1080.0
DESIGN_HEIGHT = 1920.0


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in design pixels; ``y`` is the top edge."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)


SAFE_TOP = 140.0
"""Band at the top that the apps' status line and tabs cover."""
SAFE_BOTTOM = 420.0
"""Band at the bottom that captions and the sound line cover."""
SAFE_RIGHT = 140.0
"""Band at the right edge that the like, comment and share buttons cover."""
SAFE_LEFT = 60.0
SAFE = Rect(SAFE_LEFT, SAFE_TOP, DESIGN_WIDTH - SAFE_LEFT - SAFE_RIGHT,
            DESIGN_HEIGHT - SAFE_TOP - SAFE_BOTTOM)
CONTENT_CENTER_X = SAFE.x + SAFE.w / 2

TITLE_BASELINE = 222.0
TITLE_SIZE = 60.0
LOSS_PLOT = Rect(170.0, 330.0, 700.0, 290.0)
"""The loss plot's axes box: step 0 at the left edge, loss 0 at the bottom."""
COUNTER_BASELINE = 772.0
COUNTER_SIZE = 44.0
INPUT_ROW = Rect(SAFE.x, 806.0, SAFE.w, 74.0)
CLOUD = Rect(SAFE.x, 890.0, SAFE.w, 470.0)
OUTPUT_ROW = Rect(SAFE.x, 1372.0, SAFE.w, 106.0)
ROW_LABEL_SIZE = 30.0
CHIP_TEXT_SIZE = 32.0
OUTPUT_TEXT_SIZE = 40.0
LABEL_SIZE = 30.0
TICK_SIZE = 27.0
"""Axis numbers and titles: the smallest text, still about 10 CSS pixels on a phone."""


def loss_point(step: float, loss: float, steps: int, axis_max: float) -> tuple[float, float]:
    """Return the design-pixel position of a (step, loss) point of the loss plot."""
    x = LOSS_PLOT.x + LOSS_PLOT.w * step / max(steps, 1)
    y = LOSS_PLOT.bottom - LOSS_PLOT.h * min(loss / axis_max, 1.04)
    return x, y
