"""Check parsed TOML tables against a declared set of keys and collect every problem.

Both the scene file and the look file are validated here, so that a user sees
all mistakes of a file in one run: unknown keys (with the closest known key),
wrong types, missing keys and values out of range.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hyperloss_gl.errors import InputFileError, UsageError

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class Key:
    """One allowed key of a table.

    Attributes
    ----------
    kind : type or tuple of types
        Allowed Python types after TOML parsing. ``float`` also accepts ``int``.
    default : Any
        Value used when the key is absent; ``REQUIRED`` makes the key mandatory.
    check : callable, optional
        Returns an error text (without the key name) for a bad value, or None.
    """

    kind: Any
    default: Any = None
    check: Callable[[Any], str | None] | None = None


REQUIRED = object()


MAX_FILE_BYTES = 16 << 20
"""Largest scene or look file read. 200 examples with 200-character texts and 20,001 loss
values, written plainly, take under 1 MiB."""


def _read_limited(path: Path) -> bytes:
    """Read up to ``MAX_FILE_BYTES + 1`` bytes from a file, a pipe or a device."""
    # O_NONBLOCK keeps open() from waiting forever on a named pipe that no program writes
    # to. Reads block again afterwards, so such a pipe reads as empty.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        os.set_blocking(fd, True)
        return file.read(MAX_FILE_BYTES + 1)


def read_toml(path: Path, what: str) -> dict:
    """Parse a TOML file, turning every way it can fail into a ``UsageError``."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{what} not found: {path}. Check the path, or leave the option out "
                         "to use the default.")
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give the path of a .toml file.")
    try:
        data = _read_limited(path)
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}. "
                         "Check its permissions.") from None
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"{what} {path} is larger than {MAX_FILE_BYTES >> 20} MiB; give the "
                         "path of a .toml file.")
    if not data and not path.is_file():
        raise UsageError(f"{what} {path} is not a regular file and no data came from it; "
                         "give the path of a .toml file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(f"{what} {path} is not UTF-8 text (invalid byte at offset "
                         f"{error.start}); save it as UTF-8.") from None
    if not text.strip():
        raise UsageError(f"{what} {path} is empty; copy the default file from the README "
                         "and edit it.")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{what} {path} is not valid TOML: {error}.") from None


def type_name(kind: Any) -> str:
    """Return the TOML word for a Python type or tuple of types."""
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "an array", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _matches(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def unknown_key_problem(where: str, key: str, known: list[str]) -> str:
    """Return the message for an unknown key, with the closest known key if there is one."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
    return f"unknown key '{where}{key}'{hint}"


def check_table(table: Any, keys: dict[str, Key], where: str, problems: list[str]) -> dict:
    """Validate ``table`` against ``keys`` and return it with defaults filled in.

    Problems are appended to ``problems``; a bad value is replaced by its
    default so that later checks can still run.
    """
    if not isinstance(table, dict):
        problems.append(f"'{where.rstrip('.')}' must be a table, got {table!r}")
        table = {}
    result = {}
    for key in table:
        if key not in keys:
            problems.append(unknown_key_problem(where, key, list(keys)))
    for key, spec in keys.items():
        name = f"{where}{key}"
        if key not in table:
            if spec.default is REQUIRED:
                problems.append(f"missing key '{name}' ({type_name(spec.kind)})")
            result[key] = None if spec.default is REQUIRED else spec.default
            continue
        value = table[key]
        if not _matches(value, spec.kind):
            problems.append(f"'{name}' must be {type_name(spec.kind)}, got {value!r}")
            result[key] = None if spec.default is REQUIRED else spec.default
            continue
        error = spec.check(value) if spec.check else None
        if error:
            problems.append(f"'{name}' = {value!r} is invalid: {error}")
            result[key] = None if spec.default is REQUIRED else spec.default
            continue
        result[key] = float(value) if spec.kind is float else value
    return result


def in_range(low: float, high: float) -> Callable[[Any], str | None]:
    """Return a check that accepts finite numbers from ``low`` to ``high`` inclusive."""

    def check(value: float) -> str | None:
        if not math.isfinite(value) or not low <= value <= high:
            return f"allowed values are {low} to {high}"
        return None

    return check


def hex_color(value: str) -> str | None:
    """Check a "#RRGGBB" colour string."""
    return None if HEX_COLOR.fullmatch(value) else 'use "#RRGGBB" with six hexadecimal digits'


def parse_color(value: str) -> tuple[float, float, float]:
    """Convert "#RRGGBB" to linear-light RGB, since blending and bloom work in linear light."""
    srgb = [int(value[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]
    return tuple(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb)


def raise_if_problems(path: Path, problems: list[str]) -> None:
    """Raise one ``InputFileError`` that lists every collected problem."""
    if problems:
        raise InputFileError(path, problems)
