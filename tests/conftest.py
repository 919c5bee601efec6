"""Shared fixtures: the default scene, and small scenes written as TOML into ``tmp_path``.

Run from the repository root with ``python -m pytest`` so that ``hyperloss_gl``
is importable without installing the package.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hyperloss_gl.scene import Animator, Timeline, load_scene


def toml_value(value) -> str:
    """Format a Python value as an inline TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes (\", \\, \n, \uXXXX) are valid in TOML basic strings.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(key)} = {toml_value(item)}" for key, item in value.items())
        return "{ " + items + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dump_toml(data: dict) -> str:
    """Write a scene dictionary as TOML: top-level values, then [tables], then [[arrays]]."""
    lines = []
    for key, value in data.items():
        if not isinstance(value, dict) and not _is_table_array(value):
            lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{json.dumps(key)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()]
    for key, value in data.items():
        if _is_table_array(value):
            for table in value:
                lines.append(f"\n[[{json.dumps(key)}]]")
                lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def scene_dict(examples: int = 2, regions: int = 2, steps_per_epoch: int = 3,
               vectors: int = 10) -> dict:
    """Return a valid scene as a dictionary, small enough to load in milliseconds."""
    names = [f"Region {i}" for i in range(regions)]
    count = examples * steps_per_epoch + 1
    return {
        "title": "Test scene",
        "seed": 7,
        "video": {"width": 1080, "height": 1920, "fps": 60},
        "loss": {
            "values": [round(4.8 - 4.4 * i / max(count - 1, 1), 6) for i in range(count)],
            "steps_per_epoch": steps_per_epoch,
        },
        "regions": [{"name": name, "color": "#FF9F43", "vectors": vectors} for name in names],
        "examples": [{"input": f"Question {i}?", "region": names[i % regions],
                      "output": f"Answer number {i}."} for i in range(examples)],
    }


@pytest.fixture
def write_scene(tmp_path: Path):
    """Return a function that writes a scene (dict, str or bytes) to a file and returns the path."""

    def write(content, name: str = "scene.toml") -> Path:
        path = tmp_path / name
        if isinstance(content, dict):
            content = dump_toml(content)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write


@pytest.fixture(scope="session")
def default_scene():
    return load_scene()


@pytest.fixture(scope="session")
def default_timeline(default_scene):
    return Timeline(default_scene)


@pytest.fixture
def default_animator(default_scene):
    return Animator(default_scene)


class RecordingSound:
    """A stand-in for the preview's sound player that records each call."""

    def __init__(self):
        self.calls = []

    def play(self, t):
        self.calls.append(("play", t))

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


_session_context = []


@pytest.fixture(scope="session")
def gl_context():
    """One headless EGL context for the whole session, as in moderngl's own tests."""
    from hyperloss_gl.render.context import create_headless_context

    ctx = create_headless_context()
    _session_context.append(ctx)
    yield ctx
    _session_context.clear()
    ctx.release()


@pytest.fixture(autouse=True)
def restore_session_context():
    """Make the session's context current again after each test.

    A recording creates and releases a context of its own, which leaves no
    context current, and fixtures of the next module would fail to create GL
    objects on the session's context.
    """
    yield
    if _session_context:
        _session_context[0].__enter__()


@pytest.fixture
def gl(gl_context):
    """The session's context, made current, with the GL error flag checked around the test.

    Recording tests create contexts of their own, so each test makes the
    session's context current again before it draws.
    """
    with gl_context:
        assert gl_context.error == "GL_NO_ERROR", "a previous test left a GL error"
        yield gl_context
        assert gl_context.error == "GL_NO_ERROR"
