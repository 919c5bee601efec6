"""Draw the preview window's own pixels: the frame image, panels and text on top of it.

The programs here are compiled from the source strings in this module, not
from the shaders folder, so that the preview can still draw its error message
while a file in that folder fails to compile. Everything drawn here goes to
the window's framebuffer only, never into a recording or a still.

Coordinates are framebuffer pixels with y pointing down. Colours are display
(sRGB-encoded) RGBA with straight alpha, because the window shows the values
as they are. The renderer's output is already sRGB-encoded, and blending
overlay colours onto it in the same encoding is what an image editor does.
"""

from __future__ import annotations


import moderngl
import numpy as np

from hyperloss_gl.render.glyphs import EDGE_VALUE, GlyphAtlas, TextBlock
from hyperloss_gl.scene.layout import Rect

QUAD = np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32)
INSTANCE_FLOATS = 13  # rect 4, uv 4, colour 4, mode 1
MODE_SOLID = 0.0
MODE_TEXT = 1.0

OVERLAY_VERTEX = """
#version 330 core
in vec2 in_corner;
in vec4 in_rect;   // x0, y0, x1, y1 in framebuffer pixels, y down
in vec4 in_uv;     // u0, v0, u1, v1 in the glyph atlas
in vec4 in_color;  // premultiplied display RGBA
in float in_mode;  // 0 solid, 1 SDF text
uniform vec2 u_size;
out vec2 v_uv;
flat out vec4 v_color;
flat out float v_mode;
void main() {
    vec2 unit = in_corner * 0.5 + 0.5;
    vec2 pixel = mix(in_rect.xy, in_rect.zw, unit);
    vec2 ndc = pixel / u_size * 2.0 - 1.0;
    gl_Position = vec4(ndc.x, -ndc.y, 0.0, 1.0);
    v_uv = mix(in_uv.xy, in_uv.zw, unit);
    v_color = in_color;
    v_mode = in_mode;
}
"""

OVERLAY_FRAGMENT = """
#version 330 core
in vec2 v_uv;
flat in vec4 v_color;
flat in float v_mode;
uniform sampler2D u_atlas;
uniform float u_sdf_edge;         // atlas value on a glyph outline, 0..1
uniform float u_sdf_px_per_unit;  // atlas texels per unit of atlas value
out vec4 f_color;
void main() {
    if (v_mode < 0.5) {
        f_color = v_color;
        return;
    }
    float value = texture(u_atlas, v_uv).r;
    vec2 texels = fwidth(v_uv) * vec2(textureSize(u_atlas, 0));
    float texels_per_pixel = max(0.5 * (texels.x + texels.y), 1e-4);
    float d = (value - u_sdf_edge) * u_sdf_px_per_unit / texels_per_pixel;
    f_color = v_color * clamp(d + 0.5, 0.0, 1.0);
}
"""

BLIT_VERTEX = """
#version 330 core
in vec2 in_corner;
out vec2 v_uv;
void main() {
    v_uv = in_corner * 0.5 + 0.5;
    gl_Position = vec4(in_corner, 0.0, 1.0);
}
"""

BLIT_FRAGMENT = """
#version 330 core
in vec2 v_uv;
uniform sampler2D u_image;
out vec4 f_color;
void main() {
    f_color = vec4(texture(u_image, v_uv).rgb, 1.0);
}
"""


PixelRect = Rect
"""A rectangle in framebuffer pixels, ``y`` measured down from the top edge."""


def premultiply(color) -> tuple[float, float, float, float]:
    """Return straight RGBA as premultiplied RGBA."""
    r, g, b, a = color
    return (r * a, g * a, b * a, a)


