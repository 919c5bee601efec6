"""Validation of scene files by ``load_scene``: every problem of a file is reported at once."""

from __future__ import annotations

import math
import re

import pytest
from conftest import scene_dict

from hyperloss_gl import resources
from hyperloss_gl.errors import InputFileError, UsageError
from hyperloss_gl.scene import STAGES, load_scene
from hyperloss_gl.scene.description import (
    MAX_DURATION_S, MAX_EXAMPLES, MAX_REGIONS, MAX_VECTORS, MAX_VECTORS_PER_REGION,
)


def problems_of(path) -> list[str]:
    """Load ``path``, expect an InputFileError and return its problems."""
    with pytest.raises(InputFileError) as caught:
        load_scene(path)
    return caught.value.problems


def problems_about(problems: list[str], key: str) -> list[str]:
    """Return the problems that quote ``key`` as 'key'."""
    return [problem for problem in problems if f"'{key}'" in problem]


def usage_message(path) -> str:
    """Load ``path``, expect a UsageError that is not an InputFileError and return its text."""
    with pytest.raises(UsageError) as caught:
        load_scene(path)
    assert not isinstance(caught.value, InputFileError)
    return str(caught.value)


def with_examples(count: int, steps_per_epoch: int = 3) -> dict:
    return scene_dict(examples=count, steps_per_epoch=steps_per_epoch, vectors=1)


def with_regions(count: int) -> dict:
    return scene_dict(examples=1, regions=count, vectors=1)


# The default scene


def test_default_scene_loads(default_scene):
    assert default_scene.title == "Training a Language Model"
    assert default_scene.source == resources.DEFAULT_SCENE
    assert default_scene.width == 1080
    assert default_scene.height == 1920
    assert default_scene.fps == 60


def test_default_scene_counts(default_scene):
    assert default_scene.epochs == 10
    assert len(default_scene.regions) == 5
    assert [region.vectors for region in default_scene.regions] == [35] * 5
    assert default_scene.vector_count == 175
    assert len(default_scene.loss) == 31
    assert default_scene.steps_per_epoch == 3


def test_default_scene_region_names(default_scene):
    names = [region.name for region in default_scene.regions]
    assert names == ["Food", "Politics", "General", "Philosophy", "Tech"]


def test_default_scene_loss_values(default_scene):
    assert default_scene.loss[:7] == pytest.approx([4.8, 4.5, 4.7, 4.2, 3.8, 4.0, 3.5])
    assert default_scene.loss[28:] == pytest.approx([0.5, 0.45, 0.4])


def test_default_scene_timing_keys(default_scene):
    assert set(default_scene.timing) == {"intro", "outro", *STAGES}


def test_default_scene_duration(default_scene):
    assert default_scene.duration == pytest.approx(35.5)


def test_default_scene_examples_name_regions(default_scene):
    for example in default_scene.examples:
        assert 0 <= example.region < len(default_scene.regions)
        assert example.tokens
        assert example.output


def test_default_scene_tokens(default_scene):
    assert default_scene.examples[0].tokens == ("Pineapple", "on", "pizza", "?")


def test_load_scene_default_path_equals_none():
    assert load_scene(resources.DEFAULT_SCENE) == load_scene(None)


def test_minimal_scene_loads(write_scene):
    scene = load_scene(write_scene(scene_dict()))
    assert scene.epochs == 2
    assert len(scene.loss) == 7


def test_load_scene_str_path(write_scene):
    path = write_scene(scene_dict())
    assert load_scene(str(path)).source == path


def test_scene_defaults_filled(write_scene):
    data = scene_dict()
    del data["video"]
    del data["seed"]
    scene = load_scene(write_scene(data))
    assert scene.width == 1080
    assert scene.height == 1920
    assert scene.fps == 60
    assert scene.seed == 0
    assert scene.timing["intro"] == 1.5


def test_tokens_key_overrides_split(write_scene):
    data = scene_dict()
    data["examples"][0]["tokens"] = ["Ques", "tion", " 0?"]
    scene = load_scene(write_scene(data))
    assert scene.examples[0].tokens == ("Ques", "tion", " 0?")


# Every problem at once


def several_mistakes() -> dict:
    data = scene_dict()
    data["titel"] = "Typo"
    data["video"]["fps"] = 0
    data["regions"][0]["color"] = "red"
    data["examples"][1]["region"] = "Sport"
    data["loss"]["values"] = data["loss"]["values"][:-1]
    return data


