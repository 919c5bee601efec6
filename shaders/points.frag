#version 330 core
#include "common.glsl"

in vec2 v_local;
flat in vec2 v_streak;
flat in float v_radius;
flat in vec4 v_color;

out vec4 f_color;

void main() {
    // The dot: a solid disc with an anti-aliased rim and a soft halo.
    float r = length(v_local);
    float disc = edge_coverage(r - v_radius);
    float halo = exp(-2.2 * max(r - v_radius, 0.0) / v_radius) * 0.35;

    // The streak: a line from the centre towards the tip, thinner and
    // dimmer as it goes, so the direction reads at a glance.
    float len2 = dot(v_streak, v_streak);
    float h = len2 > 0.0 ? clamp(dot(v_local, v_streak) / len2, 0.0, 1.0) : 0.0;
    float d = length(v_local - v_streak * h);
    float width = v_radius * mix(0.55, 0.18, h);
    float streak = edge_coverage(d - width) * mix(0.85, 0.15, h);

    float light = max(max(disc, streak), halo * (1.0 - disc));
    if (light <= 0.002) discard;
    // Mostly additive: light adds up where vectors overlap, with a little
    // alpha so a dense cluster still hides what lies behind it.
    f_color = vec4(v_color.rgb * light, min(light, 1.0) * 0.35);
}
