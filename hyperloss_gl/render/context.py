"""Create the OpenGL context: a standalone EGL context for recording and tests."""

from __future__ import annotations

import moderngl

from hyperloss_gl import log
from hyperloss_gl.errors import HyperlossError

REQUIRED_GL = 330
EGL_PACKAGES = "libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri"


def create_headless_context() -> moderngl.Context:
    """Create an offscreen OpenGL 3.3 core context through EGL; no display needed."""
    try:
        ctx = moderngl.create_context(standalone=True, backend="egl", require=REQUIRED_GL)
    except Exception as error:  # glcontext raises plain Exception subclasses per backend.
        text = str(error)
        if "libEGL" in text or "egl" in text.lower() and "load" in text.lower():
            raise HyperlossError(
                f"cannot load the EGL library ({text}). On Debian or Ubuntu install it with: "
                f"apt-get install {EGL_PACKAGES}") from None
        if "not loaded" in text:
            # glcontext 3.1 reports a failed dlopen as "<library> not loaded"; here it is libGL.
            raise HyperlossError(
                f"cannot load the OpenGL library ({text}). On Debian or Ubuntu install it with: "
                f"apt-get install {EGL_PACKAGES}") from None
        raise HyperlossError(
            f"cannot create an OpenGL {REQUIRED_GL // 100}.{REQUIRED_GL % 100 // 10} core context "
            f"through EGL ({text}). Install Mesa's drivers (apt-get install {EGL_PACKAGES}) or "
            "a GPU driver with EGL support.") from None
    describe(ctx)
    return ctx


def describe(ctx: moderngl.Context) -> None:
    """Log the OpenGL vendor, renderer and version once per context."""
    info = ctx.info
    log.info("OpenGL %s by %s on %s", info["GL_VERSION"], info["GL_VENDOR"], info["GL_RENDERER"])
