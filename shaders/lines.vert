#version 330 core
#include "common.glsl"

// One instance is one segment of a polyline; its neighbours come along so
// the fragment shader can give every pixel to exactly one segment.
in vec2 in_corner;      // -1..1 across the quad
in vec4 in_segment;     // p0.xy, p1.xy in design pixels
in vec4 in_neighbours;  // previous start.xy, next end.xy (equal to p0 / p1 when absent)
in vec4 in_color0;      // premultiplied colour at p0
in vec4 in_color1;      // premultiplied colour at p1
in vec2 in_width;       // line half-width at p0 and p1, in design pixels

out vec2 v_pixel;
flat out vec2 v_p0;
flat out vec2 v_p1;
flat out vec2 v_prev;
flat out vec2 v_next;
flat out vec4 v_color0;
flat out vec4 v_color1;
flat out vec2 v_width;

void main() {
    vec2 p0 = in_segment.xy;
    vec2 p1 = in_segment.zw;
    vec2 axis = p1 - p0;
    float len = length(axis);
    vec2 dir = len > 1e-4 ? axis / len : vec2(1.0, 0.0);
    vec2 normal = vec2(-dir.y, dir.x);
    float pad = max(in_width.x, in_width.y) + 2.0 / u_design.x;
    vec2 along = in_corner.x < 0.0 ? p0 - dir * pad : p1 + dir * pad;
    vec2 design = along + normal * pad * in_corner.y;
    gl_Position = design_to_clip(design);
    v_pixel = design_to_pixels(design);
    v_p0 = design_to_pixels(p0);
    v_p1 = design_to_pixels(p1);
    v_prev = design_to_pixels(in_neighbours.xy);
    v_next = design_to_pixels(in_neighbours.zw);
    v_color0 = in_color0;
    v_color1 = in_color1;
    v_width = in_width * u_design.x;
}
