#version 330 core

// One step up the bloom chain: this level's downsample plus the smaller
// level, upsampled with a four-tap tent. Adding in the shader avoids a
// blended pass, which costs several times more on a software rasteriser.
in vec2 v_uv;
uniform sampler2D u_level;   // this level's downsample
uniform sampler2D u_smaller; // the upsampled result of the level below
uniform vec2 u_texel;        // 1 / size of u_smaller
uniform float u_spread;      // share of the wider levels in the glow, 0..1

out vec4 f_color;

void main() {
    vec3 wide = texture(u_smaller, v_uv + u_texel * vec2(-0.5, -0.5)).rgb
              + texture(u_smaller, v_uv + u_texel * vec2(0.5, -0.5)).rgb
              + texture(u_smaller, v_uv + u_texel * vec2(-0.5, 0.5)).rgb
              + texture(u_smaller, v_uv + u_texel * vec2(0.5, 0.5)).rgb;
    f_color = vec4(texture(u_level, v_uv).rgb + wide * 0.25 * u_spread, 1.0);
}