def test_mistakes_reported_together(write_scene):
    problems = problems_of(write_scene(several_mistakes()))
    assert len(problems) == 5


def test_mistakes_each_listed(write_scene):
    problems = problems_of(write_scene(several_mistakes()))
    assert len(problems_about(problems, "titel")) == 1
    assert len(problems_about(problems, "video.fps")) == 1
    assert len(problems_about(problems, "regions[0].color")) == 1
    assert len(problems_about(problems, "examples[1].region")) == 1
    assert len(problems_about(problems, "loss.values")) == 1


def test_mistakes_name_value_and_allowed(write_scene):
    problems = problems_of(write_scene(several_mistakes()))
    [fps] = problems_about(problems, "video.fps")
    assert "= 0 " in fps
    assert "1 to 240" in fps
    [color] = problems_about(problems, "regions[0].color")
    assert "'red'" in color
    assert "#RRGGBB" in color
    [region] = problems_about(problems, "examples[1].region")
    assert "'Sport'" in region
    assert "Region 0, Region 1" in region
    [loss] = problems_about(problems, "loss.values")
    assert "has 6 values" in loss
    assert "need 7" in loss


def test_error_message_lists_all(write_scene):
    path = write_scene(several_mistakes())
    with pytest.raises(InputFileError) as caught:
        load_scene(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 5 problem(s):")
    for problem in caught.value.problems:
        assert f"  - {problem}" in message


def test_error_carries_path(write_scene):
    path = write_scene(several_mistakes())
    with pytest.raises(InputFileError) as caught:
        load_scene(path)
    assert caught.value.path == path


def test_input_file_error_is_usage_error():
    assert issubclass(InputFileError, UsageError)
    assert InputFileError.exit_status == 2


# Unknown keys


def test_unknown_key_suggests_title(write_scene):
    data = scene_dict()
    data["titel"] = "Typo"
    problems = problems_of(write_scene(data))
    assert problems == ["unknown key 'titel'; did you mean 'title'?"]


def test_unknown_nested_key_suggests(write_scene):
    data = scene_dict()
    data["video"]["fsp"] = 30
    data["regions"][1]["colour"] = "#FFFFFF"
    problems = problems_of(write_scene(data))
    assert "unknown key 'video.fsp'; did you mean 'fps'?" in problems
    assert "unknown key 'regions[1].colour'; did you mean 'color'?" in problems


def test_unknown_key_lists_known(write_scene):
    data = scene_dict()
    data["zzz"] = 1
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("unknown key 'zzz'; known keys: ")
    assert "title" in problem
    assert "examples" in problem


def test_unknown_timing_key(write_scene):
    data = scene_dict()
    data["timing"] = {"backprob": 0.5}
    [problem] = problems_of(write_scene(data))
    assert problem == "unknown key 'timing.backprob'; did you mean 'backprop'?"


# Wrong types


@pytest.mark.parametrize("section, key, value, expected", [
    (None, "title", 5, "'title' must be a string, got 5"),
    (None, "seed", "x", "'seed' must be an integer, got 'x'"),
    (None, "seed", 1.5, "'seed' must be an integer, got 1.5"),
    (None, "video", 5, "'video' must be a table, got 5"),
    ("video", "fps", 59.94, "'video.fps' must be an integer, got 59.94"),
    ("video", "width", True, "'video.width' must be an integer, got True"),
    ("timing", "intro", "long", "'timing.intro' must be a number, got 'long'"),
    ("loss", "values", "many", "'loss.values' must be an array, got 'many'"),
    ("loss", "steps_per_epoch", 3.0, "'loss.steps_per_epoch' must be an integer, got 3.0"),
])
def test_wrong_type_reported(write_scene, section, key, value, expected):
    data = scene_dict()
    if section is None:
        data[key] = value
    else:
        data.setdefault(section, {})[key] = value
    assert expected in problems_of(write_scene(data))


def test_region_field_wrong_type(write_scene):
    data = scene_dict()
    data["regions"][0]["vectors"] = "ten"
    data["regions"][1]["name"] = 3
    problems = problems_of(write_scene(data))
    assert "'regions[0].vectors' must be an integer, got 'ten'" in problems
    assert "'regions[1].name' must be a string, got 3" in problems


def test_example_field_wrong_type(write_scene):
    data = scene_dict()
    data["examples"][0]["input"] = 3
    data["examples"][1]["output"] = ["a"]
    problems = problems_of(write_scene(data))
    assert "'examples[0].input' must be a string, got 3" in problems
    assert "'examples[1].output' must be a string, got ['a']" in problems


def test_regions_not_array(write_scene):
    data = scene_dict()
    data["regions"] = "Food"
    problems = problems_of(write_scene(data))
    assert "'regions' must be an array, got 'Food'" in problems


def test_region_entry_not_table(write_scene):
    data = scene_dict()
    data["regions"] = [data["regions"][0], "Tech"]
    data["examples"] = [data["examples"][0]]
    data["loss"]["values"] = data["loss"]["values"][:4]
    problems = problems_of(write_scene(data))
    assert "'regions[1]' must be a table, got 'Tech'" in problems


def test_loss_value_not_number(write_scene):
    data = scene_dict()
    data["loss"]["values"][2] = "high"
    problems = problems_of(write_scene(data))
    assert problems == ["'loss.values[2]' must be a number, got 'high'"]


def test_invalid_tokens_reported(write_scene):
    data = scene_dict()
    data["examples"][0]["tokens"] = ["ok", " "]
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("'examples[0].tokens' = ['ok', ' '] is invalid")


# Missing keys


@pytest.mark.parametrize("key, expected", [
    ("loss", "missing key 'loss' (a table)"),
    ("regions", "missing key 'regions' (an array)"),
    ("examples", "missing key 'examples' (an array)"),
])
def test_missing_top_key(write_scene, key, expected):
    data = scene_dict()
    del data[key]
    assert expected in problems_of(write_scene(data))


def test_missing_loss_values(write_scene):
    data = scene_dict()
    del data["loss"]["values"]
    problems = problems_of(write_scene(data))
    assert problems == ["missing key 'loss.values' (an array)"]


def test_missing_region_keys(write_scene):
    data = scene_dict()
    del data["regions"][0]["color"]
    problems = problems_of(write_scene(data))
    assert problems == ["missing key 'regions[0].color' (a string)"]


def test_missing_example_keys(write_scene):
    data = scene_dict()
    del data["examples"][0]["input"]
    del data["examples"][1]["region"]
    del data["examples"][1]["output"]
    problems = problems_of(write_scene(data))
    assert "missing key 'examples[0].input' (a string)" in problems
    assert "missing key 'examples[1].region' (a string)" in problems
    assert "missing key 'examples[1].output' (a string)" in problems
    assert len(problems) == 3


# Regions and examples


def test_example_unknown_region(write_scene):
    data = scene_dict()
    data["examples"][0]["region"] = "Sports"
    [problem] = problems_of(write_scene(data))
    assert problem == ("'examples[0].region' = 'Sports' is not a region; defined regions "
                       "are: Region 0, Region 1")


def test_example_region_case_sensitive(write_scene):
    data = scene_dict()
    data["examples"][0]["region"] = "region 0"
    assert len(problems_of(write_scene(data))) == 1


def test_duplicate_region_names(write_scene):
    data = scene_dict(regions=3)
    data["regions"][2]["name"] = "Region 0"
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("'regions[2].name' = 'Region 0' is invalid")
    assert "unique" in problem


def test_empty_region_name(write_scene):
    data = scene_dict()
    data["regions"][0]["name"] = "  "
    problems = problems_of(write_scene(data))
    assert "'regions[0].name' = '  ' is invalid: must not be empty" in problems


@pytest.mark.parametrize("color", [
    "red", "#FFF", "FF9F43", "#GGGGGG", "#FF9F4300", "#FF9F43\n", " #FF9F43", "#FF 9F4",
])
def test_color_invalid(write_scene, color):
    data = scene_dict()
    data["regions"][1]["color"] = color
    [problem] = problems_of(write_scene(data))
    assert problem.startswith(f"'regions[1].color' = {color!r} is invalid")
    assert "#RRGGBB" in problem


def test_color_lowercase_accepted(write_scene):
    data = scene_dict()
    data["regions"][0]["color"] = "#ff9f43"
    scene = load_scene(write_scene(data))
    assert scene.regions[0].color == pytest.approx(load_scene(write_scene(scene_dict()))
                                                   .regions[0].color)


def test_color_is_linear_light(write_scene):
    data = scene_dict()
    data["regions"][0]["color"] = "#808080"
    scene = load_scene(write_scene(data))
    assert scene.regions[0].color == pytest.approx((0.2158605,) * 3, abs=1e-6)


@pytest.mark.parametrize("position", [[0.0], [0.0, 3.0], ["a", 0.0], [0.0, math.nan]])
def test_region_position_invalid(write_scene, position):
    data = scene_dict()
    data["regions"][0]["position"] = position
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("'regions[0].position' = ")
    assert "-2 to 2" in problem


def test_text_too_long(write_scene):
    data = scene_dict()
    data["examples"][0]["output"] = "x" * 201
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("'examples[0].output' = 'xxx")
    assert problem.endswith("at most 200 characters")


# Loss values


def test_loss_wrong_length(write_scene):
    data = scene_dict(examples=2)
    data["loss"]["values"].append(0.3)
    [problem] = problems_of(write_scene(data))
    assert "'loss.values' has 8 values" in problem
    assert "need 7" in problem


def test_loss_length_follows_steps(write_scene):
    data = scene_dict(examples=4, steps_per_epoch=2)
    data["loss"]["steps_per_epoch"] = 5
    [problem] = problems_of(write_scene(data))
    assert "has 9 values" in problem
    assert "steps_per_epoch = 5 need 21" in problem


def test_loss_custom_steps_accepted(write_scene):
    scene = load_scene(write_scene(scene_dict(examples=4, steps_per_epoch=5)))
    assert len(scene.loss) == 21
    assert scene.steps_per_epoch == 5


@pytest.mark.parametrize("value, shown", [
    (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"), (-0.5, "-0.5"),
])
def test_loss_value_invalid(write_scene, value, shown):
    data = scene_dict()
    data["loss"]["values"][1] = value
    [problem] = problems_of(write_scene(data))
    assert problem.startswith(f"'loss.values[1]' = {shown} is invalid")
    assert "finite and not negative" in problem


def test_loss_nan_in_toml_text(write_scene):
    data = scene_dict()
    data["loss"]["values"][0] = math.nan
    data["loss"]["values"][3] = -1
    problems = problems_of(write_scene(data))
    assert len(problems) == 2


def test_loss_zero_accepted(write_scene):
    data = scene_dict()
    data["loss"]["values"] = [0] * 7
    scene = load_scene(write_scene(data))
    assert scene.loss == (0.0,) * 7
    assert scene.loss_axis_max == 1.0


def test_loss_integers_accepted(write_scene):
    data = scene_dict()
    data["loss"]["values"] = [5, 4, 3, 2, 1, 1, 0]
    scene = load_scene(write_scene(data))
    assert scene.loss == (5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 0.0)


def test_loss_axis_max_default(write_scene):
    scene = load_scene(write_scene(scene_dict()))
    assert scene.loss_axis_max == pytest.approx(4.8 * 1.05)


def test_loss_axis_max_zero_rejected(write_scene):
    data = scene_dict()
    data["loss"]["axis_max"] = 0
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("'loss.axis_max' = 0 is invalid")


# Video and timing


def test_zero_examples(write_scene):
    data = scene_dict()
    data["examples"] = []
    data["loss"]["values"] = [1.0]
    problems = problems_of(write_scene(data))
    assert problems == ["'examples' has 0 entries; allowed are 1 to 200, one per epoch"]


@pytest.mark.parametrize("axis, value, fix", [
    ("width", 1081, "use 1080 or 1082"),
    ("height", 1919, "use 1918 or 1920"),
    ("width", 17, "use 16 or 18"),
])
def test_video_size_odd(write_scene, axis, value, fix):
    data = scene_dict()
    data["video"][axis] = value
    [problem] = problems_of(write_scene(data))
    assert problem.startswith(f"'video.{axis}' = {value} is invalid")
    assert "even" in problem
    assert fix in problem


@pytest.mark.parametrize("key, value, allowed", [
    ("width", 8000, "16 to 7680"),
    ("height", 8, "16 to 7680"),
    ("fps", 241, "1 to 240"),
])
def test_video_out_of_range(write_scene, key, value, allowed):
    data = scene_dict()
    data["video"][key] = value
    [problem] = problems_of(write_scene(data))
    assert problem == f"'video.{key}' = {value} is invalid: allowed values are {allowed}"


@pytest.mark.parametrize("value", [0.0, -1.0, 601.0, math.inf, math.nan])
def test_timing_out_of_range(write_scene, value):
    data = scene_dict()
    data["timing"] = {"tracer": value}
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("'timing.tracer' = ")
    assert "0.01 to 600.0" in problem


def test_timing_overrides_default(write_scene):
    data = scene_dict()
    data["timing"] = {"backprop": 1.25}
    scene = load_scene(write_scene(data))
    assert scene.timing["backprop"] == 1.25
    assert scene.timing["tracer"] == 0.45


def test_seed_negative_rejected(write_scene):
    data = scene_dict()
    data["seed"] = -1
    [problem] = problems_of(write_scene(data))
    assert problem.startswith("'seed' = -1 is invalid")


# Files that are not scene files


def test_file_not_found(tmp_path):
    path = tmp_path / "missing.toml"
    message = usage_message(path)
    assert "not found" in message
    assert str(path) in message


def test_path_is_folder(tmp_path):
    message = usage_message(tmp_path)
    assert "is a folder" in message
    assert str(tmp_path) in message


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_empty_file(write_scene, content):
    message = usage_message(write_scene(content))
    assert "is empty" in message


def test_not_toml(write_scene):
    message = usage_message(write_scene('title = "x"\nthis is not toml\n'))
    assert "is not valid TOML" in message
    assert re.search(r"line 2, column \d+", message)


def test_not_utf8(write_scene):
    message = usage_message(write_scene(b'title = "caf\xe9"\n'))
    assert "is not UTF-8" in message
    assert "offset 12" in message


# Limits


def test_examples_200_accepted(write_scene):
    scene = load_scene(write_scene(with_examples(MAX_EXAMPLES)))
    assert scene.epochs == 200
    assert len(scene.loss) == 601


def test_examples_201_rejected(write_scene):
    problems = problems_of(write_scene(with_examples(MAX_EXAMPLES + 1)))
    assert problems == ["'examples' has 201 entries; allowed are 1 to 200, one per epoch"]


@pytest.mark.parametrize("vectors", [0, MAX_VECTORS_PER_REGION])
def test_region_vectors_accepted(write_scene, vectors):
    data = scene_dict()
    data["regions"][0]["vectors"] = vectors
    scene = load_scene(write_scene(data))
    assert scene.regions[0].vectors == vectors


@pytest.mark.parametrize("vectors", [-1, MAX_VECTORS_PER_REGION + 1])
def test_region_vectors_rejected(write_scene, vectors):
    data = scene_dict()
    data["regions"][0]["vectors"] = vectors
    [problem] = problems_of(write_scene(data))
    assert problem == (f"'regions[0].vectors' = {vectors} is invalid: allowed values are "
                       "0 to 100000")


def test_total_vectors_rejected(write_scene):
    data = scene_dict(regions=3, vectors=MAX_VECTORS_PER_REGION)
    [problem] = problems_of(write_scene(data))
    assert "300000 vectors" in problem
    assert f"at most {MAX_VECTORS}" in problem


def test_regions_50_accepted(write_scene):
    scene = load_scene(write_scene(with_regions(MAX_REGIONS)))
    assert len(scene.regions) == 50


def test_regions_51_rejected(write_scene):
    problems = problems_of(write_scene(with_regions(MAX_REGIONS + 1)))
    assert problems == ["'regions' has 51 entries; allowed are 1 to 50"]


def test_regions_auto_positions_distinct(write_scene):
    scene = load_scene(write_scene(with_regions(MAX_REGIONS)))
    positions = {region.position for region in scene.regions}
    assert len(positions) == 50


def test_zero_regions_rejected(write_scene):
    data = scene_dict()
    data["regions"] = []
    problems = problems_of(write_scene(data))
    assert "'regions' has 0 entries; allowed are 1 to 50" in problems


def long_scene(last_stage_s: float) -> dict:
    """One epoch whose first five stages last 600 s each; ``aligned`` lasts ``last_stage_s``."""
    data = scene_dict(examples=1, regions=1)
    data["timing"] = {stage: 600.0 for stage in STAGES[:5]}
    data["timing"]["aligned"] = last_stage_s
    return data


def test_scene_under_hour_accepted(write_scene):
    scene = load_scene(write_scene(long_scene(590.0)))
    assert scene.duration == pytest.approx(3594.55)


def test_scene_over_hour_rejected(write_scene):
    [problem] = problems_of(write_scene(long_scene(600.0)))
    assert problem.startswith("the scene lasts 3605 s")
    assert f"at most {MAX_DURATION_S:.0f} s" in problem


def test_many_examples_over_hour(write_scene):
    data = with_examples(MAX_EXAMPLES)
    data["timing"] = {"backprop": 16.0}
    [problem] = problems_of(write_scene(data))
    assert "at most 3600 s" in problem
    assert "fewer examples" in problem
