"""Convert the renderer's output image to yuv420p on the GPU, for a 1.5-byte readback.

The ``yuv`` program (``shaders/yuv.frag``) draws the BT.709 limited-range Y, U and
V planes of the 8-bit output image into one target whose memory layout is
FFmpeg's yuv420p frame. One readback then yields width * height * 3 / 2 bytes for
``VideoWriter(input_format="yuv420p")``, instead of width * height * 4 RGBA bytes
that FFmpeg would convert itself. Each chroma sample is the mean of its 2x2 block,
as in :func:`hyperloss_gl.encode.rgb_to_yuv420p`.
"""

from __future__ import annotations

import moderngl
import numpy as np

from hyperloss_gl.errors import UsageError
from hyperloss_gl.render.renderer import Renderer

READBACK_MODES = ("rgba", "yuv", "auto")
"""Values of ``--readback``: RGBA pixels, GPU-converted yuv420p, or a choice by renderer."""

SOFTWARE_RASTERIZERS = ("llvmpipe", "softpipe")
"""Substrings of GL_RENDERER that name Mesa's CPU rasterisers, where ``auto`` picks rgba."""


def is_software_rasterizer(ctx: moderngl.Context) -> bool:
    """Return True if the context draws on the CPU (Mesa llvmpipe or softpipe)."""
    renderer = ctx.info["GL_RENDERER"].lower()
    return any(name in renderer for name in SOFTWARE_RASTERIZERS)


def resolve_readback(requested: str, ctx: moderngl.Context) -> str:
    """Return ``rgba`` or ``yuv`` for a ``--readback`` value, resolving ``auto`` by renderer.

    ``auto`` picks rgba on a software rasteriser, where the conversion shader costs
    more draw time than FFmpeg's own conversion, and yuv on a GPU.
    """
    if requested not in READBACK_MODES:
        raise UsageError(f"Invalid readback {requested!r}: use one of "
                         f"{', '.join(READBACK_MODES)}.")
    if requested != "auto":
        return requested
    return "rgba" if is_software_rasterizer(ctx) else "yuv"


class YuvConverter:
    """A yuv420p target and the draw call that fills it from ``renderer.output_texture``.

    The program comes from the renderer's shader library, so build a new converter
    after :meth:`Renderer.reload_shaders`, which releases the old programs.
    """

    def __init__(self, renderer: Renderer):
        width, height = renderer.width, renderer.height
        if width % 2 or height % 2:
            raise UsageError(f"Invalid frame size {width}x{height}: yuv420p needs an even width "
                             "and height.")
        self.renderer = renderer
        self.width, self.height = width, height
        # Bytes per target texel: a target row must hold exactly one frame width of bytes.
        self.pack = 4 if width % 4 == 0 else 2
        self.frame_size = width * height * 3 // 2
        ctx = renderer.ctx
        self.texture = ctx.texture((width // self.pack, height * 3 // 2), self.pack)
        self.fbo = ctx.framebuffer([self.texture])
        self.program = renderer.shaders.programs["yuv"]
        self.vao = ctx.vertex_array(self.program, [(renderer.quad, "2f", "in_corner")])

    def convert(self, source_flipped: bool = True) -> None:
        """Draw the yuv420p planes of the renderer's output image into :attr:`fbo`.

        Set ``source_flipped`` when the output image was drawn with
        ``flip_for_readback=True``, so that its texel row 0 is the picture's top row.
        """
        program = self.program
        self.fbo.use()
        self.renderer.output_texture.use(0)
        program["u_source"].value = 0
        program["u_flip_y"].value = 1.0
        program["u_frame_size"].value = (self.width, self.height)
        program["u_pack"].value = self.pack
        program["u_source_flipped"].value = 1 if source_flipped else 0
        self.vao.render(moderngl.TRIANGLE_STRIP)

    def read_into(self, buffer) -> None:
        """Copy the converted frame into ``buffer`` (a moderngl buffer or writable bytes)."""
        self.fbo.read_into(buffer, components=self.pack, alignment=1)

    def read(self) -> np.ndarray:
        """Return the converted frame as a flat uint8 array of Y, U and V planes."""
        data = self.fbo.read(components=self.pack, alignment=1)
        return np.frombuffer(data, np.uint8)

    def release(self) -> None:
        """Release the target and the vertex array. The program belongs to the renderer."""
        # moderngl rebinds the current framebuffer when it creates the next one, which
        # fails with GL_INVALID_OPERATION if that framebuffer was deleted.
        self.renderer.output_fbo.use()
        self.vao.release()
        self.fbo.release()
        self.texture.release()
