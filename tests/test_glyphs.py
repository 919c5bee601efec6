"""Tests of the SDF glyph atlas and text layout, on the shipped Inter fonts only."""

import logging
import time

import freetype
import numpy as np
import pytest

from hyperloss_gl.render.glyphs import (
    EDGE_VALUE,
    ELLIPSIS,
    SHRINK_FACTOR,
    TAB_WIDTH_SPACES,
    AtlasFullError,
    GlyphAtlas,
)
from hyperloss_gl.resources import font_path

SENTENCE = "Training a language model means nudging billions of numbers"


@pytest.fixture(scope="module")
def shared_atlas():
    """Atlas for tests that do not depend on which glyphs it already contains."""
    return GlyphAtlas(font_path("Regular"))


@pytest.fixture
def fresh_atlas():
    """Atlas that contains only the glyphs rendered at construction."""
    return GlyphAtlas(font_path("Regular"))


def atlas_cell(atlas, uv_row):
    """Return the atlas texels under one quad's uvs."""
    u0, v0, u1, v1 = np.rint(np.asarray(uv_row, dtype=np.float64) * atlas.size).astype(int)
    return atlas.pixels[v0:v1, u0:u1]


def outline_x_min_px(path, char, em_px):
    """Return the left edge of a glyph's unhinted outline in pixels at em_px."""
    face = freetype.Face(str(path))
    face.set_pixel_sizes(0, em_px)
    face.load_char(char, freetype.FT_LOAD_DEFAULT | freetype.FT_LOAD_NO_HINTING)
    return face.glyph.outline.get_bbox().xMin / 64


# SDF values ---------------------------------------------------------------------------------


