"""The look file: colours, glow, sizes and sound levels, kept out of code to tune them live."""

from __future__ import annotations

from dataclasses import dataclass, field
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
_SOUND_RANGES = {"master": (0.0, 2.0), "music": (0.0, 2.0), "duck_db": (0.0, 40.0)}
SOUND_NAMES = ("tick", "chip", "hum", "sweep", "ping", "click", "drone", "chord")
"""Names of the sounds in the track. Each has a ``volume`` (0 to 2) and ``on`` in ``[sound]``."""
_SECTIONS = ("colors", "glow", "sizes", "tone", "sound")


@dataclass(frozen=True)
class Look:
    """Validated look parameters; colours are linear-light RGB tuples."""

    colors: dict[str, tuple[float, float, float]]
    glow: dict[str, float]
    sizes: dict[str, float]
    tone: dict[str, float | bool]
    source: Path
    sound: dict = field(default_factory=dict)
    """Gains of ``[sound]``: ``master``, ``music``, ``duck_db``, and ``{"volume", "on"}`` per
    name of ``SOUND_NAMES``."""


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
    sound = _check_sound(data.get("sound", {}), default["sound"], problems)
    raise_if_problems(path, problems)
    return Look({name: parse_color(value) for name, value in colors.items()},
                glow, sizes, tone, path, sound)


def _check_sound(table, default: dict, problems: list[str]) -> dict:
    """Validate ``[sound]``: the mix gains and one ``{volume, on}`` table per sound."""
    keys = _ranged_keys(_SOUND_RANGES, default)
    keys.update({name: Key(dict, default[name]) for name in SOUND_NAMES})
    sound = check_table(table, keys, "sound.", problems)
    for name in SOUND_NAMES:
        sound_keys = {"volume": Key(float, float(default[name]["volume"]), in_range(0.0, 2.0)),
                      "on": Key(bool, default[name]["on"])}
        sound[name] = check_table(sound[name], sound_keys, f"sound.{name}.", problems)
    return sound
