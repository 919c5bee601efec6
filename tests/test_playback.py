"""Tests of the preview's GL-free parts: playback keys, sound hook, file watcher, HUD geometry."""

from __future__ import annotations

import pytest

from conftest import RecordingSound
from hyperloss_gl import hud
from hyperloss_gl.playback import (
    KEY_BINDINGS, KEY_HELP, MAX_STEP_S, SPEEDS, Playback, SoundSync, epoch_start_frames, key_name,
)
from hyperloss_gl.render.overlay import PixelRect
from hyperloss_gl.watch import FileWatcher

FPS = 60
FRAMES = 2130
EPOCHS = [90, 282, 474, 666, 858, 1050, 1242, 1434, 1626, 1818]
START = 500


def make_playback(start: int = START) -> Playback:
    return Playback(FPS, FRAMES, EPOCHS, start)


# Each case: keys pressed in order (a key is "name" or ("name", shift)), then the
# expected frame, play state and speed.
KEY_CASES = [
    ("right steps one frame", ["right"], 501, False, 1.0),
    ("left steps one frame", ["left"], 499, False, 1.0),
    ("shift right jumps a second", [("right", True)], 560, False, 1.0),
    ("shift left jumps a second", [("left", True)], 440, False, 1.0),
    ("next epoch start", ["]"], 666, False, 1.0),
    ("previous epoch start", ["["], 474, False, 1.0),
    ("previous twice", ["[", "["], 282, False, 1.0),
    ("home", ["home"], 0, False, 1.0),
    ("end", ["end"], FRAMES - 1, False, 1.0),
    ("digit 1 is epoch 1", ["1"], 90, False, 1.0),
    ("digit 3 is epoch 3", ["3"], 474, False, 1.0),
    ("digit 9 is epoch 9", ["9"], 1626, False, 1.0),
    ("digit 0 is epoch 10", ["0"], 1818, False, 1.0),
    ("space plays", ["space"], START, True, 1.0),
    ("space twice pauses", ["space", "space"], START, False, 1.0),
    ("l plays forwards", ["l"], START, True, 1.0),
    ("l twice doubles", ["l", "l"], START, True, 2.0),
    ("l four times stops at 4x", ["l", "l", "l", "l"], START, True, 4.0),
    ("j plays backwards", ["j"], START, True, -1.0),
    ("j twice doubles backwards", ["j", "j"], START, True, -2.0),
    ("j after l reverses at 1x", ["l", "l", "j"], START, True, -1.0),
    ("k pauses", ["l", "k"], START, False, 1.0),
    ("equals is faster", ["="], START, False, 2.0),
    ("plus is faster", ["+"], START, False, 2.0),
    ("minus is slower", ["-"], START, False, 0.5),
    ("minus stops at the slowest", ["-"] * 10, START, False, SPEEDS[0]),
    ("equals stops at the fastest", ["="] * 10, START, False, SPEEDS[-1]),
    ("minus keeps the direction", ["j", "-"], START, True, -0.5),
    ("capital letters work", ["L", "L"], START, True, 2.0),
    ("right pauses playback", ["l", "right"], START + 1, False, 1.0),
    ("epoch jump keeps playing", ["l", "3"], 474, True, 1.0),
    ("enter returns to the play start", ["l", "3", "enter"], START, True, 1.0),
]


@pytest.mark.parametrize("keys, frame, playing, speed",
                         [case[1:] for case in KEY_CASES], ids=[case[0] for case in KEY_CASES])
def test_key_moves_playhead(keys, frame, playing, speed):
    playback = make_playback()
    for key in keys:
        name, shift = key if isinstance(key, tuple) else (key, False)
        assert playback.press(name, shift) is not None, f"key {name!r} is unbound"
    assert playback.frame == frame
    assert playback.playing == playing
    assert playback.speed == speed


def test_frame_time_is_frame_over_fps():
    playback = make_playback(741)
    assert playback.time == 741 / FPS


