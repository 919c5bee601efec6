"""Easing curves on ``p`` in 0..1; every input is clamped so callers can pass raw progress."""

from __future__ import annotations

import numpy as np


def clamp01(p):
    """Clamp a scalar or array to 0..1."""
    return np.clip(p, 0.0, 1.0) if isinstance(p, np.ndarray) else min(max(p, 0.0), 1.0)


def smoothstep(p):
    """Hermite ease in and out, zero slope at both ends."""
    p = clamp01(p)
    return p * p * (3.0 - 2.0 * p)


def ease_out_cubic(p):
    """Fast start, gentle landing."""
    p = clamp01(p)
    return 1.0 - (1.0 - p) ** 3


def ease_in_out_cubic(p):
    """Slow start and end, for moves between two rests."""
    p = clamp01(p)
    if isinstance(p, np.ndarray):
        return np.where(p < 0.5, 4.0 * p**3, 1.0 - (-2.0 * p + 2.0) ** 3 / 2.0)
    return 4.0 * p**3 if p < 0.5 else 1.0 - (-2.0 * p + 2.0) ** 3 / 2.0


def ease_out_back(p, overshoot: float = 1.7):
    """Ease out past 1 by a small overshoot, then settle: the chip pop."""
    p = clamp01(p)
    q = p - 1.0
    return 1.0 + (overshoot + 1.0) * q**3 + overshoot * q**2


def pulse(p):
    """Rise and fall over 0..1, peaking at 0.5 (a smooth bump)."""
    p = clamp01(p)
    return np.sin(np.pi * p) ** 2 if isinstance(p, np.ndarray) else float(np.sin(np.pi * p) ** 2)
