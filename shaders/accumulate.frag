#version 330 core

// Motion blur: adds one sub-frame's scene, scaled by its weight, into the
// accumulation target (blended with ONE, ONE).
in vec2 v_uv;
uniform sampler2D u_source;
uniform float u_weight;

out vec4 f_color;

void main() {
    f_color = texture(u_source, v_uv) * u_weight;
}