def test_sdf_values_across_o(shared_atlas):
    run = shared_atlas.layout("O", shared_atlas.em_px)
    cell = atlas_cell(shared_atlas, run.uvs[0])
    middle_row = cell[cell.shape[0] // 2].astype(np.int64)
    width = len(middle_row)
    stroke_centre = middle_row[: width // 2].max()
    hole = middle_row[width // 2]
    margin = middle_row[0]

    assert stroke_centre > EDGE_VALUE
    assert hole < EDGE_VALUE
    assert margin < EDGE_VALUE
    assert stroke_centre > hole


def test_sdf_edge_matches_outline(shared_atlas):
    em_px = shared_atlas.em_px
    run = shared_atlas.layout("O", em_px)
    cell = atlas_cell(shared_atlas, run.uvs[0])
    row = cell[cell.shape[0] // 2].astype(np.float64)
    inside = int(np.argmax(row >= EDGE_VALUE))
    crossing = inside - 1 + (EDGE_VALUE - row[inside - 1]) / (row[inside] - row[inside - 1])
    # Texel i of the cell is centred at quad x0 + i + 0.5 when size_px == em_px.
    edge_x = run.quads[0, 0] + crossing + 0.5
    expected_x = outline_x_min_px(font_path("Regular"), "O", em_px)

    assert abs(edge_x - expected_x) < 0.1


def test_sdf_slope_per_texel(shared_atlas):
    run = shared_atlas.layout("O", shared_atlas.em_px)
    cell = atlas_cell(shared_atlas, run.uvs[0])
    row = cell[cell.shape[0] // 2].astype(np.int64)
    inside = int(np.argmax(row >= EDGE_VALUE))
    outside_steps = np.diff(row[inside - 4 : inside + 1])
    expected_step = 128 / shared_atlas.spread_px

    assert np.all(np.abs(outside_steps - expected_step) <= 1)


def test_atlas_pixels_shape_and_dtype(shared_atlas):
    assert shared_atlas.pixels.shape == (shared_atlas.size, shared_atlas.size)
    assert shared_atlas.pixels.dtype == np.uint8


# layout() -----------------------------------------------------------------------------------


def test_quads_lie_within_advance(shared_atlas):
    run = shared_atlas.layout("Hello world", 48)
    margin = run.sdf_spread_px
    texel = 48 / shared_atlas.em_px
    inner_x0 = run.quads[:, 0] + margin
    inner_x1 = run.quads[:, 2] - margin

    # Bitmaps round the outline box out to whole texels, so allow one texel of slack.
    assert np.all(inner_x0 >= -texel)
    assert np.all(inner_x1 <= run.advance + texel)
    assert np.all(run.quads[:, 1] + margin >= -run.ascender - texel)
    assert np.all(run.quads[:, 3] - margin <= run.descender + texel)


def test_quad_size_matches_cell(shared_atlas):
    run = shared_atlas.layout("g", 32)
    cell = atlas_cell(shared_atlas, run.uvs[0])
    scale = 32 / shared_atlas.em_px

    assert run.quads[0, 2] - run.quads[0, 0] == pytest.approx(cell.shape[1] * scale)
    assert run.quads[0, 3] - run.quads[0, 1] == pytest.approx(cell.shape[0] * scale)


def test_layout_array_types(shared_atlas):
    run = shared_atlas.layout("Loss", 40)

    assert run.quads.shape == (4, 4)
    assert run.quads.dtype == np.float32
    assert run.uvs.shape == (4, 4)
    assert run.uvs.dtype == np.float32
    assert run.char_index.dtype == np.int32
    assert run.char_index.tolist() == [0, 1, 2, 3]
    assert np.all((run.uvs >= 0) & (run.uvs <= 1))


def test_layout_scales_linearly(shared_atlas):
    small = shared_atlas.layout("Gradient", 20)
    large = shared_atlas.layout("Gradient", 40)

    assert large.advance == pytest.approx(2 * small.advance)
    np.testing.assert_allclose(large.quads, 2 * small.quads, rtol=1e-5)
    np.testing.assert_array_equal(large.uvs, small.uvs)


def test_kerning_narrows_pairs(shared_atlas):
    for pair in ("AV", "To"):
        together = shared_atlas.layout(pair, 64).advance
        apart = sum(shared_atlas.layout(char, 64).advance for char in pair)
        assert together < apart, pair


def test_pen_x_per_character(shared_atlas):
    text = "To be"
    run = shared_atlas.layout(text, 50)

    assert run.pen_x.shape == (len(text) + 1,)
    assert run.pen_x[0] == 0
    assert run.pen_x[-1] == pytest.approx(run.advance)
    assert np.all(np.diff(run.pen_x) >= 0)
    assert run.pen_x[1] == pytest.approx(run.advance - shared_atlas.layout("o be", 50).advance)


def test_whitespace_draws_no_quad(shared_atlas):
    spaced = shared_atlas.layout("a b", 40)
    joined = shared_atlas.layout("ab", 40)
    blank = shared_atlas.layout("   ", 40)

    assert spaced.char_index.tolist() == [0, 2]
    assert spaced.advance > joined.advance
    assert len(blank.quads) == 0
    assert blank.advance > 0


def test_tab_advances_several_spaces(shared_atlas):
    tab = shared_atlas.layout("\t", 40).advance
    space = shared_atlas.layout(" ", 40).advance

    assert len(shared_atlas.layout("\t", 40).quads) == 0
    assert tab == pytest.approx(TAB_WIDTH_SPACES * space)


def test_newline_laid_out_as_space(shared_atlas):
    newline = shared_atlas.layout("a\nb", 40)
    space = shared_atlas.layout("a b", 40)

    np.testing.assert_array_equal(newline.quads, space.quads)
    assert newline.char_index.tolist() == [0, 2]


def test_layout_empty_string(shared_atlas):
    run = shared_atlas.layout("", 40)

    assert run.quads.shape == (0, 4)
    assert run.uvs.shape == (0, 4)
    assert run.char_index.shape == (0,)
    assert run.advance == 0
    assert run.pen_x.tolist() == [0.0]
    assert run.line_height > 0


def test_layout_rejects_bad_size(shared_atlas):
    for size in (0, -3, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="size_px"):
            shared_atlas.layout("a", size)


def test_layout_returns_read_only_arrays(shared_atlas):
    run = shared_atlas.layout("cache", 30)

    with pytest.raises(ValueError):
        run.quads[0, 0] = 1.0
    with pytest.raises(ValueError):
        run.uvs[0, 0] = 1.0


def test_layout_time_after_warm_up(shared_atlas):
    text = "The loss falls as the model learns words"
    assert len(text) == 40
    shared_atlas.layout(text, 64)
    calls = 500

    start = time.perf_counter()
    for _ in range(calls):
        shared_atlas.layout(text, 64)
    cached_s = (time.perf_counter() - start) / calls
    # A new size misses the run cache but reuses the shaping, as an animated size does.
    start = time.perf_counter()
    for call in range(calls):
        shared_atlas.layout(text, 30 + call * 0.01)
    resized_s = (time.perf_counter() - start) / calls

    assert cached_s < 1e-3
    assert resized_s < 1e-3


# Missing glyphs and atlas growth ---------------------------------------------------------


def test_missing_glyph_draws_box(fresh_atlas, caplog):
    caplog.set_level(logging.WARNING, logger="hyperloss_gl")
    run = fresh_atlas.layout("a漢b", 40)
    box = run.quads[run.char_index == 1]

    assert run.char_index.tolist() == [0, 1, 2]
    assert len(box) == 1
    assert box[0, 2] > box[0, 0]
    assert box[0, 3] > box[0, 1]
    assert atlas_cell(fresh_atlas, run.uvs[1]).max() > EDGE_VALUE


def test_missing_glyph_warns_once(fresh_atlas, caplog):
    caplog.set_level(logging.WARNING, logger="hyperloss_gl")
    fresh_atlas.layout("a漢bك", 40)
    first = [record.getMessage() for record in caplog.records]
    fresh_atlas.layout("漢 again", 40)
    fresh_atlas.layout("ك", 30)
    after_repeats = [record.getMessage() for record in caplog.records]
    fresh_atlas.layout("漢字", 40)
    after_new = [record.getMessage() for record in caplog.records]

    assert len(first) == 1
    assert "'漢'" in first[0]
    assert "'ك'" in first[0]
    assert "Inter-Regular.otf" in first[0]
    assert len(after_repeats) == 1
    assert len(after_new) == 2
    assert "'字'" in after_new[1]
    assert "'漢'" not in after_new[1]


def test_version_bumps_on_new_glyph(fresh_atlas):
    start = fresh_atlas.version
    fresh_atlas.layout("Hello, world!", 40)
    after_ascii = fresh_atlas.version
    before_pixels = fresh_atlas.pixels.copy()
    fresh_atlas.layout("é", 40)
    after_new = fresh_atlas.version
    fresh_atlas.layout("é", 40)
    fresh_atlas.layout("né", 25)
    after_repeat = fresh_atlas.version

    assert start == 1
    assert after_ascii == start
    assert after_new == start + 1
    assert after_repeat == after_new
    assert np.any(fresh_atlas.pixels != before_pixels)


def test_atlas_full_raises():
    with pytest.raises(AtlasFullError, match="larger size"):
        GlyphAtlas(font_path("Regular"), size=256)


def test_atlas_rejects_bad_arguments():
    with pytest.raises(ValueError, match="spread_px"):
        GlyphAtlas(font_path("Regular"), spread_px=1)
    with pytest.raises(ValueError, match="spread_px"):
        GlyphAtlas(font_path("Regular"), spread_px=33)
    with pytest.raises(FileNotFoundError):
        GlyphAtlas(font_path("Missing"))


def test_spread_sets_sdf_slope():
    atlas = GlyphAtlas(font_path("Bold"), spread_px=4, em_px=32, size=512)
    run = atlas.layout("l", 32)
    cell = atlas_cell(atlas, run.uvs[0])
    row = cell[cell.shape[0] // 2].astype(np.int64)
    inside = int(np.argmax(row >= EDGE_VALUE))
    steps = np.diff(row[inside - 2 : inside + 1])

    assert run.sdf_spread_px == pytest.approx(4)
    assert np.all(np.abs(steps - 32) <= 1)


# Determinism ---------------------------------------------------------------------------------


def test_layout_is_deterministic():
    texts = ["Loss: 2.31", "Überraschung", "a漢b", "AV To"]
    first = GlyphAtlas(font_path("SemiBold"))
    second = GlyphAtlas(font_path("SemiBold"))
    first_runs = [first.layout(text, 37.5) for text in texts]
    second_runs = [second.layout(text, 37.5) for text in texts]

    np.testing.assert_array_equal(first.pixels, second.pixels)
    assert first.version == second.version
    for run, other in zip(first_runs, second_runs, strict=True):
        np.testing.assert_array_equal(run.quads, other.quads)
        np.testing.assert_array_equal(run.uvs, other.uvs)
        np.testing.assert_array_equal(run.char_index, other.char_index)
        np.testing.assert_array_equal(run.pen_x, other.pen_x)


def test_fit_is_deterministic():
    first = GlyphAtlas(font_path("Regular")).fit(SENTENCE, 64, 500)
    second = GlyphAtlas(font_path("Regular")).fit(SENTENCE, 64, 500)

    assert first.size_px == second.size_px
    assert [run.text for run in first.lines] == [run.text for run in second.lines]
    for run, other in zip(first.lines, second.lines, strict=True):
        np.testing.assert_array_equal(run.quads, other.quads)


# fit() ---------------------------------------------------------------------------------------


def test_fit_wraps_to_two_lines(shared_atlas):
    one_line = shared_atlas.layout(SENTENCE, 40).advance
    max_width = one_line * 0.6
    block = shared_atlas.fit(SENTENCE, 40, max_width)

    assert len(block.lines) == 2
    assert block.size_px == 40
    assert block.truncated is False
    assert all(run.advance <= max_width for run in block.lines)
    assert " ".join(run.text for run in block.lines) == SENTENCE
    assert block.width <= max_width
    assert block.height == pytest.approx(2 * block.lines[0].line_height)


def test_fit_keeps_one_line_when_it_fits(shared_atlas):
    block = shared_atlas.fit("Loss", 40, 1000)

    assert [run.text for run in block.lines] == ["Loss"]
    assert block.size_px == 40


def test_fit_shrinks_when_needed(shared_atlas):
    two_lines_at_64 = shared_atlas.layout(SENTENCE, 64).advance / 2
    max_width = two_lines_at_64 * 0.8
    block = shared_atlas.fit(SENTENCE, 64, max_width, min_size_px=20)

    assert block.size_px < 64
    assert block.size_px >= 20
    assert len(block.lines) <= 2
    assert block.truncated is False
    assert all(run.advance <= max_width for run in block.lines)
    assert " ".join(run.text for run in block.lines) == SENTENCE


def test_fit_shrinks_one_step_at_a_time(shared_atlas):
    max_width = shared_atlas.layout(SENTENCE, 64).advance / 2 * 0.8
    block = shared_atlas.fit(SENTENCE, 64, max_width, min_size_px=20)
    previous_size = block.size_px / SHRINK_FACTOR
    at_previous_size = shared_atlas.fit(
        SENTENCE, previous_size, max_width, min_size_px=previous_size
    )

    assert block.size_px > 20
    assert at_previous_size.truncated is True


def test_fit_never_exceeds_max_width(shared_atlas):
    texts = [
        SENTENCE,
        "Supercalifragilisticexpialidocious tokens",
        "Loss\nfalls\nslowly over many steps",
        "  spaced   out\ttext  ",
        "a漢b " * 10,
    ]
    for text in texts:
        for max_width in (80, 150, 333.3, 700):
            for max_lines in (1, 2, 3):
                block = shared_atlas.fit(text, 48, max_width, max_lines=max_lines)
                assert len(block.lines) <= max_lines, (text, max_width, max_lines)
                assert block.width <= max_width, (text, max_width, max_lines)
                assert all(run.advance <= max_width for run in block.lines)


def test_fit_breaks_long_word(shared_atlas):
    word = "Supercalifragilisticexpialidocious"
    max_width = shared_atlas.layout(word, 20).advance * 0.7
    block = shared_atlas.fit(word, 40, max_width, min_size_px=20)

    assert block.size_px == 20
    assert len(block.lines) == 2
    assert "".join(run.text for run in block.lines) == word
    assert block.truncated is False
    assert all(run.advance <= max_width for run in block.lines)


def test_fit_truncates_with_ellipsis(shared_atlas):
    block = shared_atlas.fit(SENTENCE * 3, 40, 300, max_lines=2, min_size_px=30)
    last = block.lines[-1]

    assert len(block.lines) == 2
    assert block.size_px == 30
    assert block.truncated is True
    assert last.text.endswith(ELLIPSIS)
    assert last.advance <= 300
    assert SENTENCE.startswith(block.lines[0].text)


def test_fit_forced_line_breaks(shared_atlas):
    block = shared_atlas.fit("a\n\nb", 40, 500, max_lines=3)

    assert [run.text for run in block.lines] == ["a", "", "b"]
    assert block.line_starts == (0, 2, 3)
    assert block.baselines[1] - block.baselines[0] == pytest.approx(block.lines[0].line_height)


def test_fit_line_starts_index_text(shared_atlas):
    text = "one two three four five six"
    block = shared_atlas.fit(text, 40, 180, max_lines=3)

    assert len(block.lines) > 1
    for start, run in zip(block.line_starts, block.lines, strict=True):
        assert text[start : start + len(run.text)] == run.text


def test_fit_empty_string(shared_atlas):
    block = shared_atlas.fit("", 40, 500)

    assert block.lines == []
    assert block.width == 0
    assert block.height == 0


def test_fit_rejects_bad_arguments(shared_atlas):
    with pytest.raises(ValueError, match="max_width"):
        shared_atlas.fit("a", 40, 0)
    with pytest.raises(ValueError, match="max_lines"):
        shared_atlas.fit("a", 40, 100, max_lines=0)
    with pytest.raises(ValueError, match="min_size_px"):
        shared_atlas.fit("a", 40, 100, min_size_px=50)
