#version 330 core

// Converts the sRGB-encoded output image to BT.709 limited-range yuv420p, laid
// out so that reading this target back row by row, bottom row first, yields
// FFmpeg's yuv420p frame: the Y plane, then U, then V, with no padding.
//
// The target is width / pack texels wide (pack = 4 for RGBA8, 2 for RG8) and
// 3 / 2 * height rows tall, so each target row holds one frame width of bytes.
// Rows 0 .. height - 1 are the Y rows. Each later row holds two chroma rows of
// width / 2 bytes, U rows first and then V rows, which is the plane order
// because both planes are a whole number of chroma rows long.
//
// Each chroma sample is the mean of its 2x2 block, matching
// encode.rgb_to_yuv420p. Chroma is linear in R'G'B', so the mean is taken of the
// colours before the conversion. Byte positions come from additions and
// comparisons only, because integer division is slow on software rasterisers.

uniform sampler2D u_source;   // sRGB-encoded RGBA8 output image
uniform ivec2 u_frame_size;   // frame width and height in pixels, both even
uniform int u_pack;           // bytes per target texel: 4, or 2 when width % 4 != 0
uniform int u_source_flipped; // 1 when texel row 0 of u_source is the top row of the picture

out vec4 f_bytes;

const float KR = 0.2126;
const float KB = 0.0722;
const vec3 LUMA = vec3(KR, 1.0 - KR - KB, KB);

int source_row(int y_from_top) {
    return u_source_flipped != 0 ? y_from_top : u_frame_size.y - 1 - y_from_top;
}

vec3 source_pixel(int x, int row) {
    return texelFetch(u_source, ivec2(x, row), 0).rgb;
}

// U or V byte `column` of target row `row` (row >= frame height), unrounded.
float chroma_byte(int column, int row) {
    int half_width = u_frame_size.x / 2;
    int chroma_row = 2 * (row - u_frame_size.y);
    int chroma_column = column;
    if (column >= half_width) {
        chroma_row += 1;
        chroma_column -= half_width;
    }
    int half_height = u_frame_size.y / 2;
    bool is_v = chroma_row >= half_height;
    if (is_v) {
        chroma_row -= half_height;
    }
    int x = 2 * chroma_column;
    int top = source_row(2 * chroma_row);
    int bottom = source_row(2 * chroma_row + 1);
    vec3 mean = 0.25 * (source_pixel(x, top) + source_pixel(x + 1, top)
                        + source_pixel(x, bottom) + source_pixel(x + 1, bottom));
    float luma = dot(LUMA, mean);
    float difference = is_v ? (mean.r - luma) / (2.0 * (1.0 - KR))
                            : (mean.b - luma) / (2.0 * (1.0 - KB));
    return 128.0 + 224.0 * difference;
}

void main() {
    ivec2 texel = ivec2(gl_FragCoord.xy);
    int first_column = texel.x * u_pack;
    vec4 bytes = vec4(0.0);
    if (texel.y < u_frame_size.y) {
        // A Y row: four neighbouring pixels of one source row. With pack 2 the
        // last two are clamped reads whose results the RG8 target drops.
        int row = source_row(texel.y);
        int last = u_frame_size.x - 1;
        mat4x3 rgb = mat4x3(source_pixel(first_column, row),
                            source_pixel(first_column + 1, row),
                            source_pixel(min(first_column + 2, last), row),
                            source_pixel(min(first_column + 3, last), row));
        bytes = 16.0 + 219.0 * (LUMA * rgb);
    } else {
        bytes.x = chroma_byte(first_column, texel.y);
        bytes.y = chroma_byte(first_column + 1, texel.y);
        if (u_pack == 4) {
            bytes.z = chroma_byte(first_column + 2, texel.y);
            bytes.w = chroma_byte(first_column + 3, texel.y);
        }
    }
    // roundEven matches NumPy's rint in the reference; k / 255 stores k exactly.
    f_bytes = clamp(roundEven(bytes), 0.0, 255.0) / 255.0;
}
