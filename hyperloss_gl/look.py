"""The look file: colours, glow and sizes, kept out of code so they can be tuned live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hyperloss_gl import resources
from hyperloss_gl.scene.schema import (
    Key, check_table, hex_color, in_range, parse_color, raise_if_problems, read_toml,
    unknown_key_problem,
)

_COLOR_KEYS = ("background", "background_glow", "text", "muted", "axes", "curve", "tracer",
               "chip_fill", "chip_border", "garbled", "wave")
# Allowed ranges; the defaults come from the shipped look file, the one place they are written.
_GLOW_RANGES = {
    "strength": (0.0, 4.0), "threshold": (0.0, 100.0), "knee": (0.001, 10.0),
    "radius": (0.0, 1.0), "tracer": (0.0, 100.0), "curve": (0.0, 100.0),
    "vectors": (0.0, 100.0), "active_boundary": (0.0, 100.0), "text": (0.0, 100.0),
}
_SIZE_RANGES = {
    "curve_width": (0.5, 60.0), "axis_width": (0.5, 30.0), "tracer_radius": (1.0, 100.0),
    "vector_radius": (0.5, 50.0), "vector_streak": (0.0, 2.0), "boundary_width": (0.5, 30.0),
    "chip_radius": (0.0, 60.0),
}
_SECTIONS = ("colors", "glow", "sizes", "tone")


@dataclass(frozen=True)
class Look:
    """Validated look parameters; colours are linear-light RGB tuples."""

    colors: dict[str, tuple[float, float, float]]
    glow: dict[str, float]
    sizes: dict[str, float]
    tone: dict[str, float | bool]
    source: Path


def _ranged_keys(ranges: dict[str, tuple[float, float]], defaults: dict) -> dict[str, Key]:
    return {name: Key(float, float(defaults[name]), in_range(low, high))
            for name, (low, high) in ranges.items()}


def load_look(path: Path | None = None) -> Look:
    """Read and validate a look file; ``None`` loads the shipped default.

    Keys left out of a user's file take the shipped defaults.
    """
    default = read_toml(resources.DEFAULT_LOOK, "look file")
    path = Path(path) if path is not None else resources.DEFAULT_LOOK
    data = read_toml(path, "look file") if path != resources.DEFAULT_LOOK else default
    problems: list[str] = []
    for key in data:
        if key not in _SECTIONS:
            problems.append(unknown_key_problem("", key, list(_SECTIONS)))
    color_keys = {name: Key(str, default["colors"][name], hex_color) for name in _COLOR_KEYS}
    colors = check_table(data.get("colors", {}), color_keys, "colors.", problems)
    glow = check_table(data.get("glow", {}), _ranged_keys(_GLOW_RANGES, default["glow"]),
                       "glow.", problems)
    sizes = check_table(data.get("sizes", {}), _ranged_keys(_SIZE_RANGES, default["sizes"]),
                        "sizes.", problems)
    tone_keys = {"exposure": Key(float, default["tone"]["exposure"], in_range(0.01, 100.0)),
                 "dither": Key(bool, default["tone"]["dither"])}
    tone = check_table(data.get("tone", {}), tone_keys, "tone.", problems)
    raise_if_problems(path, problems)
    return Look({name: parse_color(value) for name, value in colors.items()},
                glow, sizes, tone, path)
