#version 330 core
#include "common.glsl"

// One instance is one weight vector: a soft dot with a tapering streak that
// points along the vector's direction, drawn as a quad around both.
in vec2 in_corner;        // -1..1; x along the streak, y across it
in vec3 in_position;      // cloud units
in vec3 in_direction;     // cloud units, any length above zero
in vec3 in_color;         // linear RGB of the region
in float in_brightness;   // 1.0 is the resting level; above 1 glows

uniform mat4 u_view_projection;
uniform vec4 u_cloud_rect;    // x, y, w, h of the cloud band in design pixels
uniform float u_dot_radius;   // design pixels at the camera's focal distance
uniform float u_streak;       // streak length in cloud units
uniform float u_focus;        // camera distance at which sizes are as given

out vec2 v_local;             // pixels from the dot's centre
flat out vec2 v_streak;       // streak vector in pixels
flat out float v_radius;      // dot radius in pixels
flat out vec4 v_color;        // premultiplied colour of the dot's core

vec2 cloud_to_design(vec4 clip) {
    vec2 ndc = clip.xy / clip.w;
    return u_cloud_rect.xy + vec2(ndc.x * 0.5 + 0.5, 0.5 - ndc.y * 0.5) * u_cloud_rect.zw;
}

void main() {
    vec4 clip = u_view_projection * vec4(in_position, 1.0);
    vec3 direction = in_direction / max(length(in_direction), 1e-6);
    vec4 tip_clip = u_view_projection * vec4(in_position + direction * u_streak, 1.0);
    vec2 center = cloud_to_design(clip);
    vec2 streak = cloud_to_design(tip_clip) - center;
    // Depth cues: nearer vectors are larger and brighter.
    float depth = u_focus / max(clip.w, 0.1);
    float radius = u_dot_radius * depth;
    float fade = clamp(depth * depth, 0.35, 1.4);

    float len = length(streak);
    vec2 along = len > 1e-3 ? streak / len : vec2(1.0, 0.0);
    vec2 across = vec2(-along.y, along.x);
    // The halo reaches 2.5 radii; one pixel more leaves room for anti-aliasing.
    float pad = radius * 2.5 + 1.0 / u_design.x;
    vec2 mid = center + streak * 0.5;
    vec2 design = mid + along * in_corner.x * (len * 0.5 + pad) + across * in_corner.y * pad;
    gl_Position = design_to_clip(design);

    v_local = (design - center) * u_design.x;
    v_streak = streak * u_design.x;
    v_radius = max(radius * u_design.x, 0.75);
    v_color = vec4(in_color * in_brightness * fade, 1.0);
}
