#version 330 core
#include "composite_common.glsl"

// The last pass for the preview and the RGBA readback: one output pixel per
// fragment, quantised to 8 bits by the RGBA8 target.
in vec2 v_uv;
out vec4 f_color;

void main() {
    f_color = vec4(composite_srgb(v_uv, gl_FragCoord.xy), 1.0);
}
