"""Draw frame states with OpenGL: scene pass, bloom chain and composite.

Pass by pass:

1. Scene pass into an RGBA16F target: background shapes (panel card, region
   boundaries), lines (axes, loss curve, trail, wave), the cloud's vectors,
   front shapes (chips, tracer dot) and text, each one instanced draw call,
   blended as premultiplied alpha.
2. Bloom: the first step shrinks to a quarter of the size and applies the
   soft threshold and a Karis average. Further steps halve again. The way back
   up adds each level to the upsampled smaller one in the shader, so no pass
   blends.
3. Composite: background vignette, scene, bloom, tone mapping, sRGB and
   dithering into an 8-bit target, flipped for readback when recording.

The frame is drawn in design pixels (1080 x 1920) scaled uniformly onto the
target, so glow radius and line widths look the same at every output size.
"""

from __future__ import annotations

import math
from pathlib import Path

import moderngl
import numpy as np

from hyperloss_gl import resources
from hyperloss_gl.look import Look
from hyperloss_gl.render.batches import GLYPH_FLOATS, LINE_FLOATS, SHAPE_FLOATS, BatchBuilder
from hyperloss_gl.render.glyphs import EDGE_VALUE, GlyphAtlas, preload_glyphs
from hyperloss_gl.render.shaders import ShaderLibrary
from hyperloss_gl.render.splat import CloudSplatter
from hyperloss_gl.scene import cloud as cloud_math
from hyperloss_gl.scene import layout
from hyperloss_gl.scene.description import Scene
from hyperloss_gl.scene.state import FrameState

DUST_ABOVE = 2000
"""Regions with more vectors than this draw them as plain dots (GL points): on a
software rasteriser 100,000 instanced quads cost several times more to set up."""
DENSITY_REFERENCE = 35
"""Vectors per region at which the look file's vector sizes apply unscaled."""
BLOOM_LEVELS = 5
"""Bloom levels from a quarter of the frame's size down to 1/64."""
QUAD = np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32)
FONT_WEIGHTS = {"semibold": "SemiBold", "bold": "Bold"}
ATLAS_SIZE = 2048
"""Width and height of each glyph atlas in texels: room for about 1,000 glyphs of Inter at
64 pixels per em (estimated). 1024 fit about 230, fewer than ASCII, Latin-1, Greek and
Cyrillic need."""

# Instance layouts: moderngl format string and attribute names, matching the shaders.
SHAPE_LAYOUT = ("4f 4f 4f 4f 4x4/i", ("in_rect", "in_fill", "in_stroke", "in_shape"))
LINE_LAYOUT = ("4f 4f 4f 4f 2f/i", ("in_segment", "in_neighbours", "in_color0", "in_color1",
                                    "in_width"))
GLYPH_LAYOUT = ("4f 4f 4f 2f/i", ("in_rect", "in_uv", "in_color", "in_style"))
POINT_LAYOUT = ("3f 3f 3f 1f/i", ("in_position", "in_direction", "in_color", "in_brightness"))
DUST_LAYOUT = ("3f 3x4 3f 1f", ("in_position", "in_color", "in_brightness"))


def set_uniform(program: moderngl.Program, name: str, value) -> None:
    """Set a uniform if the program uses it.

    A shader the user edits may drop a uniform, and the GLSL compiler removes
    unused ones, so a missing name is skipped rather than an error.
    """
    if name in program:
        program[name].value = value


def design_transform(width: int, height: int) -> tuple[float, float, float]:
    """Return the scale and pixel offset that fit the design frame inside a target."""
    scale = min(width / layout.DESIGN_WIDTH, height / layout.DESIGN_HEIGHT)
    return (scale, (width - layout.DESIGN_WIDTH * scale) / 2,
            (height - layout.DESIGN_HEIGHT * scale) / 2)