def test_press_returns_window_actions():
    playback = make_playback()
    expected = {"tab": "toggle_hud", "g": "toggle_guides", "s": "save_still", "r": "reload",
                "h": "toggle_help", "?": "toggle_help", "escape": "quit", "q": "quit",
                "f12": "save_window"}
    for key, action in expected.items():
        assert playback.press(key) == action, key
    assert playback.frame == START


def test_unbound_key_does_nothing():
    playback = make_playback()
    assert playback.press("x") is None
    assert playback.frame == START


def test_key_name_adds_shift_only_where_bound():
    assert key_name("left", shift=True) == "shift+left"
    assert key_name("L", shift=True) == "l"
    assert key_name("]", shift=True) == "]"


def test_every_binding_is_in_help():
    help_text = " ".join(key for key, _ in KEY_HELP).lower()
    for key in KEY_BINDINGS:
        if key in ("+", "_") or key.isdigit() and key not in "190":
            continue
        name = key.removeprefix("shift+")
        name = {"escape": "esc"}.get(name, name)
        assert name in help_text, f"key {key!r} is missing from KEY_HELP"


def test_missing_epoch_leaves_notice():
    playback = Playback(FPS, FRAMES, EPOCHS[:5], START)
    playback.press("7")
    assert playback.frame == START
    assert "no epoch 7" in playback.notice


def test_previous_epoch_before_first_goes_to_start():
    playback = make_playback(50)
    playback.press("[")
    assert playback.frame == 0


def test_next_epoch_after_last_stays():
    playback = make_playback(2000)
    playback.press("]")
    assert playback.frame == 2000
    assert playback.notice


def test_seek_clamps_to_video():
    playback = make_playback()
    playback.seek(-20)
    assert playback.frame == 0
    playback.seek(FRAMES + 50)
    assert playback.frame == FRAMES - 1


def test_seek_fraction_maps_ends():
    playback = make_playback()
    playback.seek_fraction(0.0)
    assert playback.frame == 0
    playback.seek_fraction(1.0)
    assert playback.frame == FRAMES - 1
    playback.seek_fraction(0.5)
    assert playback.frame == round(0.5 * (FRAMES - 1))


# Advancing -------------------------------------------------------------------


def test_advance_one_second_at_1x():
    playback = make_playback()
    playback.play()
    for _ in range(10):
        playback.advance(0.1)
    assert playback.frame == START + 60


def test_advance_at_2x_backwards():
    playback = make_playback()
    playback.play(-2.0)
    playback.advance(0.2)
    playback.advance(0.2)
    playback.advance(0.1)
    assert playback.frame == START - 60


def test_advance_paused_does_nothing():
    playback = make_playback()
    playback.advance(1.0)
    assert playback.frame == START


def test_playback_stops_at_last_frame():
    playback = make_playback(FRAMES - 5)
    playback.play()
    playback.advance(0.2)
    assert playback.frame == FRAMES - 1
    assert not playback.playing


def test_playback_backwards_stops_at_first_frame():
    playback = make_playback(3)
    playback.play(-1.0)
    playback.advance(0.2)
    assert playback.frame == 0
    assert not playback.playing


def test_play_on_last_frame_restarts():
    playback = make_playback(FRAMES - 1)
    playback.press("space")
    assert playback.frame == 0
    assert playback.playing


def test_long_stall_is_clamped_and_counts_as_seek():
    playback = make_playback()
    playback.play()
    seeks = playback.seek_count
    playback.advance(5.0)
    assert playback.frame == START + int(MAX_STEP_S * FPS)
    assert playback.seek_count == seeks + 1


# Loop range ------------------------------------------------------------------


def test_loop_wraps_forwards():
    playback = make_playback(100)
    playback.press("i")
    playback.seek(159)
    playback.press("o")
    playback.seek(150)
    playback.play()
    playback.advance(0.25)  # 15 frames: 150 + 15 = 165 wraps to 100 + 5
    assert playback.frame == 105
    assert playback.loop.first == 100
    assert playback.loop.last == 159