class OverlayPainter:
    """Collects solid rectangles and text for one frame and draws them in one call."""

    def __init__(self, ctx: moderngl.Context, atlas: GlyphAtlas):
        self.ctx = ctx
        self.atlas = atlas
        self.quad = ctx.buffer(QUAD)
        self.program = ctx.program(vertex_shader=OVERLAY_VERTEX,
                                   fragment_shader=OVERLAY_FRAGMENT)
        self.buffer = ctx.buffer(reserve=INSTANCE_FLOATS * 4 * 1024, dynamic=True)
        self.vao = self._vertex_array()
        self.blit_program = ctx.program(vertex_shader=BLIT_VERTEX, fragment_shader=BLIT_FRAGMENT)
        self.blit_vao = ctx.vertex_array(self.blit_program, [(self.quad, "2f", "in_corner")])
        self.sampler = ctx.sampler(filter=(moderngl.LINEAR, moderngl.LINEAR), repeat_x=False,
                                   repeat_y=False)
        self.atlas_texture: moderngl.Texture | None = None
        self.atlas_version = -1
        self.rows: list[tuple[float, ...]] = []

    def _vertex_array(self) -> moderngl.VertexArray:
        return self.ctx.vertex_array(self.program, [
            (self.quad, "2f", "in_corner"),
            (self.buffer, "4f 4f 4f 1f/i", "in_rect", "in_uv", "in_color", "in_mode")])

    # Frame image -------------------------------------------------------------

    def blit(self, target: moderngl.Framebuffer, target_size: tuple[int, int],
             texture: moderngl.Texture, rect: PixelRect) -> None:
        """Draw ``texture`` scaled into ``rect`` of ``target``, with no colour conversion.

        ``target_size`` is passed in because a window's default framebuffer
        keeps the size it had when the context was created.
        """
        target.use()
        self.ctx.disable(moderngl.BLEND)
        self.ctx.viewport = (int(rect.x), int(target_size[1] - rect.bottom), int(rect.w),
                             int(rect.h))
        texture.use(0)
        self.sampler.use(0)
        self.blit_program["u_image"].value = 0
        self.blit_vao.render(moderngl.TRIANGLE_STRIP)
        self.sampler.clear(0)

    # Shapes and text -----------------------------------------------------------

    def rect(self, rect: PixelRect, color) -> None:
        """Add a filled rectangle with a straight-alpha display colour."""
        self.rows.append((rect.x, rect.y, rect.right, rect.bottom, 0.0, 0.0, 0.0, 0.0,
                          *premultiply(color), MODE_SOLID))

    def frame(self, rect: PixelRect, width: float, color) -> None:
        """Add the outline of a rectangle, ``width`` pixels wide, inside ``rect``."""
        x, y, w, h = rect.x, rect.y, rect.w, rect.h
        self.rect(PixelRect(x, y, w, width), color)
        self.rect(PixelRect(x, y + h - width, w, width), color)
        self.rect(PixelRect(x, y + width, width, h - 2 * width), color)
        self.rect(PixelRect(x + w - width, y + width, width, h - 2 * width), color)

    def text_width(self, text: str, size: float) -> float:
        """Return the advance of one line of text in pixels."""
        return self.atlas.layout(text, size).advance if text else 0.0

    def text(self, text: str, x: float, baseline: float, size: float, color,
             align: str = "left") -> float:
        """Add one line of text with its baseline at ``baseline`` and return its width.

        ``align`` is ``left``, ``center`` or ``right`` about ``x``.
        """
        if not text:
            return 0.0
        run = self.atlas.layout(text, size)
        offset = {"left": 0.0, "center": -run.advance / 2, "right": -run.advance}[align]
        # Whole pixels keep small text as sharp as the atlas allows.
        origin_x, origin_y = round(x + offset), round(baseline)
        fill = premultiply(color)
        for quad, uv in zip(run.quads, run.uvs):
            self.rows.append((quad[0] + origin_x, quad[1] + origin_y, quad[2] + origin_x,
                              quad[3] + origin_y, *uv, *fill, MODE_TEXT))
        return run.advance

    def wrap(self, text: str, size: float, max_width: float, max_lines: int) -> TextBlock:
        """Wrap text into at most ``max_lines`` lines no wider than ``max_width``."""
        return self.atlas.fit(text, size, max(max_width, 1.0), max_lines=max_lines,
                              min_size_px=size * 0.8)

    def line_height(self, size: float) -> float:
        return self.atlas.layout("Hg", size).line_height

    def flush(self, target: moderngl.Framebuffer, target_size: tuple[int, int]) -> None:
        """Draw every added rectangle and glyph onto ``target`` and start a new frame."""
        if not self.rows:
            return
        target.use()
        width, height = target_size
        self.ctx.viewport = (0, 0, width, height)
        data = np.array(self.rows, np.float32)
        self.rows = []
        if data.nbytes > self.buffer.size:
            self.buffer.orphan(max(data.nbytes, self.buffer.size * 2))
            self.vao.release()
            self.vao = self._vertex_array()
        self.buffer.write(data)
        self._atlas().use(0)
        self.program["u_atlas"].value = 0
        self.program["u_size"].value = (float(width), float(height))
        self.program["u_sdf_edge"].value = EDGE_VALUE / 255.0
        self.program["u_sdf_px_per_unit"].value = self.atlas.spread_px * 255.0 / EDGE_VALUE
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=len(data))
        self.ctx.disable(moderngl.BLEND)

    def _atlas(self) -> moderngl.Texture:
        if self.atlas_texture is not None and self.atlas_version == self.atlas.version:
            return self.atlas_texture
        if self.atlas_texture is not None:
            self.atlas_texture.release()
        pixels = np.ascontiguousarray(self.atlas.pixels)
        self.atlas_texture = self.ctx.texture(pixels.shape[::-1], 1, pixels.tobytes())
        self.atlas_texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.atlas_version = self.atlas.version
        return self.atlas_texture
