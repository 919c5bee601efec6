#version 330 core
#include "composite_common.glsl"

// The last pass for the yuv420p readback, fused with the composite so that no
// RGBA image is written and read again. Each fragment covers one 2 x 2 block
// of the frame: it composites the four pixels exactly as composite.frag does,
// rounds them to 8 bits, and writes their BT.709 limited-range luma to the
// first target (one byte per channel) and the block's mean chroma to the
// second, as encode.rgb_to_yuv420p does. The recorder reorders the luma bytes
// into FFmpeg's Y plane.
uniform vec2 u_frame_size;     // frame width and height in pixels, both even
uniform int u_top_row_first;   // 1: target row 0 holds the picture's top rows

layout(location = 0) out vec4 f_luma;    // Y of (x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)
layout(location = 1) out vec4 f_chroma;  // U, V of the block

const float KR = 0.2126;
const float KB = 0.0722;
const vec3 LUMA = vec3(KR, 1.0 - KR - KB, KB);

vec3 pixel_rgb(vec2 pixel) {
    vec2 uv = pixel / u_frame_size;
    if (u_top_row_first != 0) {
        uv.y = 1.0 - uv.y;
    }
    vec3 srgb = composite_srgb(uv, pixel);
    return floor(clamp(srgb, 0.0, 1.0) * 255.0 + 0.5) / 255.0;
}

void main() {
    vec2 corner = floor(gl_FragCoord.xy) * 2.0 + 0.5;
    vec3 a = pixel_rgb(corner);
    vec3 b = pixel_rgb(corner + vec2(1.0, 0.0));
    vec3 c = pixel_rgb(corner + vec2(0.0, 1.0));
    vec3 d = pixel_rgb(corner + vec2(1.0, 1.0));
    vec4 luma = vec4(dot(LUMA, a), dot(LUMA, b), dot(LUMA, c), dot(LUMA, d));
    f_luma = (16.0 + 219.0 * luma) / 255.0;
    vec3 mean = 0.25 * (a + b + c + d);
    float y = dot(LUMA, mean);
    float u = (mean.b - y) / (2.0 * (1.0 - KB));
    float v = (mean.r - y) / (2.0 * (1.0 - KR));
    f_chroma = vec4((128.0 + 224.0 * vec2(u, v)) / 255.0, 0.0, 1.0);
}
