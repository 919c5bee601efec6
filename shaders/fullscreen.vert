#version 330 core

// A full-target triangle pair; u_flip_y turns the image upside down so that
// a readback, which starts at the bottom row, yields the top row first.
in vec2 in_corner;
uniform float u_flip_y;
out vec2 v_uv;

void main() {
    v_uv = in_corner * 0.5 + 0.5;
    gl_Position = vec4(in_corner.x, in_corner.y * u_flip_y, 0.0, 1.0);
}
