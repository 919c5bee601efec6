
// Shared by composite.frag (RGBA for the preview and RGBA readback) and
// composite_yuv.frag (yuv420p readback): background, scene and bloom, tone
// mapping, sRGB encoding and dithering, for one pixel.
uniform sampler2D u_scene;      // premultiplied linear HDR colour
uniform sampler2D u_bloom;      // linear HDR glow
uniform float u_bloom_strength;
uniform float u_exposure;
uniform vec3 u_background;      // linear RGB at the edges
uniform vec3 u_background_glow; // linear RGB at the centre of the vignette
uniform float u_dither;         // 1 to dither, 0 to quantise plainly
uniform vec4 u_design_rect;     // design frame inside the target: x0, y0, x1, y1 in 0..1 uv

// Above the knee, values roll off smoothly towards 1 instead of clipping, so
// glowing cores turn white without a hard edge. A rational shoulder costs a
// division where exp() would cost several times more on a software rasteriser.
vec3 tone_map(vec3 c) {
    const float knee = 0.72;
    vec3 over = max(c - knee, 0.0);
    return min(c, knee) + (1.0 - knee) * over / (over + (1.0 - knee));
}

// sRGB encoding from three square roots (Chilliant's fit, within about half
// an 8-bit level of the exact curve above 0.0031 and exact below it), since
// pow() is the most expensive step of this pass on a software rasteriser.
vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    vec3 s1 = sqrt(c);
    vec3 s2 = sqrt(s1);
    vec3 s3 = sqrt(s2);
    vec3 fitted = 0.585122381 * s1 + 0.783140355 * s2 - 0.368262736 * s3;
    return mix(c * 12.92, fitted, step(0.0031308, c));
}

// Interleaved gradient noise: a fixed pattern, so still areas do not crawl
// from frame to frame.
float dither_noise(vec2 pixel) {
    return fract(52.9829189 * fract(dot(pixel, vec2(0.06711056, 0.00583715))));
}

vec3 composite_srgb(vec2 uv, vec2 pixel) {
    vec2 design_uv = (uv - u_design_rect.xy) / (u_design_rect.zw - u_design_rect.xy);
    vec2 from_center = (design_uv - vec2(0.46, 0.45)) * vec2(1.0, 1.6);
    float vignette = 1.0 / (1.0 + 3.0 * dot(from_center, from_center));
    vec3 background = mix(u_background, u_background_glow, vignette);
    vec4 scene = texture(u_scene, uv);
    vec3 color = background * (1.0 - clamp(scene.a, 0.0, 1.0)) + scene.rgb;
    color += texture(u_bloom, uv).rgb * u_bloom_strength;
    vec3 srgb = linear_to_srgb(tone_map(color * u_exposure));
    float noise = dither_noise(pixel) + dither_noise(pixel + 17.0) - 1.0;
    srgb += noise / 255.0 * u_dither;
    return srgb;
}
