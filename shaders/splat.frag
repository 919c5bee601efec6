#version 330 core

// Dense clouds on a software rasteriser: each texel holds the light of the
// vectors that landed on it, spread bilinearly over their four nearest
// pixels. Blended like the sprites: mostly additive, a little occluding.
in vec2 v_uv;
uniform sampler2D u_splat;

out vec4 f_color;

void main() {
    vec3 light = texture(u_splat, v_uv).rgb;
    float cover = min(max(light.r, max(light.g, light.b)), 1.0);
    if (cover <= 0.002) discard;
    f_color = vec4(light, cover * 0.35);
}
