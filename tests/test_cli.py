"""The command line: exit status and message for bad scene files and bad options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import dump_toml, scene_dict

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "hyperloss_gl", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def write(tmp_path: Path, data, name: str = "scene.toml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else dump_toml(data), encoding="utf-8")
    return path


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} missing from: {result.stderr}"


def test_unknown_key_names_closest(tmp_path):
    data = scene_dict()
    data["titel"] = "x"
    result = run_cli("--scene", write(tmp_path, data), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "titel", "did you mean 'title'")


def test_wrong_type_names_key_and_value(tmp_path):
    data = scene_dict()
    data["regions"][0]["vectors"] = "many"
    result = run_cli("--scene", write(tmp_path, data), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "regions[0].vectors", "an integer", "'many'")


def test_unknown_region_lists_regions(tmp_path):
    data = scene_dict()
    data["examples"][1]["region"] = "Sports"
    result = run_cli("--scene", write(tmp_path, data), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "examples[1].region", "'Sports'", "Region 0, Region 1")


def test_wrong_loss_length_names_count(tmp_path):
    data = scene_dict(examples=2)
    data["loss"]["values"] = data["loss"]["values"][:-1]
    result = run_cli("--scene", write(tmp_path, data), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "loss.values", "need 7")


@pytest.mark.parametrize("value, text", [("nan", "nan"), ("inf", "inf"), ("-1.0", "-1.0")])
def test_bad_loss_value_is_rejected(tmp_path, value, text):
    toml = dump_toml(scene_dict()).replace("4.8,", f"{value},", 1)
    result = run_cli("--scene", write(tmp_path, toml), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "loss.values[0]", text, "finite and not negative")


def test_zero_examples_is_rejected(tmp_path):
    data = scene_dict()
    data["examples"] = []
    toml = dump_toml(data) + "examples = []\n"
    result = run_cli("--scene", write(tmp_path, toml), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "'examples' has 0 entries", "1 to 200")


def test_all_problems_reported_together(tmp_path):
    data = scene_dict()
    data["titel"] = "x"
    data["regions"][0]["color"] = "orange"
    data["examples"][0]["region"] = "Nowhere"
    result = run_cli("--scene", write(tmp_path, data), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "3 problem(s)", "titel", "regions[0].color", "'Nowhere'")


def test_missing_scene_file(tmp_path):
    result = run_cli("--scene", tmp_path / "absent.toml", "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "scene file not found", "absent.toml")


def test_invalid_toml_gives_line(tmp_path):
    result = run_cli("--scene", write(tmp_path, "title = \n"), "--still", "1", cwd=tmp_path)
    assert_usage_error(result, "not valid TOML", "line 1")


@pytest.mark.parametrize("size, fragment", [
    ("1081x1920", "even sizes"), ("0x100", "16 to 7680"), ("-4x100", "invalid size"),
    ("big", "invalid size"), ("1080x99999", "16 to 7680"),
])
def test_bad_size_is_rejected(tmp_path, size, fragment):
    result = run_cli("--record", "out.mp4", f"--size={size}", cwd=tmp_path)
    assert_usage_error(result, fragment)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("fps", ["0", "241", "-5", "sixty"])
def test_bad_fps_is_rejected(tmp_path, fps):
    result = run_cli("--record", "out.mp4", "--fps", fps, cwd=tmp_path)
    assert_usage_error(result, "frame rate")


def test_from_after_to_is_rejected(tmp_path):
    result = run_cli("--record", "out.mp4", "--from", "5", "--to", "2", cwd=tmp_path)
    assert_usage_error(result, "--from 5 must be before --to 2")


def test_range_outside_video_is_rejected(tmp_path):
    result = run_cli("--record", "out.mp4", "--from", "500", cwd=tmp_path)
    assert_usage_error(result, "past the end")


def test_still_outside_video_is_rejected(tmp_path):
    result = run_cli("--still", "99", "--output", "x.png", cwd=tmp_path)
    assert_usage_error(result, "--still 99 is outside")
    assert not (tmp_path / "x.png").exists()


def test_still_writes_png(tmp_path):
    result = run_cli("--still", "12.5", "--size", "108x192", "--output", "frame.png",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(tmp_path / "frame.png") as image:
        assert image.size == (108, 192)


def test_record_writes_default_path(tmp_path):
    result = run_cli("--record", "--size", "108x192", "--fps", "10", "--from", "2", "--to",
                     "2.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "capture" / "hyperloss.mp4").stat().st_size > 0
    assert "recorded 5 frames" in result.stderr
