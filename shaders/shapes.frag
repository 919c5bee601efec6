#version 330 core
#include "common.glsl"

in vec2 v_local;
flat in vec2 v_half;
flat in vec4 v_fill;
flat in vec4 v_stroke;
flat in vec4 v_shape;

out vec4 f_color;

// Signed distance to a rounded box with half size b and corner radius r.
float rounded_box(vec2 p, vec2 b, float r) {
    vec2 q = abs(p) - b + r;
    return length(max(q, 0.0)) + min(max(q.x, q.y), 0.0) - r;
}

void main() {
    float radius = min(v_shape.x, min(v_half.x, v_half.y));
    float d = rounded_box(v_local, v_half, radius);
    float inside = edge_coverage(d);
    float border = v_shape.y;
    float ring = border > 0.0 ? edge_coverage(abs(d + border * 0.5) - border * 0.5) : 0.0;
    vec4 color = v_fill * inside;
    color = v_stroke * ring + color * (1.0 - v_stroke.a * ring);
    // Outer glow: a soft falloff outside the edge in the border's colour.
    // It reaches zero exactly at the quad's margin, so no square edge shows.
    if (v_shape.z > 0.0 && d > 0.0) {
        float fall = clamp(1.0 - d / v_shape.z, 0.0, 1.0);
        float glow = fall * fall * fall * v_shape.w;
        color += vec4(v_stroke.rgb * glow, 0.0);
    }
    f_color = color;
}
