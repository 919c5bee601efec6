#version 330 core
#include "common.glsl"

// One instance is one glyph quad cut from the signed distance field atlas.
in vec2 in_corner;      // -1..1
in vec4 in_rect;        // x0, y0, x1, y1 in design pixels
in vec4 in_uv;          // u0, v0, u1, v1 in the atlas
in vec4 in_color;       // premultiplied fill colour (rgb may exceed 1 to glow)
in vec2 in_style;       // outline width in design pixels, outline opacity

out vec2 v_uv;
flat out vec4 v_color;
flat out vec2 v_style;

void main() {
    vec2 unit = in_corner * 0.5 + 0.5;
    vec2 design = mix(in_rect.xy, in_rect.zw, unit);
    gl_Position = design_to_clip(design);
    v_uv = mix(in_uv.xy, in_uv.zw, unit);
    v_color = in_color;
    v_style = vec2(in_style.x * u_design.x, in_style.y);
}
