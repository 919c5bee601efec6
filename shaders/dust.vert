#version 330 core
#include "common.glsl"

// Dense clouds: one GL point per weight vector, without the direction
// streak, which would be under a pixel long at these sizes. Reads the rows
// of points.vert per vertex instead of per instance, skipping the direction.
in vec3 in_position;
in vec3 in_color;
in float in_brightness;

uniform mat4 u_view_projection;
uniform vec4 u_cloud_rect;
uniform float u_dot_radius;
uniform float u_focus;

flat out vec4 v_color;
flat out float v_radius;

void main() {
    vec4 clip = u_view_projection * vec4(in_position, 1.0);
    vec2 ndc = clip.xy / clip.w;
    vec2 design = u_cloud_rect.xy + vec2(ndc.x * 0.5 + 0.5, 0.5 - ndc.y * 0.5) * u_cloud_rect.zw;
    gl_Position = design_to_clip(design);
    float depth = u_focus / max(clip.w, 0.1);
    v_radius = max(u_dot_radius * depth * u_design.x, 0.6);
    gl_PointSize = 2.0 * v_radius + 2.0;
    float fade = clamp(depth * depth, 0.35, 1.4);
    v_color = vec4(in_color * in_brightness * fade, 1.0);
}