def test_loop_wraps_backwards():
    playback = make_playback(100)
    playback.press("i")
    playback.seek(159)
    playback.press("o")
    playback.seek(105)
    playback.play(-1.0)
    playback.advance(0.25)  # 15 frames back from 105 re-enters at the out point
    assert 100 <= playback.frame <= 159
    assert playback.frame == 150


def test_play_outside_loop_starts_at_in_point():
    playback = make_playback(100)
    playback.press("i")
    playback.seek(200)
    playback.press("o")
    playback.seek(700)
    playback.press("space")
    assert playback.frame == 100


def test_out_point_only_loops_from_start():
    playback = make_playback(100)
    playback.press("o")
    assert playback.loop.first == 0
    assert playback.loop.last == 100


def test_in_point_after_out_clears_out():
    playback = make_playback(100)
    playback.press("o")
    playback.seek(300)
    playback.press("i")
    assert playback.loop_in == 300
    assert playback.loop_out is None
    assert playback.notice


def test_p_clears_loop():
    playback = make_playback(100)
    playback.press("i")
    playback.press("p")
    assert playback.loop is None


def test_epoch_start_frames_fall_in_their_epoch(default_timeline):
    frames = epoch_start_frames(default_timeline, FPS)
    assert len(frames) == default_timeline.epochs
    for epoch, frame in enumerate(frames):
        assert default_timeline.locate(frame / FPS).epoch == epoch
        assert default_timeline.locate((frame - 1) / FPS).epoch < epoch


# Sound -----------------------------------------------------------------------


def test_sound_plays_on_start_at_1x():
    sound, playback = RecordingSound(), make_playback()
    sync = SoundSync(sound)
    sync.update(playback)
    assert sound.calls == []
    playback.press("space")
    sync.update(playback)
    assert sound.calls == [("play", START / FPS)]


def test_sound_stays_quiet_while_playing_on():
    sound, playback = RecordingSound(), make_playback()
    sync = SoundSync(sound)
    playback.play()
    sync.update(playback)
    playback.advance(0.1)
    sync.update(playback)
    assert len(sound.calls) == 1


def test_sound_restarts_on_seek_while_playing():
    sound, playback = RecordingSound(), make_playback()
    sync = SoundSync(sound)
    playback.play()
    sync.update(playback)
    playback.press("3")
    sync.update(playback)
    assert sound.calls[-1] == ("play", 474 / FPS)


def test_sound_stops_on_pause_speed_and_scrub():
    for keys, scrubbing in ((["space"], False), (["l"], False), (["="], False), ([], True)):
        sound, playback = RecordingSound(), make_playback()
        sync = SoundSync(sound)
        playback.play()
        sync.update(playback)
        for key in keys:
            playback.press(key)
        sync.update(playback, scrubbing=scrubbing)
        assert sound.calls[-1] == ("stop",), (keys, scrubbing)


def test_sound_quiet_backwards():
    sound, playback = RecordingSound(), make_playback()
    sync = SoundSync(sound)
    playback.press("j")
    sync.update(playback)
    assert sound.calls == []


# File watcher ----------------------------------------------------------------


def test_watcher_ignores_same_content(tmp_path):
    path = tmp_path / "a.frag"
    path.write_text("void main() {}\n")
    watcher = FileWatcher([path], poll_interval_s=0.0, settle_s=0.1)
    path.write_text("void main() {}\n")
    path.touch()
    assert watcher.poll(1.0) == []
    assert watcher.poll(2.0) == []


def test_watcher_reports_change_after_settling(tmp_path):
    path = tmp_path / "a.frag"
    path.write_text("one\n")
    watcher = FileWatcher([path], poll_interval_s=0.0, settle_s=0.1)
    path.write_text("two, longer\n")
    assert watcher.poll(1.0) == []
    assert watcher.poll(1.05) == []
    assert watcher.poll(1.2) == [path.resolve()]
    assert watcher.poll(2.0) == []


