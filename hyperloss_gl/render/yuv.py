"""Choose how recorded frames are read back: RGBA, or yuv420p made by the composite pass.

With ``yuv``, :meth:`Renderer.render_yuv` composites each 2x2 block straight
into BT.709 limited-range luma and chroma targets (``shaders/composite_yuv.frag``),
so one readback moves width * height * 3 / 2 bytes and FFmpeg skips its own
conversion. Each chroma sample is the mean of its 2x2 block, as in
:func:`hyperloss_gl.encode.rgb_to_yuv420p`.
"""

from __future__ import annotations

import moderngl

from hyperloss_gl.errors import UsageError

READBACK_MODES = ("rgba", "yuv", "auto")
"""Values of ``--readback``: RGBA pixels, GPU-converted yuv420p, or a choice by renderer."""

SOFTWARE_RASTERIZERS = ("llvmpipe", "softpipe")
"""Substrings of GL_RENDERER that name Mesa's CPU rasterisers."""


def is_software_rasterizer(ctx: moderngl.Context) -> bool:
    """Return True if the context draws on the CPU (Mesa llvmpipe or softpipe)."""
    renderer = ctx.info["GL_RENDERER"].lower()
    return any(name in renderer for name in SOFTWARE_RASTERIZERS)


def resolve_readback(requested: str, ctx: moderngl.Context) -> str:
    """Return ``rgba`` or ``yuv`` for a ``--readback`` value; ``auto`` means ``yuv``.

    The fused yuv pass costs about what the RGBA composite costs, and saves
    FFmpeg its conversion: on llvmpipe with two cores, a 3 s recording took
    2.8 to 2.9 s per second of video against 2.95 to 3.05 with RGBA. ``ctx``
    is kept so that a renderer-dependent choice can return.
    """
    if requested not in READBACK_MODES:
        raise UsageError(f"Invalid readback {requested!r}: use one of "
                         f"{', '.join(READBACK_MODES)}.")
    if requested != "auto":
        return requested
    return "yuv"
