// Shared by every scene-pass program: the mapping from design pixels (a
// 1080 x 1920 portrait frame, y down) to clip space of the current target.

// x: design-to-target scale, yz: target offset in pixels, w: unused.
uniform vec4 u_design;
// Size of the render target in pixels.
uniform vec2 u_target_size;

vec2 design_to_pixels(vec2 design) {
    return design * u_design.x + u_design.yz;
}

vec4 design_to_clip(vec2 design) {
    vec2 pixels = design_to_pixels(design);
    vec2 ndc = pixels / u_target_size * 2.0 - 1.0;
    return vec4(ndc.x, -ndc.y, 0.0, 1.0);
}

// Coverage of a shape edge at signed distance d (pixels, negative inside),
// anti-aliased over one pixel.
float edge_coverage(float d) {
    return clamp(0.5 - d, 0.0, 1.0);
}