class InstanceBatch:
    """One program drawn as instanced quads from a growing instance buffer."""

    def __init__(self, ctx: moderngl.Context, quad: moderngl.Buffer, layout_spec, stride: int):
        self.ctx = ctx
        self.quad = quad
        self.format, self.names = layout_spec
        self.stride = stride
        self.buffer = ctx.buffer(reserve=stride * 256, dynamic=True)
        self.vao = None
        self.program = None
        self.points = not self.format.endswith("/i")
        """True for a per-vertex layout drawn as GL points, one point per row."""

    def bind(self, program: moderngl.Program) -> None:
        """Rebuild the vertex array for a (re)compiled program."""
        self.program = program
        if self.vao is not None:
            self.vao.release()
        content = [(self.buffer, self.format, *self.names)]
        if not self.points:
            content.insert(0, (self.quad, "2f", "in_corner"))
        self.vao = self.ctx.vertex_array(program, content)

    def draw(self, rows: np.ndarray) -> None:
        """Upload ``rows`` (float32, one row per instance) and draw them."""
        if len(rows) == 0:
            return
        data = np.ascontiguousarray(rows, np.float32)
        if data.nbytes > self.buffer.size:
            self.buffer.orphan(max(data.nbytes, self.buffer.size * 2))
            self.bind(self.program)
        self.buffer.write(data)
        if self.points:
            self.vao.render(moderngl.POINTS, vertices=len(data))
        else:
            self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=len(data))


