#version 330 core
#include "common.glsl"

// One quad over the cloud band, textured with the vectors splatted on the CPU.
in vec2 in_corner;          // -1..1
uniform vec4 u_splat_rect;  // x, y, w, h in design pixels of the splat texture's extent

out vec2 v_uv;

void main() {
    vec2 unit = in_corner * 0.5 + 0.5;
    gl_Position = design_to_clip(u_splat_rect.xy + unit * u_splat_rect.zw);
    v_uv = unit;  // the first uploaded row, the band's top, is at v = 0
}
