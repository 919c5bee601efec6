#version 330 core
#include "common.glsl"

in vec2 v_pixel;
flat in vec2 v_p0;
flat in vec2 v_p1;
flat in vec2 v_prev;
flat in vec2 v_next;
flat in vec4 v_color0;
flat in vec4 v_color1;
flat in vec2 v_width;

out vec4 f_color;

// Distance from p to segment a-b, and the position along it (0..1) in h.
float segment_distance(vec2 p, vec2 a, vec2 b, out float h) {
    vec2 pa = p - a;
    vec2 ba = b - a;
    float denom = dot(ba, ba);
    h = denom > 0.0 ? clamp(dot(pa, ba) / denom, 0.0, 1.0) : 0.0;
    return length(pa - ba * h);
}

void main() {
    float h;
    float d = segment_distance(v_pixel, v_p0, v_p1, h);
    float width = mix(v_width.x, v_width.y, h);
    // Round joins without double coverage: the previous segment owns ties,
    // so each pixel near a join is drawn by exactly one of the two segments.
    float unused;
    if (v_prev != v_p0 && segment_distance(v_pixel, v_prev, v_p0, unused) <= d) discard;
    if (v_next != v_p1 && segment_distance(v_pixel, v_p1, v_next, unused) < d) discard;
    float coverage = edge_coverage(d - width);
    if (coverage <= 0.0) discard;
    f_color = mix(v_color0, v_color1, h) * coverage;
}
