"""The model's answer on its way from gibberish to the aligned output.

How garbled a stage is follows the loss at the start of the epoch, so early
epochs start from worse gibberish than late ones. Random characters change
several times a second but are seeded by the scene, the epoch and the time
bucket, so the same ``t`` always shows the same text.
"""

from __future__ import annotations

import numpy as np

LOWER = "abcdefghijklmnopqrstuvwxyz"
SYMBOLS = "#%&*@$?!<>/{}~^"
FLICKER_HZ = 18.0
"""How often the garbled characters change, per second."""


def _random_char(rng: np.random.Generator, original: str) -> str:
    if rng.random() < 0.18:
        return SYMBOLS[rng.integers(len(SYMBOLS))]
    letter = LOWER[rng.integers(len(LOWER))]
    return letter.upper() if original.isupper() else letter


def _word_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    return spans


def garble_mask(text: str, stage: str, severity: float, seed: int, epoch: int) -> np.ndarray:
    """Return which characters of ``text`` are garbled in a stage (a bool per character).

    ``severity`` in 0..1 is the normalised loss. Spaces are never garbled so the
    answer keeps its shape while it resolves.
    """
    rng = np.random.default_rng([seed, epoch, 0x6A2B])
    mask = np.zeros(len(text), bool)
    if stage == "gibberish":
        mask[:] = rng.random(len(text)) < 0.62 + 0.38 * severity
    elif stage == "partial":
        spans = _word_spans(text)
        hits = rng.random(len(spans)) < 0.2 + 0.4 * severity
        if spans and not hits.any():
            hits[-1] = True
        if len(spans) > 1 and hits.all():
            hits[rng.integers(len(spans))] = False  # "partial" keeps at least one word right
        for (start, end), hit in zip(spans, hits):
            mask[start:end] = hit
    space = np.array([ch.isspace() for ch in text], bool)
    return mask & ~space


def garble(text: str, mask: np.ndarray, seed: int, epoch: int, t: float) -> str:
    """Replace the masked characters of ``text`` with random ones for the time bucket of ``t``."""
    bucket = int(t * FLICKER_HZ)
    rng = np.random.default_rng([seed, epoch, bucket, 0x9E37])
    return "".join(_random_char(rng, ch) if hit else ch for ch, hit in zip(text, mask))