class Renderer:
    """Owns the GL resources of one output size and draws frame states into them."""

    def __init__(self, ctx: moderngl.Context, scene: Scene, look: Look, width: int,
                 height: int, shader_dir: Path | None = None):
        self.ctx = ctx
        self.scene = scene
        self.look = look
        self.width, self.height = width, height
        self.shaders = ShaderLibrary(ctx, shader_dir or resources.shader_dir())
        self.atlases = {key: GlyphAtlas(resources.font_path(weight), size=ATLAS_SIZE)
                        for key, weight in FONT_WEIGHTS.items()}
        self.atlas_textures: dict[str, tuple[int, moderngl.Texture]] = {}
        # The title is bold; region names, chips and outputs are semibold.
        preload_glyphs({self.atlases["bold"]: [scene.title],
                        self.atlases["semibold"]: scene.texts_below_title()})
        self.builder = BatchBuilder(scene, look, self.atlases)
        # Dense regions draw smaller vectors: a region of 35 keeps the look
        # file's sizes, one of 20,000 draws dots about a pixel across.
        crowd = max((region.vectors for region in scene.regions), default=0)
        self.density = min(1.0, max(math.sqrt(DENSITY_REFERENCE / max(crowd, 1)), 0.12))
        self.dense = crowd > DUST_ABOVE
        renderer_name = ctx.info["GL_RENDERER"].lower()
        software = "llvmpipe" in renderer_name or "softpipe" in renderer_name
        self.splatter = (CloudSplatter(design_transform(width, height)[0])
                         if self.dense and software else None)
        self.splat_texture = None
        self.quad = ctx.buffer(QUAD)
        self.batches = {
            "shapes": InstanceBatch(ctx, self.quad, SHAPE_LAYOUT, SHAPE_FLOATS * 4),
            "lines": InstanceBatch(ctx, self.quad, LINE_LAYOUT, LINE_FLOATS * 4),
            "text": InstanceBatch(ctx, self.quad, GLYPH_LAYOUT, GLYPH_FLOATS * 4),
            "points": InstanceBatch(ctx, self.quad, POINT_LAYOUT, 10 * 4),
            "dust": InstanceBatch(ctx, self.quad, DUST_LAYOUT, 10 * 4),
        }
        self._make_targets()
        self.reload_shaders()

    # Resources ---------------------------------------------------------

    def _make_targets(self) -> None:
        ctx, w, h = self.ctx, self.width, self.height
        self.scene_texture = ctx.texture((w, h), 4, dtype="f2")
        self.scene_fbo = ctx.framebuffer([self.scene_texture])
        self.down, self.up = [], []
        # The first level is a quarter of the frame: on a software rasteriser a
        # half-size level costs more than the rest of the chain together.
        size = (w * 2, h * 2)
        for level in range(BLOOM_LEVELS):
            size = (max(size[0] // (8 if level == 0 else 2), 1),
                    max(size[1] // (8 if level == 0 else 2), 1))
            self.down.append(self._float_target(size))
            self.up.append(self._float_target(size) if level < BLOOM_LEVELS - 1 else None)
        self.accum = None
        self.yuv_targets = None
        self.output_texture = ctx.texture((w, h), 4)
        self.output_fbo = ctx.framebuffer([self.output_texture])

    def _float_target(self, size):
        texture = self.ctx.texture(size, 4, dtype="f4")
        texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        texture.repeat_x = texture.repeat_y = False
        return texture, self.ctx.framebuffer([texture])

    def reload_shaders(self) -> None:
        """Compile every program; on failure the previous programs stay in use."""
        programs = self.shaders.compile_all()
        for name in ("shapes", "lines", "text", "points", "dust"):
            self.batches[name].bind(programs[name])
        self.fullscreen = {name: self.ctx.vertex_array(programs[name],
                                                       [(self.quad, "2f", "in_corner")])
                           for name in ("bloom_down", "bloom_up", "composite", "accumulate",
                                        "splat", "composite_yuv")}

    def set_look(self, look: Look) -> None:
        """Use new look parameters from the next frame on."""
        self.look = look
        self.builder.look = look

    def _atlas_texture(self, key: str) -> moderngl.Texture:
        atlas = self.atlases[key]
        cached = self.atlas_textures.get(key)
        if cached and cached[0] == atlas.version and cached[1].size == atlas.pixels.shape[::-1]:
            return cached[1]
        if cached:
            cached[1].release()
        pixels = np.ascontiguousarray(atlas.pixels)
        texture = self.ctx.texture(pixels.shape[::-1], 1, pixels.tobytes())
        texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.atlas_textures[key] = (atlas.version, texture)
        return texture

    # Drawing -----------------------------------------------------------

    def _set_design_uniforms(self, program: moderngl.Program) -> None:
        scale, ox, oy = design_transform(self.width, self.height)
        set_uniform(program, "u_design", (scale, ox, oy, 0.0))
        set_uniform(program, "u_target_size", (float(self.width), float(self.height)))

    def render(self, state: FrameState, flip_for_readback: bool = False,
               target: moderngl.Framebuffer | None = None) -> None:
        """Draw ``state`` into ``target`` (default: the 8-bit output framebuffer)."""
        self._scene_pass(state)
        self._bloom(self.scene_texture)
        self._composite(self.scene_texture, target or self.output_fbo, flip_for_readback)

    def render_yuv(self, states: list[FrameState]) -> None:
        """Draw the frame straight into the yuv420p targets, top rows first.

        One or more states as for :meth:`render_blurred`. The composite pass
        writes luma and chroma of each 2 x 2 block instead of RGBA, so no RGBA
        image is written or converted; :meth:`read_yuv_into` collects the planes.
        """
        hdr = self._draw_hdr(states)
        self._bloom(hdr)
        if self.yuv_targets is None:
            size = (self.width // 2, self.height // 2)
            luma = self.ctx.texture(size, 4)
            chroma = self.ctx.texture(size, 2)
            self.yuv_targets = (luma, chroma, self.ctx.framebuffer([luma, chroma]))
        fbo = self.yuv_targets[2]
        fused = self.fullscreen["composite_yuv"]
        fbo.use()
        self._set_composite_uniforms(fused.program, hdr, flip=False)
        set_uniform(fused.program, "u_frame_size", (float(self.width), float(self.height)))
        set_uniform(fused.program, "u_top_row_first", 1)
        fused.render(moderngl.TRIANGLE_STRIP)

    def read_yuv_into(self, target) -> None:
        """Read the last :meth:`render_yuv` frame's luma and chroma targets into ``target``.

        ``target`` (a moderngl buffer, to read asynchronously, or writable bytes)
        receives ``width * height * 3 // 2`` bytes: the luma blocks, then U and V
        interleaved. :meth:`unpack_yuv` turns them into yuv420p planes.
        """
        _, _, fbo = self.yuv_targets
        fbo.read_into(target, components=4, attachment=0, alignment=1)
        fbo.read_into(target, components=2, attachment=1, alignment=1,
                      write_offset=self.width * self.height)

    def unpack_yuv(self, packed: np.ndarray, buffer: np.ndarray) -> None:
        """Reorder bytes from :meth:`read_yuv_into` into yuv420p planes in ``buffer``.

        The luma target holds each 2 x 2 block's four bytes together, so they
        are moved into the Y plane's rows, and U and V are de-interleaved.
        """
        width, height = self.width, self.height
        luma_bytes = width * height
        scratch = packed.reshape(-1)
        blocks = scratch[:luma_bytes].reshape(height // 2, width // 2, 2, 2)
        planes = buffer.reshape(-1)
        np.copyto(planes[:luma_bytes].reshape(height // 2, 2, width // 2, 2),
                  blocks.transpose(0, 2, 1, 3))
        chroma = scratch[luma_bytes:luma_bytes * 3 // 2].reshape(-1, 2)
        quarter = luma_bytes // 4
        planes[luma_bytes:luma_bytes + quarter] = chroma[:, 0]
        planes[luma_bytes + quarter:] = chroma[:, 1]

    def _draw_hdr(self, states: list[FrameState]) -> moderngl.Texture:
        if len(states) == 1:
            self._scene_pass(states[0])
            return self.scene_texture
        return self._accumulate(states)

    def render_blurred(self, states: list[FrameState], flip_for_readback: bool = False,
                       target: moderngl.Framebuffer | None = None) -> None:
        """Draw the average of several sub-frame states: motion blur across a shutter.

        Each sub-frame's scene pass is added into a 32-bit float accumulation
        target with an equal weight. Bloom and tone mapping then run once on
        the average, as a camera would expose it.
        """
        if len(states) == 1:
            self.render(states[0], flip_for_readback, target)
            return
        hdr = self._accumulate(states)
        self._bloom(hdr)
        self._composite(hdr, target or self.output_fbo, flip_for_readback)

    def _accumulate(self, states: list[FrameState]) -> moderngl.Texture:
        if self.accum is None:
            texture = self.ctx.texture((self.width, self.height), 4, dtype="f4")
            self.accum = (texture, self.ctx.framebuffer([texture]))
        accum_texture, accum_fbo = self.accum
        accumulate = self.fullscreen["accumulate"]
        accum_fbo.use()
        accum_fbo.clear(0.0, 0.0, 0.0, 0.0)
        for state in states:
            self._scene_pass(state)
            accum_fbo.use()
            self.ctx.enable(moderngl.BLEND)
            self.ctx.blend_func = moderngl.ONE, moderngl.ONE
            self.scene_texture.use(0)
            set_uniform(accumulate.program, "u_source", 0)
            set_uniform(accumulate.program, "u_weight", 1.0 / len(states))
            set_uniform(accumulate.program, "u_flip_y", 1.0)
            accumulate.render(moderngl.TRIANGLE_STRIP)
            self.ctx.disable(moderngl.BLEND)
        return accum_texture

    def _scene_pass(self, state: FrameState) -> None:
        ctx = self.ctx
        arrays = self.builder.build(state).arrays()
        self.scene_fbo.use()
        self.scene_fbo.clear(0.0, 0.0, 0.0, 0.0)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
        for name in ("shapes", "lines", "text", "points", "dust"):
            self._set_design_uniforms(self.batches[name].program)
        self.batches["shapes"].draw(arrays["shapes_back"])
        self.batches["lines"].draw(arrays["lines"])
        self._draw_points(state)
        self.batches["shapes"].draw(arrays["shapes_front"])
        text = self.batches["text"]
        for key in self.atlases:
            rows = arrays.get(f"glyphs_{key}")
            if rows is None or not len(rows):
                continue
            atlas = self.atlases[key]
            self._atlas_texture(key).use(0)
            set_uniform(text.program, "u_atlas", 0)
            set_uniform(text.program, "u_sdf_edge", EDGE_VALUE / 255.0)
            # A normalised atlas value of 1 spans 255 / 128 spreads of texels.
            set_uniform(text.program, "u_sdf_px_per_unit", atlas.spread_px * 255.0 / EDGE_VALUE)
            text.draw(rows)
        ctx.disable(moderngl.BLEND)

    def _draw_points(self, state: FrameState) -> None:
        cloud = state.cloud
        if not len(cloud.positions):
            return
        if self.splatter is not None:
            self._draw_splat(state)
            return
        batch = self.batches["dust" if self.dense else "points"]
        program = batch.program
        view_projection = cloud.projection @ cloud.view
        if "u_view_projection" in program:
            program["u_view_projection"].write(view_projection.T.astype(np.float32).tobytes())
        rect = layout.CLOUD
        set_uniform(program, "u_cloud_rect", (rect.x, rect.y, rect.w, rect.h))
        set_uniform(program, "u_dot_radius", self.look.sizes["vector_radius"] * self.density)
        if not self.dense:
            set_uniform(program, "u_streak", self.look.sizes["vector_streak"] * self.density)
        set_uniform(program, "u_focus", cloud_math.CAMERA_DISTANCE)
        rows = np.empty((len(cloud.positions), 10), np.float32)
        rows[:, 0:3] = cloud.positions
        rows[:, 3:6] = cloud.directions
        rows[:, 6:9] = cloud.colors
        rows[:, 9] = cloud.brightness * (self.look.glow["vectors"]
                                         * (self.density if self.dense else 1.0))
        batch.draw(rows)

    def _draw_splat(self, state: FrameState) -> None:
        splatter = self.splatter
        # Dense clouds add up many vectors per pixel; the density factor keeps
        # a cluster's total light near that of the default 35 vectors.
        image = splatter.splat(state.cloud, self.look.glow["vectors"] * self.density)
        if self.splat_texture is None:
            self.splat_texture = self.ctx.texture((splatter.width, splatter.height), 3,
                                                  dtype="f4")
            self.splat_texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.splat_texture.write(image.tobytes())
        quad = self.fullscreen["splat"]
        self._set_design_uniforms(quad.program)
        set_uniform(quad.program, "u_splat_rect", splatter.rect)
        self.splat_texture.use(0)
        set_uniform(quad.program, "u_splat", 0)
        quad.render(moderngl.TRIANGLE_STRIP)

    def _bloom(self, source: moderngl.Texture) -> None:
        look = self.look
        down = self.fullscreen["bloom_down"]
        program = down.program
        set_uniform(program, "u_flip_y", 1.0)
        set_uniform(program, "u_threshold", look.glow["threshold"])
        set_uniform(program, "u_knee", look.glow["knee"])
        for level, (texture, fbo) in enumerate(self.down):
            fbo.use()
            source.use(0)
            set_uniform(program, "u_source", 0)
            set_uniform(program, "u_texel", (1.0 / source.size[0], 1.0 / source.size[1]))
            set_uniform(program, "u_first", 1 if level == 0 else 0)
            down.render(moderngl.TRIANGLE_STRIP)
            source = texture
        up = self.fullscreen["bloom_up"]
        program = up.program
        set_uniform(program, "u_flip_y", 1.0)
        set_uniform(program, "u_spread", look.glow["radius"])
        smaller = self.down[-1][0]
        for level in range(BLOOM_LEVELS - 2, -1, -1):
            texture, fbo = self.up[level]
            fbo.use()
            self.down[level][0].use(0)
            smaller.use(1)
            set_uniform(program, "u_level", 0)
            set_uniform(program, "u_smaller", 1)
            set_uniform(program, "u_texel", (1.0 / smaller.size[0], 1.0 / smaller.size[1]))
            up.render(moderngl.TRIANGLE_STRIP)
            smaller = texture
        self.bloom_texture = smaller

    def _composite(self, hdr: moderngl.Texture, target: moderngl.Framebuffer,
                   flip: bool) -> None:
        composite = self.fullscreen["composite"]
        target.use()
        self._set_composite_uniforms(composite.program, hdr, flip)
        composite.render(moderngl.TRIANGLE_STRIP)

    def _set_composite_uniforms(self, program: moderngl.Program, hdr: moderngl.Texture,
                                flip: bool) -> None:
        look = self.look
        hdr.use(0)
        self.bloom_texture.use(1)
        set_uniform(program, "u_scene", 0)
        set_uniform(program, "u_bloom", 1)
        set_uniform(program, "u_flip_y", -1.0 if flip else 1.0)
        # Each level adds a share of the next; dividing keeps strength independent of radius.
        set_uniform(program, "u_bloom_strength",
                    look.glow["strength"] * (1.0 - look.glow["radius"] * 0.5))
        set_uniform(program, "u_exposure", look.tone["exposure"])
        set_uniform(program, "u_background", look.colors["background"])
        set_uniform(program, "u_background_glow", look.colors["background_glow"])
        set_uniform(program, "u_dither", 1.0 if look.tone["dither"] else 0.0)
        scale, ox, oy = design_transform(self.width, self.height)
        set_uniform(program, "u_design_rect", (
            ox / self.width, oy / self.height, (ox + layout.DESIGN_WIDTH * scale) / self.width,
            (oy + layout.DESIGN_HEIGHT * scale) / self.height))

    def read_rgba(self) -> np.ndarray:
        """Return the output framebuffer as an (height, width, 4) uint8 array, bottom row first."""
        data = self.output_fbo.read(components=4)
        return np.frombuffer(data, np.uint8).reshape(self.height, self.width, 4)
