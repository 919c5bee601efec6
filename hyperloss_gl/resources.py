"""Locate the shipped shaders, fonts and default TOML files.

In a checkout, ``shaders/`` and ``fonts/`` sit beside the package; a wheel
installs copies of them inside the package. The checkout wins when both exist,
so that an editable install uses the files the developer edits.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
DEFAULT_SCENE = DATA_DIR / "default_scene.toml"
DEFAULT_LOOK = DATA_DIR / "default_look.toml"


def _shipped_dir(name: str) -> Path:
    checkout = PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    return PACKAGE_DIR / name


def shader_dir() -> Path:
    """Return the folder of the shipped GLSL sources."""
    return _shipped_dir("shaders")


def font_path(weight: str = "Regular") -> Path:
    """Return the path of a shipped Inter font: ``Regular``, ``SemiBold`` or ``Bold``."""
    return _shipped_dir("fonts") / f"Inter-{weight}.otf"
