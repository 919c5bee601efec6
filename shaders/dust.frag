#version 330 core
#include "common.glsl"

flat in vec4 v_color;
flat in float v_radius;

out vec4 f_color;

void main() {
    float r = length(gl_PointCoord - 0.5) * (2.0 * v_radius + 2.0);
    float light = edge_coverage(r - v_radius);
    if (light <= 0.002) discard;
    f_color = vec4(v_color.rgb * light, light * 0.35);
}