def test_watcher_debounces_burst_of_writes(tmp_path):
    path = tmp_path / "look.toml"
    path.write_text("a\n")
    watcher = FileWatcher([path], poll_interval_s=0.0, settle_s=0.1)
    reports = []
    for step, text in enumerate(["ab\n", "abc\n", "abcd\n"]):
        path.write_text(text)
        reports += watcher.poll(1.0 + step * 0.05)
    reports += watcher.poll(1.5)
    assert reports == [path.resolve()]


def test_watcher_limits_poll_rate(tmp_path):
    path = tmp_path / "a.frag"
    path.write_text("one\n")
    watcher = FileWatcher([path], poll_interval_s=0.25, settle_s=0.0)
    watcher.poll(1.0)
    path.write_text("two, longer\n")
    assert watcher.poll(1.1) == []  # within the poll interval: not even looked at
    assert watcher.poll(1.3) == []  # metadata changed, settling
    assert watcher.poll(1.6) == [path.resolve()]


def test_watcher_reports_deleted_file(tmp_path):
    path = tmp_path / "a.frag"
    path.write_text("one\n")
    watcher = FileWatcher([path], poll_interval_s=0.0, settle_s=0.0)
    path.unlink()
    watcher.poll(1.0)
    assert watcher.poll(1.1) == [path.resolve()]


# HUD geometry and text -------------------------------------------------------


def test_window_fits_1080p_screen_at_half_size():
    assert hud.window_size_for((1080, 1920), (1920, 1080)) == (540, 960)


def test_window_fits_4k_screen_at_full_size():
    assert hud.window_size_for((1080, 1920), (3840, 2160)) == (1080, 1920)


def test_window_on_small_screen_shrinks():
    width, height = hud.window_size_for((1080, 1920), (1280, 720))
    assert height <= 720 * hud.SCREEN_SHARE
    assert width * 1920 == height * 1080


def test_image_rect_keeps_aspect_with_side_bars():
    rect = hud.image_rect((1000, 960), (1080, 1920))
    assert rect == PixelRect(230, 0, 540, 960)


def test_image_rect_keeps_aspect_with_top_bars():
    rect = hud.image_rect((540, 1200), (1080, 1920))
    assert rect == PixelRect(0, 120, 540, 960)


def test_fraction_at_track_ends():
    bar = PixelRect(0, 900, 540, 34)
    left, right = hud.track_span(bar, 1.0)
    assert hud.fraction_at(left, bar, 1.0) == 0.0
    assert hud.fraction_at(right, bar, 1.0) == 1.0
    assert hud.fraction_at((left + right) / 2, bar, 1.0) == pytest.approx(0.5)
    assert hud.fraction_at(-50, bar, 1.0) == 0.0


def test_timecode_counts_frames_in_second():
    assert hud.format_timecode(0, 60) == "00:00:00"
    assert hud.format_timecode(741, 60) == "00:12:21"
    assert hud.format_timecode(60 * 61 + 5, 60) == "01:01:05"


def test_describe_position_names_epoch_and_stage(default_timeline):
    t = default_timeline.stage_start(2, "forward") + 0.01
    assert hud.describe_position(default_timeline, t) == (
        f"epoch 3 / {default_timeline.epochs}: forward")
    assert hud.describe_position(default_timeline, 0.0) == "intro"


def test_frame_rate_meter_measures_rate():
    meter = hud.FrameRateMeter(window_s=1.0)
    for i in range(31):
        meter.tick(10.0 + i / 30)
    assert meter.rate == pytest.approx(30.0)
    assert hud.is_slow(meter, 60, playing=True)
    assert not hud.is_slow(meter, 60, playing=False)
    assert not hud.is_slow(meter, 30, playing=True)


def test_status_lines_warn_when_slow(default_timeline):
    playback = make_playback()
    playback.play()
    meter = hud.FrameRateMeter()
    for i in range(31):
        meter.tick(i / 30)
    lines = hud.status_lines(playback, default_timeline, meter, (540, 960))
    texts = [text for text, _ in lines]
    assert texts[0].startswith("00:08:20")
    assert "playing" in texts[2]
    assert "below 60 fps" in texts[3]
    assert lines[3][1] == hud.WARNING
