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

    ``severity`` in 0..1 is the normalised loss. The gibberish stage garbles a
    share of the letters that grows with the loss. The partial stage keeps only
    the garbled letters of some words, so it is always a subset of the
    gibberish, and at least one word reads right. Spaces are never garbled, so
    the answer keeps its shape while it resolves.
    """
    rng = np.random.default_rng([seed, epoch, 0x6A2B])
    letters = np.flatnonzero([not ch.isspace() for ch in text])
    gibberish = np.zeros(len(text), bool)
    count = int(round((0.5 + 0.5 * severity) * len(letters)))
    gibberish[rng.permutation(letters)[:count]] = True
    if stage == "gibberish":
        return gibberish
    if stage != "partial":
        return np.zeros(len(text), bool)
    spans = _word_spans(text)
    wrong = int(round((0.25 + 0.45 * severity) * len(spans)))
    wrong = min(max(wrong, 1), max(len(spans) - 1, 1))
    words = np.zeros(len(text), bool)
    for index in rng.permutation(len(spans))[:wrong]:
        start, end = spans[index]
        words[start:end] = True
    partial = gibberish & words
    if not partial.any() and words.any():
        partial = words.copy()
    return partial


def garble(text: str, mask: np.ndarray, seed: int, epoch: int, t: float) -> str:
    """Replace the masked characters of ``text`` with random ones for the time bucket of ``t``."""
    bucket = int(t * FLICKER_HZ)
    rng = np.random.default_rng([seed, epoch, bucket, 0x9E37])
    return "".join(_random_char(rng, ch) if hit else ch for ch, hit in zip(text, mask))
