"""Bad input through the real command line: scene and look files, text, and options.

Each case runs ``python -m hyperloss_gl`` in ``tmp_path``. It checks the exit status
(2 for invalid input), the message, that no traceback is printed, and what is on disk
afterwards. Cases that are valid, however extreme, must render a real image.
test_cli.py and test_scene_file.py cover the cases that this file does not repeat.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import scene_dict
from test_cli import run_cli, write
from hyperloss_gl import cli
from hyperloss_gl.look import load_look
from hyperloss_gl.render.batches import BatchBuilder
from hyperloss_gl.errors import UsageError
from hyperloss_gl.render.glyphs import GlyphAtlas, preload_glyphs
from hyperloss_gl.render.renderer import ATLAS_SIZE, FONT_WEIGHTS
from hyperloss_gl.resources import DEFAULT_LOOK, DEFAULT_SCENE, font_path
from hyperloss_gl.scene import STAGES, Animator, layout, load_scene
from hyperloss_gl.scene.description import MAX_TEXT

TINY = ("--size", "64x112", "--fps", "10")
"""Output options that keep every rendering in this file fast."""


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} missing from: {result.stderr}"


def rejected(tmp_path: Path, *args, fragments=()) -> subprocess.CompletedProcess:
    """Run a still that must be rejected; check the message and that nothing was written."""
    before = files_under(tmp_path)
    result = run_cli(*args, "--still", "1", "--output", "still.png", *TINY, cwd=tmp_path)
    assert_usage_error(result, *fragments)
    assert files_under(tmp_path) == before
    return result


def assert_real_image(path: Path, size=(64, 112)) -> None:
    """Check a still: a PNG of ``size`` with some contrast, permissions from the umask."""
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with Image.open(path) as image:
        assert image.size == size
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 1.0, f"{path} is a flat image"


def render_still(tmp_path: Path, scene: Path, t: float = 5.0) -> subprocess.CompletedProcess:
    """Render the still at ``t`` of ``scene``; check the exit status and the image."""
    result = run_cli("--scene", scene, "--still", t, "--output", "still.png", *TINY,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_real_image(tmp_path / "still.png")
    return result


# Scene and look files that cannot be read


def test_scene_fifo_without_writer(tmp_path):
    os.mkfifo(tmp_path / "scene.toml")
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=("scene.toml is not a regular file", "give the path of a .toml file"))


def test_scene_endless_device(tmp_path):
    rejected(tmp_path, "--scene", "/dev/zero", fragments=("/dev/zero is larger than 16 MiB",))


def test_scene_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode; the FIFO, folder and device cases "
                    "cover paths that cannot be read")
    path = write(tmp_path, scene_dict())
    path.chmod(0)
    rejected(tmp_path, "--scene", path, fragments=("cannot read scene file", "Permission"))


@pytest.mark.parametrize("case", ["not found", "folder", "fifo", "empty", "not toml"])
def test_look_file_unreadable(tmp_path, case):
    look = tmp_path / "look.toml"
    if case == "folder":
        look.mkdir()
    elif case == "fifo":
        os.mkfifo(look)
    elif case == "empty":
        look.write_text("\n  \n")
    elif case == "not toml":
        look.write_text("[colors]\ncurve = #FF0000\n")
    expected = {
        "not found": "look file not found: look.toml",
        "folder": "look file look.toml is a folder",
        "fifo": "look file look.toml is not a regular file",
        "empty": "look file look.toml is empty",
        "not toml": "(at line 2, column 9)",
    }[case]
    rejected(tmp_path, "--look", "look.toml", fragments=(expected,))


def test_scene_not_toml_names_column(tmp_path):
    write(tmp_path, 'title = "x"\n[video]\nwidth = 1080 1920\n')
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=("not valid TOML", "(at line 3, column 14)"))


# Scene contents that are invalid


def scene_with(**changes) -> dict:
    data = scene_dict()
    for key, value in changes.items():
        data[key] = value
    return data


def test_missing_required_keys(tmp_path):
    data = scene_dict()
    del data["loss"]
    del data["examples"][0]["output"]
    write(tmp_path, data)
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=("2 problem(s)", "missing key 'loss' (a table)",
                        "missing key 'examples[0].output' (a string)"))


def test_duplicate_region_names(tmp_path):
    data = scene_dict()
    data["regions"][1]["name"] = data["regions"][0]["name"]
    write(tmp_path, data)
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=("'regions[1].name' = 'Region 0'", "names must be unique"))


@pytest.mark.parametrize("color", ["#FFF", "orange", "#GG0000", "FF9F43"])
def test_region_color_not_hex(tmp_path, color):
    data = scene_dict()
    data["regions"][1]["color"] = color
    write(tmp_path, data)
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=(f"'regions[1].color' = {color!r}", '"#RRGGBB"'))


@pytest.mark.parametrize("seconds", [0, -0.5])
def test_stage_duration_not_positive(tmp_path, seconds):
    data = scene_dict()
    data["timing"] = {"backprop": seconds}
    write(tmp_path, data)
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=(f"'timing.backprop' = {seconds}", "allowed values are 0.01 to 600.0"))


def test_video_over_an_hour(tmp_path):
    data = scene_dict(examples=1, regions=1)
    data["timing"] = {stage: 600.0 for stage in STAGES[:6]}
    write(tmp_path, data)
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=("the scene lasts 3605 s", "at most 3600 s"))


@pytest.mark.parametrize("examples, regions, vectors, fragment", [
    (201, 2, 1, "'examples' has 201 entries; allowed are 1 to 200"),
    (1, 51, 1, "'regions' has 51 entries; allowed are 1 to 50"),
    (1, 1, 100_001, "'regions[0].vectors' = 100001 is invalid: allowed values are 0 to 100000"),
    (1, 3, 70_000, "the regions have 210000 vectors in all; at most 200000"),
])
def test_counts_over_limit(tmp_path, examples, regions, vectors, fragment):
    write(tmp_path, scene_dict(examples=examples, regions=regions, vectors=vectors))
    rejected(tmp_path, "--scene", "scene.toml", fragments=(fragment,))


def test_look_file_mistakes(tmp_path):
    (tmp_path / "look.toml").write_text(
        '[colors]\ncurv = "#FF0000"\ntracer = "red"\n[glow]\nstrength = "high"\n'
        "[sizes]\ncurve_width = 1000.0\n")
    rejected(tmp_path, "--look", "look.toml",
             fragments=("4 problem(s)", "unknown key 'colors.curv'; did you mean 'curve'?",
                        "'colors.tracer' = 'red' is invalid", "'glow.strength' must be a number",
                        "'sizes.curve_width' = 1000.0 is invalid: allowed values are 0.5 to 60.0"))


# Extreme scenes within the limits render a real image


@pytest.mark.parametrize("examples, regions, vectors, zero_loss", [
    (1, 1, 0, True), (200, 2, 1, False), (2, 50, 1, False), (1, 2, 100_000, False),
])
def test_extreme_scene_renders(tmp_path, examples, regions, vectors, zero_loss):
    data = scene_dict(examples=examples, regions=regions, vectors=vectors)
    if zero_loss:
        data["loss"]["values"] = [0.0] * len(data["loss"]["values"])
    render_still(tmp_path, write(tmp_path, data), t=3.0)


# Text: empty, too long for its row, and characters the font lacks


def test_empty_title_renders_no_title(tmp_path):
    data = scene_with(title="")
    path = write(tmp_path, data)
    render_still(tmp_path, path)
    atlases = {key: GlyphAtlas(font_path(weight)) for key, weight in FONT_WEIGHTS.items()}
    scene = load_scene(path)
    boxes = BatchBuilder(scene, load_look(), atlases).build(Animator(scene).state_at(5.0))
    tops = [y0 for _, _, y0, _, _ in boxes.text_boxes]
    assert min(tops) > layout.TITLE_BASELINE


@pytest.mark.parametrize("key", ["input", "output"])
@pytest.mark.parametrize("text", ["", "  \t "])
def test_empty_example_text_rejected(tmp_path, key, text):
    data = scene_dict()
    data["examples"][1][key] = text
    write(tmp_path, data)
    rejected(tmp_path, "--scene", "scene.toml",
             fragments=(f"'examples[1].{key}' = {text!r} is invalid: must contain visible "
                        "characters",))


@pytest.mark.parametrize("tokens, fragment", [
    ([], "'examples[0].tokens' = [] is invalid: use an array of one or more non-empty strings"),
    (["W" * 150, "W" * 51], "'examples[0].tokens' has 201 characters in all; at most 200"),
])
def test_bad_tokens_rejected(tmp_path, tokens, fragment):
    data = scene_dict()
    data["examples"][0]["tokens"] = tokens
    write(tmp_path, data)
    rejected(tmp_path, "--scene", "scene.toml", fragments=(fragment,))


def long_text_scene() -> dict:
    """A scene whose every text is at the length limit, in the shapes hardest to fit."""
    data = scene_dict(examples=3)
    data["title"] = ("W" * 40 + " ") * 4 + "W" * (MAX_TEXT - 164)
    data["examples"][0]["input"] = " ".join(["tok"] * 50)[:MAX_TEXT]
    data["examples"][0]["output"] = "W" * MAX_TEXT
    data["examples"][1]["input"] = "W" * MAX_TEXT
    data["examples"][1]["output"] = "\n".join(["line"] * 40)[:MAX_TEXT]
    data["examples"][2]["tokens"] = ["W" * MAX_TEXT]
    data["examples"][2]["output"] = ("averylongword " * 15)[:MAX_TEXT]
    return data


def test_texts_at_limit_stay_in_safe_zone(tmp_path):
    scene = load_scene(write(tmp_path, long_text_scene()))
    assert len(scene.title) == MAX_TEXT
    atlases = {key: GlyphAtlas(font_path(weight)) for key, weight in FONT_WEIGHTS.items()}
    builder = BatchBuilder(scene, load_look(), atlases)
    animator = Animator(scene)
    safe = layout.SAFE
    outside = []
    for t in np.arange(0.0, animator.timeline.duration, 0.1):
        for text, x0, y0, x1, y1 in builder.build(animator.state_at(float(t))).text_boxes:
            if x0 < safe.x - 1 or x1 > safe.right + 1 or y0 < safe.y - 1 or y1 > safe.bottom + 1:
                outside.append(f"t={t:.1f} {text[:20]!r}: {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f}")
    assert not outside, "\n".join(outside[:10])


def test_texts_at_limit_render(tmp_path):
    render_still(tmp_path, write(tmp_path, long_text_scene()), t=4.5)


def test_missing_glyphs_one_warning(tmp_path):
    data = scene_dict()
    data["title"] = "训练 🎉"
    data["examples"][0]["input"] = "مرحبا بالعالم"
    data["examples"][0]["output"] = "你好，世界"
    result = render_still(tmp_path, write(tmp_path, data), t=4.5)
    warnings = [line for line in result.stderr.splitlines() if "have no glyph" in line]
    assert len(warnings) == 1, result.stderr
    for char in "训🎉مر你好，界":
        assert f"(U+{ord(char):04X})" in warnings[0]
    assert "replacement glyph .notdef" in warnings[0]


def test_missing_glyphs_drawn_as_boxes():
    atlas = GlyphAtlas(font_path("SemiBold"))
    text = "你好，世界 🎉"
    run = atlas.layout(text, 40.0)
    assert len(run.quads) == len(text.replace(" ", ""))
    widths = run.quads[:, 2] - run.quads[:, 0]
    assert (widths > 10.0).all()


def test_four_scripts_fit_glyph_atlas():
    # Inter has no U+0149, a deprecated letter.
    latin = "".join(chr(code) for code in range(0xC0, 0x180) if code != 0x149)
    greek = "".join(chr(code) for code in range(0x391, 0x3CA) if code != 0x3A2)
    cyrillic = "".join(chr(code) for code in range(0x400, 0x460))
    atlas = GlyphAtlas(font_path("SemiBold"), size=ATLAS_SIZE)
    missing = preload_glyphs({atlas: [latin, greek, cyrillic]})
    assert missing == []
    assert len(atlas._cells) > 400


def test_full_glyph_atlas_names_limit():
    atlas = GlyphAtlas(font_path("SemiBold"), size=768)
    with pytest.raises(UsageError) as caught:
        preload_glyphs({atlas: ["".join(chr(code) for code in range(0x400, 0x460))]})
    message = str(caught.value)
    assert "use more different characters than the glyph atlas of Inter-SemiBold.otf" in message
    assert "768x768 texels" in message


# Options


def test_from_equal_to_rejected(tmp_path):
    result = run_cli("--record", "out.mp4", "--from", "3", "--to", "3", *TINY, cwd=tmp_path)
    assert_usage_error(result, "--from 3 must be before --to 3")
    assert files_under(tmp_path) == set()


def test_to_past_end_records_to_end(tmp_path):
    duration = load_scene().duration
    result = run_cli("--record", "out.mp4", "--from", duration - 0.3, "--to", "500", "--no-sound",
                     *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--to 500 is past the end" in result.stderr
    assert "recorded 3 frames" in result.stderr
    assert files_under(tmp_path) == {Path("out.mp4")}


def test_still_at_video_end(tmp_path):
    duration = load_scene().duration
    result = run_cli("--still", repr(duration), "--output", "end.png", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_real_image(tmp_path / "end.png")


@pytest.mark.parametrize("value, fragment", [
    ("-1", "invalid still time '-1'; allowed are 0.0 or more"),
    ("nan", "invalid still time 'nan'"),
    ("1e400", "invalid still time '1e400'"),
])
def test_still_time_invalid(tmp_path, value, fragment):
    result = run_cli(f"--still={value}", "--output", "x.png", cwd=tmp_path)
    assert_usage_error(result, fragment)
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize("args, fragment", [
    (("--record", "out.avi"), "the extension must be one of .mp4, .mov, .mkv"),
    (("--record", "out"), "the extension must be one of .mp4, .mov, .mkv"),
    (("--still", "1", "--output", "x.jpg"), "still output x.jpg must end in .png"),
    (("--output", "x.png"), "--output x.png names the image of --still"),
])
def test_output_name_mismatch_rejected_before_rendering(tmp_path, args, fragment):
    result = run_cli(*args, *TINY, cwd=tmp_path)
    assert_usage_error(result, fragment)
    assert "OpenGL" not in result.stderr, "rejected only after creating a context"
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize("args", [("--record", "out.mp4"), ("--still", "1", "--output", "out.png")])
def test_output_path_is_folder(tmp_path, args):
    (tmp_path / args[-1]).mkdir()
    result = run_cli(*args, *TINY, cwd=tmp_path)
    assert_usage_error(result, f"{args[-1]} is a folder")
    assert files_under(tmp_path) == {Path(args[-1])}


@pytest.mark.parametrize("args, log_line", [
    (("--record", "new/deeper/out.mp4", "--to", "0.3"), "Created output folder"),
    (("--still", "1", "--output", "new/deeper/out.png"), "created folder new/deeper"),
])
def test_missing_output_folder_created(tmp_path, args, log_line):
    result = run_cli(*args, *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert log_line in result.stderr
    output = next(arg for arg in args if arg.startswith("new/"))
    assert files_under(tmp_path / "new") == {Path("deeper"), Path("deeper") / Path(output).name}


@pytest.mark.parametrize("args, fragment", [
    (("--record", "sub/out.mp4"), "sub: File exists"),
    (("--still", "1", "--output", "sub/out.png"), "it or a folder above it is a file"),
])
def test_output_under_a_file(tmp_path, args, fragment):
    (tmp_path / "sub").write_text("a file, not a folder")
    result = run_cli(*args, *TINY, cwd=tmp_path)
    assert_usage_error(result, fragment)
    assert (tmp_path / "sub").read_text() == "a file, not a folder"
    assert files_under(tmp_path) == {Path("sub")}


@pytest.mark.parametrize("args", [("--record", "/proc/out.mp4"),
                                  ("--still", "1", "--output", "/proc/out.png")])
def test_output_in_proc_rejected(tmp_path, args):
    result = run_cli(*args, *TINY, cwd=tmp_path)
    assert_usage_error(result, "/proc is not writable")
    assert files_under(tmp_path) == set()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder bind-mounted read-only onto itself, with one file in it; skips without mount."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "old.mp4").write_bytes(b"earlier recording")
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a read-only bind mount needs root and the mount command")
    commands = [["mount", "--bind", str(folder), str(folder)],
                ["mount", "-o", "remount,ro,bind", str(folder)]]
    for index, command in enumerate(commands):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            if index:
                subprocess.run(["umount", str(folder)], check=True)
            pytest.skip(f"read-only bind mount not permitted here: {result.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("args", [("--record", "locked/old.mp4", "--to", "0.3"),
                                  ("--still", "1", "--output", "locked/new.png")])
def test_output_in_read_only_folder(tmp_path, read_only_folder, args):
    result = run_cli(*args, *TINY, cwd=tmp_path)
    assert_usage_error(result, "locked is not writable", "Read-only file system")
    assert sorted(os.listdir(read_only_folder)) == ["old.mp4"]
    assert (read_only_folder / "old.mp4").read_bytes() == b"earlier recording"


# What a new user tries


def test_option_typo_suggests_option(tmp_path):
    result = run_cli("--recrod", "out.mp4", cwd=tmp_path)
    assert_usage_error(result, "unrecognized arguments: --recrod out.mp4",
                       "did you mean --record?")
    assert files_under(tmp_path) == set()


def test_unicode_and_spaces_in_paths(tmp_path):
    folder = tmp_path / "my vidéos 🎬"
    folder.mkdir()
    shutil.copy(DEFAULT_SCENE, folder / "scène (copy).toml")
    shutil.copy(DEFAULT_LOOK, folder / "look it's.toml")
    result = run_cli("--scene", folder / "scène (copy).toml", "--look", folder / "look it's.toml",
                     "--record", folder / "out 1 'final'.mp4", "--to", "0.5", *TINY,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "recorded 5 frames" in result.stderr
    assert (folder / "out 1 'final'.mp4").stat().st_size > 0
    assert sorted(os.listdir(folder)) == ["look it's.toml", "out 1 'final'.mp4",
                                          "scène (copy).toml"]


def test_size_above_codec_limit_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="hyperloss_gl"):
        cli._warn_above_codec_limit(7680, 4320)
        assert not caplog.records
        cli._warn_above_codec_limit(7680, 7680)
    [record] = caplog.records
    assert "58982400 pixels, more than the 35651584" in record.getMessage()
