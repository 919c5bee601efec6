#version 330 core
#include "common.glsl"

in vec2 v_uv;
flat in vec4 v_color;
flat in vec2 v_style;

uniform sampler2D u_atlas;
uniform float u_sdf_edge;        // atlas value on the glyph outline, 0..1
uniform float u_sdf_px_per_unit; // atlas texels per unit of atlas value (the spread scale)

out vec4 f_color;

void main() {
    float value = texture(u_atlas, v_uv).r;
    // Atlas texels per screen pixel, so the distance below is in screen pixels.
    vec2 texels = fwidth(v_uv) * vec2(textureSize(u_atlas, 0));
    float texels_per_pixel = max(0.5 * (texels.x + texels.y), 1e-4);
    float d = (value - u_sdf_edge) * u_sdf_px_per_unit / texels_per_pixel;
    float fill = clamp(d + 0.5, 0.0, 1.0);
    float outline = clamp(d + v_style.x + 0.5, 0.0, 1.0) * v_style.y * v_color.a;
    // A dark outline under the fill keeps text legible over glowing points.
    vec4 color = v_color * fill + vec4(0.0, 0.0, 0.0, outline) * (1.0 - fill * v_color.a);
    if (color.a <= 0.0 && fill <= 0.0) discard;
    f_color = color;
}
