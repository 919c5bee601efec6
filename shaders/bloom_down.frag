#version 330 core

// One step down the bloom chain: four bilinear taps, each averaging 2 x 2
// texels, so a 4 x 4 footprint costs four reads. The first step also applies
// the soft threshold and weights taps by 1 / (1 + luma) (Karis average), so a
// single very bright pixel cannot flicker the glow as it moves.
in vec2 v_uv;
uniform sampler2D u_source;
uniform vec2 u_texel;       // 1 / source size
uniform int u_first;        // 1 on the full-size input
uniform float u_threshold;  // luminance where glow starts
uniform float u_knee;       // width of the soft transition below the threshold

out vec4 f_color;

float luma(vec3 c) { return dot(c, vec3(0.2126, 0.7152, 0.0722)); }

vec3 bright_part(vec3 c) {
    float l = luma(c);
    float soft = clamp(l - u_threshold + u_knee, 0.0, 2.0 * u_knee);
    soft = soft * soft / (4.0 * u_knee + 1e-5);
    float weight = max(soft, l - u_threshold) / max(l, 1e-5);
    return c * weight;
}

void main() {
    vec3 a = texture(u_source, v_uv + u_texel * vec2(-1.0, -1.0)).rgb;
    vec3 b = texture(u_source, v_uv + u_texel * vec2(1.0, -1.0)).rgb;
    vec3 c = texture(u_source, v_uv + u_texel * vec2(-1.0, 1.0)).rgb;
    vec3 d = texture(u_source, v_uv + u_texel * vec2(1.0, 1.0)).rgb;
    if (u_first == 1) {
        a = bright_part(a); b = bright_part(b); c = bright_part(c); d = bright_part(d);
        float wa = 1.0 / (1.0 + luma(a));
        float wb = 1.0 / (1.0 + luma(b));
        float wc = 1.0 / (1.0 + luma(c));
        float wd = 1.0 / (1.0 + luma(d));
        f_color = vec4((a * wa + b * wb + c * wc + d * wd) / (wa + wb + wc + wd), 1.0);
    } else {
        f_color = vec4((a + b + c + d) * 0.25, 1.0);
    }
}
