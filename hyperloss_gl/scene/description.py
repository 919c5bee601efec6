"""The scene description: what the video shows, loaded from TOML and validated.

``load_scene`` reads a file (the shipped default when no path is given), checks
every key and returns an immutable :class:`Scene`. All problems of a file are
reported together in one :class:`~hyperloss_gl.errors.InputFileError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from hyperloss_gl import resources
from hyperloss_gl.scene.schema import (
    REQUIRED, Key, check_table, hex_color, in_range, parse_color, raise_if_problems, read_toml,
    unknown_key_problem,
)

STAGES = ("tick", "tokens", "forward", "gibberish", "partial", "aligned", "backprop", "tracer")
"""Stages of one epoch in the order they run."""

MAX_EXAMPLES = 200
MAX_REGIONS = 50
MAX_VECTORS_PER_REGION = 100_000
MAX_VECTORS = 200_000
MAX_DURATION_S = 3600.0
MAX_FPS = 240
MAX_SIZE = 7680
MAX_TEXT = 200

TOKEN_PATTERN = re.compile(r"[\w'’-]+|[^\w\s]")

_VIDEO_KEYS = {
    "width": Key(int, 1080, in_range(16, MAX_SIZE)),
    "height": Key(int, 1920, in_range(16, MAX_SIZE)),
    "fps": Key(int, 60, in_range(1, MAX_FPS)),
}
_TIMING_DEFAULTS = {"intro": 1.5, "tick": 0.25, "tokens": 0.45, "forward": 0.4,
                    "gibberish": 0.35, "partial": 0.35, "aligned": 0.35, "backprop": 0.6,
                    "tracer": 0.45, "outro": 2.0}
_TIMING_KEYS = {name: Key(float, value, in_range(0.01, 600.0))
                for name, value in _TIMING_DEFAULTS.items()}


def _text(value: str) -> str | None:
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters"
    return None


def _visible_text(value: str) -> str | None:
    """Check a text that an example cannot do without: its input or its output."""
    if not value.strip():
        return "must contain visible characters"
    return _text(value)


_REGION_KEYS = {
    "name": Key(str, REQUIRED, lambda v: None if v.strip() else "must not be empty"),
    "color": Key(str, REQUIRED, hex_color),
    "vectors": Key(int, 35, in_range(0, MAX_VECTORS_PER_REGION)),
    "position": Key(list, None),
}
_EXAMPLE_KEYS = {
    "input": Key(str, REQUIRED, _visible_text),
    "region": Key(str, REQUIRED),
    "output": Key(str, REQUIRED, _visible_text),
    "tokens": Key(list, None),
}
_LOSS_KEYS = {
    "values": Key(list, REQUIRED),
    "steps_per_epoch": Key(int, 3, in_range(1, 100)),
    "axis_max": Key(float, None, in_range(1e-6, 1e12)),
}
_TOP_KEYS = ("title", "seed", "video", "timing", "loss", "regions", "examples")


@dataclass(frozen=True)
class Region:
    """A labelled group of weight vectors in the cloud."""

    name: str
    color: tuple[float, float, float]
    """Linear-light RGB."""
    vectors: int
    position: tuple[float, float]
    """Centre in cloud units; the cloud spans about -1.6..1.6 by -1..1."""
    radius: float


@dataclass(frozen=True)
class Example:
    """One training example; each example is one epoch."""

    input: str
    tokens: tuple[str, ...]
    region: int
    """Index into ``Scene.regions``."""
    output: str


@dataclass(frozen=True)
class Scene:
    """A validated scene description. Times are in seconds."""

    title: str
    seed: int
    width: int
    height: int
    fps: int
    timing: dict[str, float]
    loss: tuple[float, ...]
    steps_per_epoch: int
    loss_axis_max: float
    regions: tuple[Region, ...]
    examples: tuple[Example, ...]
    source: Path

    @property
    def epochs(self) -> int:
        return len(self.examples)

    @property
    def vector_count(self) -> int:
        return sum(region.vectors for region in self.regions)

    @property
    def epoch_duration(self) -> float:
        return sum(self.timing[stage] for stage in STAGES)

    @property
    def duration(self) -> float:
        return self.timing["intro"] + self.epochs * self.epoch_duration + self.timing["outro"]

    def texts_below_title(self) -> list[str]:
        """Return the scene's texts that the video shows below the title: region names,
        inputs, chips and outputs."""
        texts = [region.name for region in self.regions]
        for example in self.examples:
            texts += [example.input, *example.tokens, example.output]
        return texts


def tokenize(text: str) -> tuple[str, ...]:
    """Split a prompt into chips: words and punctuation marks."""
    return tuple(TOKEN_PATTERN.findall(text))


SMALL_LAYOUTS = {
    1: [(0.0, 0.0)],
    2: [(-1.0, 0.0), (1.0, 0.0)],
    3: [(-1.3, 0.45), (1.3, 0.45), (0.0, -0.45)],
    4: [(-1.2, 0.55), (1.2, 0.55), (-1.2, -0.55), (1.2, -0.55)],
    5: [(-1.45, 0.6), (1.45, 0.6), (0.0, 0.0), (-1.45, -0.6), (1.45, -0.6)],
}
"""Hand-placed centres for up to five regions; the five match the default scene."""


def auto_positions(count: int) -> list[tuple[float, float]]:
    """Spread ``count`` region centres: fixed layouts up to five, then a sunflower."""
    if count in SMALL_LAYOUTS:
        return list(SMALL_LAYOUTS[count])
    golden = math.pi * (3.0 - math.sqrt(5.0))
    points = []
    for i in range(count):
        r = math.sqrt((i + 0.5) / count)
        points.append((1.45 * r * math.cos(i * golden), 0.85 * r * math.sin(i * golden)))
    return points


def _region_radius(count: int) -> float:
    return min(0.44, 1.0 / math.sqrt(count))


def _check_regions(raw: list, problems: list[str]) -> list[Region]:
    if not 1 <= len(raw) <= MAX_REGIONS:
        problems.append(f"'regions' has {len(raw)} entries; allowed are 1 to {MAX_REGIONS}")
    tables = [check_table(r, _REGION_KEYS, f"regions[{i}].", problems) for i, r in enumerate(raw)]
    auto = auto_positions(max(len(tables), 1))
    regions, seen = [], set()
    for i, table in enumerate(tables):
        name = table["name"] or f"region {i + 1}"
        if name in seen:
            problems.append(f"'regions[{i}].name' = {name!r} is invalid: another region has "
                            "this name; region names must be unique")
        seen.add(name)
        position = table["position"]
        if position is not None and not (
                len(position) == 2 and all(isinstance(p, (int, float))
                                           and not isinstance(p, bool)
                                           and math.isfinite(p) and abs(p) <= 2 for p in position)):
            problems.append(f"'regions[{i}].position' = {position!r} is invalid: use [x, y] "
                            "with numbers from -2 to 2")
            position = None
        color = parse_color(table["color"]) if table["color"] else (1.0, 1.0, 1.0)
        regions.append(Region(name, color, table["vectors"],
                              tuple(float(p) for p in (position or auto[i])),
                              _region_radius(len(tables))))
    total = sum(region.vectors for region in regions)
    if total > MAX_VECTORS:
        problems.append(f"the regions have {total} vectors in all; at most {MAX_VECTORS} "
                        "are allowed")
    return regions


def _check_examples(raw: list, region_names: list[str] | None,
                    problems: list[str]) -> list[Example]:
    """Check the examples; ``region_names`` is None when the regions are missing."""
    if not 1 <= len(raw) <= MAX_EXAMPLES:
        problems.append(f"'examples' has {len(raw)} entries; allowed are 1 to {MAX_EXAMPLES}, "
                        "one per epoch")
    examples = []
    for i, item in enumerate(raw):
        table = check_table(item, _EXAMPLE_KEYS, f"examples[{i}].", problems)
        region = table["region"]
        if region is not None and region_names is not None and region not in region_names:
            problems.append(f"'examples[{i}].region' = {region!r} is not a region; defined "
                            f"regions are: {', '.join(region_names)}")
        tokens = table["tokens"]
        if tokens is not None and not (tokens and all(isinstance(t, str) and t.strip()
                                                      for t in tokens)):
            problems.append(f"'examples[{i}].tokens' = {tokens!r} is invalid: use an array of "
                            "one or more non-empty strings")
            tokens = None
        elif tokens is not None and sum(len(t) for t in tokens) > MAX_TEXT:
            problems.append(f"'examples[{i}].tokens' has {sum(len(t) for t in tokens)} "
                            f"characters in all; at most {MAX_TEXT} are allowed, as for the input")
            tokens = None
        text = table["input"] or ""
        examples.append(Example(
            input=text,
            tokens=tuple(tokens) if tokens is not None else tokenize(text),
            region=region_names.index(region) if region in (region_names or []) else 0,
            output=table["output"] or ""))
    return examples


def _check_loss(table: dict, epochs: int, problems: list[str]) -> tuple[list[float], float]:
    values = table["values"] or []
    steps = table["steps_per_epoch"]
    clean = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"'loss.values[{i}]' must be a number, got {value!r}")
            clean.append(0.0)
        elif not math.isfinite(value) or value < 0:
            problems.append(f"'loss.values[{i}]' = {value!r} is invalid: losses must be finite "
                            "and not negative")
            clean.append(0.0)
        else:
            clean.append(float(value))
    expected = epochs * steps + 1
    if table["values"] is not None and epochs and len(values) != expected:
        problems.append(f"'loss.values' has {len(values)} values; {epochs} examples with "
                        f"steps_per_epoch = {steps} need {expected} (step 0 to step "
                        f"{expected - 1})")
    axis_max = table["axis_max"] or (max(clean) * 1.05 if clean and max(clean) > 0 else 1.0)
    return clean, axis_max


def load_scene(path: Path | None = None) -> Scene:
    """Read and validate a scene file; ``None`` loads the shipped default scene."""
    path = Path(path) if path is not None else resources.DEFAULT_SCENE
    data = read_toml(path, "scene file")
    problems: list[str] = []
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(unknown_key_problem("", key, list(_TOP_KEYS)))
    top = check_table({k: v for k, v in data.items() if k in _TOP_KEYS}, {
        "title": Key(str, "Training a Language Model", _text),
        "seed": Key(int, 0, in_range(0, 2**32 - 1)),
        "video": Key(dict, {}), "timing": Key(dict, {}), "loss": Key(dict, REQUIRED),
        "regions": Key(list, REQUIRED), "examples": Key(list, REQUIRED),
    }, "", problems)
    video = check_table(top["video"], _VIDEO_KEYS, "video.", problems)
    for axis in ("width", "height"):
        if video[axis] % 2:
            problems.append(f"'video.{axis}' = {video[axis]} is invalid: H.264 in yuv420p needs "
                            f"an even size; use {video[axis] - 1} or {video[axis] + 1}")
    timing = check_table(top["timing"], _TIMING_KEYS, "timing.", problems)

    # A missing or mistyped table or array is one problem, and checks of its contents
    # would only repeat it.
    regions = _check_regions(top["regions"], problems) if top["regions"] is not None else []
    region_names = [r.name for r in regions] if top["regions"] is not None else None
    examples = (_check_examples(top["examples"], region_names, problems)
                if top["examples"] is not None else [])
    loss_table = check_table(top["loss"] if top["loss"] is not None else {}, _LOSS_KEYS,
                             "loss.", problems if top["loss"] is not None else [])
    loss, axis_max = _check_loss(loss_table, len(examples), problems)

    scene = Scene(top["title"], top["seed"], video["width"], video["height"], video["fps"],
                  timing, tuple(loss), loss_table["steps_per_epoch"], axis_max, tuple(regions),
                  tuple(examples), path)
    if scene.duration > MAX_DURATION_S:
        problems.append(f"the scene lasts {scene.duration:.0f} s; at most {MAX_DURATION_S:.0f} s "
                        "are allowed. Use fewer examples or shorter [timing] values")
    raise_if_problems(path, problems)
    return scene
