#version 330 core
#include "common.glsl"

// One instance is one rounded rectangle, circle or ring, drawn as a quad.
in vec2 in_corner;             // unit quad corner, -1..1
in vec4 in_rect;               // centre x, y and half size w, h in design pixels
in vec4 in_fill;               // premultiplied linear RGB and alpha of the inside
in vec4 in_stroke;             // premultiplied linear RGB and alpha of the border
in vec4 in_shape;              // corner radius, border width, outer glow width, glow strength
                               // (radii and widths in design pixels)

out vec2 v_local;              // pixels from the centre
flat out vec2 v_half;
flat out vec4 v_fill;
flat out vec4 v_stroke;
flat out vec4 v_shape;

void main() {
    float margin = in_shape.z + 2.0 / u_design.x;
    vec2 half_size = in_rect.zw + margin;
    vec2 design = in_rect.xy + in_corner * half_size;
    gl_Position = design_to_clip(design);
    v_local = in_corner * half_size * u_design.x;
    v_half = in_rect.zw * u_design.x;
    v_fill = in_fill;
    v_stroke = in_stroke;
    v_shape = vec4(in_shape.xyz * u_design.x, in_shape.w);
}
