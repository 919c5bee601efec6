"""The sound track: purity, onsets on scheduled samples, levels, music bed, files and preview.

Onsets are found by a detector written here, not read from the score. A rise of the
envelope in 1 ms frames finds each sound. The onset is then the first sample where the
Hilbert envelope crosses 10 % of the way from the background to the sound's peak.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest

from hyperloss_gl import audio
from hyperloss_gl.audio import SAMPLE_RATE, SoundSettings, SoundTrack, sample_range
from hyperloss_gl.encode import EncoderSettings, ffmpeg_exe, probe, probe_header
from hyperloss_gl.errors import InputFileError, UsageError
from hyperloss_gl.look import SOUND_NAMES, load_look
from hyperloss_gl.record import RenderOptions, record_video
from hyperloss_gl.scene import Timeline

ROOT = Path(__file__).resolve().parent.parent
ONSET_TOLERANCE_S = 0.001


# ---------------------------------------------------------------------------
# Helpers


def settings_with(only: tuple[str, ...], master: float = 0.8, music: float = 0.0,
                  duck_db: float = 8.0) -> SoundSettings:
    """Return settings that play only the named sounds, at their shipped volumes."""
    shipped = load_look().sound
    volumes = {name: shipped[name]["volume"] if name in only else 0.0 for name in SOUND_NAMES}
    return SoundSettings(master, music, duck_db, volumes)


def analytic_envelope(signal: np.ndarray) -> np.ndarray:
    """Return the magnitude of the analytic signal (Hilbert envelope), computed with one FFT."""
    n = len(signal)
    spectrum = np.fft.fft(signal)
    weights = np.zeros(n)
    weights[0] = 1.0
    weights[1:(n + 1) // 2] = 2.0
    if n % 2 == 0:
        weights[n // 2] = 1.0
    return np.abs(np.fft.ifft(spectrum * weights))


def detect_onsets(track: np.ndarray, rate: int = SAMPLE_RATE, rise_db: float = 9.0,
                  range_db: float = 50.0, refractory_s: float = 0.02) -> np.ndarray:
    """Return the onset times in seconds of the sounds in a stereo track.

    1. The Hilbert envelope of the mono mix is reduced to its maximum per 1 ms frame.
    2. A frame is a candidate when it rises ``rise_db`` above the quietest of the 6
       frames before it, is within ``range_db`` of the loudest frame, and comes at least
       ``refractory_s`` after the previous onset.
    3. The background is the median of the envelope 6 to 3 ms before the frame, and the
       peak is the maximum of the next 10 ms. The onset is the first sample, from 3 ms
       before the frame, whose envelope crosses 10 % of the way from background to peak.
    """
    envelope = analytic_envelope(track.mean(axis=1).astype(np.float64))
    hop = rate // 1000
    frames = len(envelope) // hop
    frame_peak = envelope[:frames * hop].reshape(frames, hop).max(axis=1)
    level_db = 20.0 * np.log10(frame_peak + 1e-12)
    floor_db = level_db.max() - range_db
    onsets: list[float] = []
    last = -np.inf
    for k in range(6, frames):
        if level_db[k] < floor_db or level_db[k] - level_db[k - 6:k].min() < rise_db:
            continue
        if (k * hop) / rate - last < refractory_s:
            continue
        center = k * hop
        background = float(np.median(envelope[max(center - 6 * hop, 0):center - 3 * hop]))
        peak = float(envelope[center:center + 10 * hop].max())
        threshold = background + 0.1 * (peak - background)
        search_from = max(center - 3 * hop, 0)
        crossing = np.nonzero(envelope[search_from:center + 10 * hop] >= threshold)[0]
        onset = (search_from + int(crossing[0])) / rate
        onsets.append(onset)
        last = onset
    return np.array(onsets)


def onset_errors(detected: np.ndarray, scheduled: list[float]) -> np.ndarray:
    """Return, per scheduled time, the signed distance to the nearest detected onset."""
    detected = np.asarray(detected)
    return np.array([detected[np.argmin(np.abs(detected - t))] - t for t in scheduled])


def decode_audio(path: Path) -> np.ndarray:
    """Decode the first audio stream of a file to 48 kHz stereo float samples, shape (n, 2)."""
    result = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path),
                             "-map", "0:a:0", "-f", "f32le", "-ac", "2", "-ar", "48000",
                             "pipe:1"], capture_output=True, check=True)
    return np.frombuffer(result.stdout, dtype=np.float32).reshape(-1, 2)


def tone_amplitude(samples: np.ndarray, freq: float) -> float:
    """Return the amplitude of the ``freq`` component of a mono signal (Hann-weighted fit)."""
    t = np.arange(len(samples)) / SAMPLE_RATE
    window = np.hanning(len(samples))
    basis = np.exp(-2j * np.pi * freq * t)
    return float(2.0 * abs(np.sum(samples * window * basis)) / window.sum())


def dominant_frequency(samples: np.ndarray, low: float, high: float) -> float:
    """Return the frequency of the strongest spectral peak between low and high, in Hz."""
    padded = 16 * len(samples)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)), padded))
    freqs = np.fft.rfftfreq(padded, 1.0 / SAMPLE_RATE)
    band = (freqs >= low) & (freqs <= high)
    return float(freqs[band][np.argmax(spectrum[band])])


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "hyperloss_gl", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def write_tone(path: Path, freq: float, seconds: float) -> Path:
    """Write a sine of amplitude 1/8 (FFmpeg's default) to both channels of an audio file."""
    # The pan filter copies the channel at full level; FFmpeg's own mono-to-stereo
    # upmix would lower it by 3 dB.
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency={freq}:sample_rate=48000:duration={seconds}",
                    "-af", "pan=stereo|c0=c0|c1=c0", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def look():
    return load_look()


@pytest.fixture(scope="module")
def full_track(default_scene, look):
    """The whole default track, rendered once."""
    return audio.track_for(default_scene, look).render()


# ---------------------------------------------------------------------------
# Purity and length


def test_track_identical_for_same_scene(default_scene, look, full_track):
    again = audio.track_for(default_scene, look).render()
    assert again.dtype == np.float32
    assert np.array_equal(again, full_track)


@pytest.mark.parametrize("start, end", [
    (0, 1000),
    (audio.BLOCK_SAMPLES - 7, audio.BLOCK_SAMPLES + 9),
    (123_457, 600_001),
    (sample_range(range(180, 210), 60)),  # --from 3 --to 3.5 at 60 fps
    (1_600_000, None),
])
def test_range_equals_slice_of_full_track(default_scene, look, full_track, start, end):
    fresh = audio.track_for(default_scene, look)
    end = fresh.length if end is None else end
    part = fresh.render(start, end)
    assert part.shape == (end - start, 2)
    assert np.array_equal(part, full_track[start:end])


@pytest.mark.parametrize("fps, per_frame", [(60, 800), (30, 1600), (24, 2000), (50, 960)])
def test_track_length_matches_video(default_scene, look, fps, per_frame):
    track = audio.track_for(default_scene, look, fps=fps)
    frames = Timeline(default_scene).frame_count(fps)
    assert track.length == frames * per_frame
    assert abs(track.duration - frames / fps) < 1.0 / SAMPLE_RATE


def test_range_samples_follow_frames():
    assert sample_range(range(180, 210), 60) == (144_000, 168_000)
    # 7 fps does not divide 48 kHz: frame n starts on the first sample at or after n / 7 s.
    assert sample_range(range(1, 2), 7) == (6858, 13715)


# ---------------------------------------------------------------------------
# Onsets on their scheduled samples


@pytest.mark.parametrize("sound, kind", [("chip", "chip"), ("tick", "epoch"),
                                         ("click", "step")])
def test_onsets_within_one_ms(default_scene, sound, kind):
    track = SoundTrack(default_scene, settings_with((sound,))).render()
    scheduled = [event.t for event in Timeline(default_scene).events() if event.kind == kind]
    detected = detect_onsets(track)
    assert len(detected) == len(scheduled), (
        f"{len(detected)} onsets detected, {len(scheduled)} {kind} events scheduled")
    errors = onset_errors(detected, scheduled)
    worst = float(np.max(np.abs(errors)))
    assert worst < ONSET_TOLERANCE_S, (
        f"{sound}: worst onset error {worst * 1000:.3f} ms, mean {errors.mean() * 1000:.3f} ms")


def test_sound_starts_on_its_frame_sample(default_scene):
    track = SoundTrack(default_scene, settings_with(("tick",))).render()
    tick = next(event for event in Timeline(default_scene).events() if event.kind == "epoch")
    first = audio.first_sample_at(tick.t)
    assert first == round(tick.t * 60) * 800  # the tick lies on a frame at 60 fps
    assert not np.any(track[first - 200:first])
    assert np.any(track[first + 1])


# ---------------------------------------------------------------------------
# Levels, pitch and stereo


def test_peak_below_full_scale(full_track):
    peak = float(np.max(np.abs(full_track)))
    assert peak < audio.LIMIT_CEILING
    assert 20 * np.log10(peak) < 0.0


def test_track_has_no_clicks(full_track):
    # A step in the waveform shows as a second difference near the step's height. The
    # highest partials of the sounds give only a few percent of the peak.
    peak = float(np.max(np.abs(full_track)))
    jump = float(np.max(np.abs(np.diff(full_track.astype(np.float64), n=2, axis=0))))
    assert jump < 0.1 * peak, f"second difference {jump:.4f} at peak {peak:.4f}"


def test_loud_look_is_limited(default_scene):
    loud = SoundSettings(2.0, 0.0, 8.0, {name: 2.0 for name in SOUND_NAMES})
    track = SoundTrack(default_scene, loud).render()
    assert float(np.max(np.abs(track))) < audio.LIMIT_CEILING


def test_soft_limit_curve():
    x = np.linspace(-10.0, 10.0, 20001)
    y = audio.soft_limit(x)
    assert np.all(np.abs(y) <= audio.LIMIT_CEILING)
    assert np.all(np.diff(y) >= 0.0)
    assert np.all(np.diff(y[np.abs(x) < 2.0]) > 0.0)
    quiet = np.abs(x) <= audio.LIMIT_THRESHOLD
    assert np.array_equal(y[quiet], x[quiet])


def test_drone_falls_with_loss(default_scene):
    track = SoundTrack(default_scene, settings_with(("drone",))).render().mean(axis=1)
    timeline = Timeline(default_scene)
    scale_hz = [audio.D4_HZ * 2.0 ** (step / 12) for step in audio.DRONE_STEPS]
    pitches = []
    for epoch in range(default_scene.epochs):
        # Between the tick and the tracer stage the loss, and so the pitch, stays constant.
        start = int((timeline.epoch_start(epoch) + 0.3) * SAMPLE_RATE)
        pitches.append(dominant_frequency(track[start:start + SAMPLE_RATE // 2], 100.0, 400.0))
    end = int((timeline.outro_start - 0.25) * SAMPLE_RATE)
    pitches.append(dominant_frequency(track[end - SAMPLE_RATE // 2:end], 100.0, 400.0))
    for pitch in pitches:
        nearest = min(scale_hz, key=lambda hz: abs(hz - pitch))
        assert abs(pitch / nearest - 1.0) < 0.01, f"{pitch:.1f} Hz is off the scale {scale_hz}"
    assert all(later <= earlier * 1.005 for earlier, later in itertools.pairwise(pitches)), pitches
    assert pitches[0] == pytest.approx(audio.D4_HZ, rel=0.01)
    assert pitches[-1] == pytest.approx(audio.D4_HZ / 2.0, rel=0.01)


def test_chips_pan_left_to_right(default_scene):
    track = SoundTrack(default_scene, settings_with(("chip",))).render()
    chips = [event for event in Timeline(default_scene).events()
             if event.kind == "chip" and event.epoch == 0]
    balances = []
    for chip in chips:
        start = audio.first_sample_at(chip.t)
        window = track[start:start + SAMPLE_RATE // 20].astype(np.float64)
        left, right = np.sum(window[:, 0] ** 2), np.sum(window[:, 1] ** 2)
        balances.append((right - left) / (right + left))
    assert balances[0] < 0.0, balances
    assert all(b > a for a, b in itertools.pairwise(balances)), balances


# ---------------------------------------------------------------------------
# Music bed


@pytest.fixture(scope="module")
def tone_file(tmp_path_factory):
    return write_tone(tmp_path_factory.mktemp("music") / "tone.flac", 220.0, 40.0)


def test_music_ducked_under_effects(default_scene, tone_file):
    settings = settings_with(("ping",), music=0.5, duck_db=8.0)
    track = SoundTrack(default_scene, settings, music=tone_file)
    samples = track.render().mean(axis=1)
    ping = next(event for event in Timeline(default_scene).events() if event.kind == "aligned")
    start = audio.first_sample_at(ping.t)
    before = tone_amplitude(samples[start - int(0.6 * SAMPLE_RATE):start - int(0.3 * SAMPLE_RATE)],
                            220.0)
    during = tone_amplitude(samples[start + int(0.1 * SAMPLE_RATE):start + int(0.4 * SAMPLE_RATE)],
                            220.0)
    assert before == pytest.approx(0.125 * 0.5 * 0.8, rel=0.05)
    assert during / before == pytest.approx(10.0 ** (-8.0 / 20.0), rel=0.1)


def test_music_fades_out_at_end(default_scene, tone_file):
    track = SoundTrack(default_scene, settings_with((), music=0.5), music=tone_file)
    samples = track.render().mean(axis=1)
    middle = tone_amplitude(samples[SAMPLE_RATE * 10:SAMPLE_RATE * 11], 220.0)
    last = samples[-SAMPLE_RATE // 20:]
    assert middle == pytest.approx(0.05, rel=0.05)
    assert float(np.max(np.abs(last))) < 0.01 * middle
    assert len(samples) == track.length


def test_music_range_equals_slice(default_scene, look, tone_file):
    full = audio.track_for(default_scene, look, music=tone_file).render()
    start, end = sample_range(range(600, 660), 60)
    part = audio.track_for(default_scene, look, music=tone_file).render(start, end)
    assert np.array_equal(part, full[start:end])


def test_music_file_errors(default_scene, tmp_path):
    settings = settings_with((), music=0.5)
    with pytest.raises(UsageError, match="not found"):
        SoundTrack(default_scene, settings, music=tmp_path / "missing.mp3")
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n")
    with pytest.raises(UsageError, match="failed to decode music file"):
        SoundTrack(default_scene, settings, music=text)


# ---------------------------------------------------------------------------
# Look file


def test_look_sound_overrides_keep_defaults(tmp_path):
    path = tmp_path / "look.toml"
    path.write_text('[sound]\nmaster = 0.5\nchip = { on = false }\n')
    sound = load_look(path).sound
    shipped = load_look().sound
    assert sound["master"] == 0.5
    assert sound["chip"] == {"volume": shipped["chip"]["volume"], "on": False}
    assert sound["tick"] == shipped["tick"]
    assert SoundSettings.from_look(load_look(path)).volumes["chip"] == 0.0


def test_look_sound_problems_reported(tmp_path):
    path = tmp_path / "look.toml"
    path.write_text('[sound]\nmaster = 3.0\nbeep = 1\ntick = { volume = 0.5, on = "yes" }\n')
    with pytest.raises(InputFileError) as raised:
        load_look(path)
    problems = "\n".join(raised.value.problems)
    assert "sound.master" in problems
    assert "sound.beep" in problems
    assert "sound.tick.on" in problems
    assert len(raised.value.problems) == 3


# ---------------------------------------------------------------------------
# Files


def test_wav_16_bit_matches_track(default_scene, look, full_track, tmp_path):
    out = tmp_path / "range.wav"
    frames = range(180, 210)
    audio.record_sound(default_scene, look, out, 60, frames)
    start, end = sample_range(frames, 60)
    with wave.open(str(out)) as file:
        assert file.getnchannels() == 2
        assert file.getframerate() == SAMPLE_RATE
        assert file.getsampwidth() == 2
        assert file.getnframes() == end - start
        data = np.frombuffer(file.readframes(end - start), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(data, audio.to_int16(full_track[start:end]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["range.wav"]


def test_wav_float_matches_track(default_scene, look, full_track, tmp_path):
    out = tmp_path / "float.wav"
    track = audio.track_for(default_scene, look)
    audio.write_wav(out, track, 48_000, 96_000, float_samples=True)
    header = probe_header(out)
    assert header["audio"]["codec"] == "pcm_f32le"
    assert np.array_equal(decode_audio(out), full_track[48_000:96_000])


def test_wav_rejects_other_suffix(default_scene, look, tmp_path):
    track = audio.track_for(default_scene, look)
    with pytest.raises(UsageError, match=r"\.wav"):
        audio.write_wav(tmp_path / "track.mp3", track, 0, 100)


def test_wav_unwritable_folder_raises(default_scene, look, tmp_path):
    track = audio.track_for(default_scene, look)
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be\n")
    with pytest.raises(UsageError, match="not writable"):
        audio.write_wav(blocker / "track.wav", track, 0, 100)


@pytest.fixture(scope="module")
def recording(tmp_path_factory, default_scene, look):
    out = tmp_path_factory.mktemp("sound") / "range.mp4"
    options = RenderOptions(128, 224, 60, 4.6, 5.2)
    record_video(default_scene, look, out, options, EncoderSettings(preset="ultrafast"),
                 progress=False)
    return out, options


def test_recording_has_audio_stream(recording):
    out, _ = recording
    info = probe(out)
    video_seconds = info["frame_count"] / info["fps"]
    assert info["audio"]["codec"] == "aac"
    assert info["audio"]["sample_rate"] == SAMPLE_RATE
    assert info["audio"]["channels"] == 2
    assert abs(info["audio"]["duration"] - video_seconds) <= 1.0 / 60.0
    header = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True,
                            text=True, check=False).stderr
    audio_line = next(line for line in header.splitlines() if "Audio:" in line)
    bitrate = int(audio_line.split(" kb/s")[0].split()[-1])
    assert bitrate >= 160, audio_line


def test_recording_carries_range_sound(recording, full_track):
    out, options = recording
    decoded = decode_audio(out).astype(np.float64)
    start = int(options.start * SAMPLE_RATE)
    expected = full_track[start:start + len(decoded)].astype(np.float64)
    from_zero = full_track[:len(decoded)].astype(np.float64)

    def correlation(a, b):
        return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))

    assert correlation(decoded, expected) > 0.95
    assert correlation(decoded, from_zero) < 0.5
    assert float(np.max(np.abs(decoded))) < 1.0


def test_recording_leaves_only_mp4(recording):
    out, _ = recording
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_cli_no_sound_has_no_audio(tmp_path):
    out = tmp_path / "silent.mp4"
    result = run_cli("--record", out, "--no-sound", "--size", "128x224", "--from", "1",
                     "--to", "1.2", "--preset", "ultrafast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert probe(out)["audio"] is None


def test_cli_record_wav_writes_range(tmp_path, full_track):
    out = tmp_path / "track.wav"
    result = run_cli("--record", out, "--from", "3", "--to", "3.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as file:
        data = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(data, audio.to_int16(full_track[144_000:168_000]))


@pytest.mark.parametrize("arguments, message", [
    (("--record", "out.mp4", "--no-sound", "--music", "tone.flac"), "--music and --no-sound"),
    (("--audio-only", "--record", "out.mp4"), "--audio-only writes a WAV file"),
    (("--record", "out.wav", "--no-sound"), "--no-sound leaves nothing to write"),
])
def test_cli_sound_option_conflicts(tmp_path, arguments, message):
    result = run_cli(*arguments, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------
# Preview playback

PREVIEW_SCRIPT = textwrap.dedent("""
    import logging, sys, time
    import pyglet
    if sys.argv[1] == "silent-driver":
        pyglet.options["headless"] = True
        pyglet.options["audio"] = ("silent",)
    from hyperloss_gl import audio, log
    from hyperloss_gl.look import load_look
    from hyperloss_gl.scene import load_scene

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    scene, look = load_scene(), load_look()
    for _ in range(2):
        sound = audio.PreviewSound(scene, look)
        sound.play(3.0)
        sound.stop()
        sound.play(5.0)
        sound.close()
        sound.play(1.0)
    print("available", sound.available)
    print("lines", len(records))
    for record in records:
        print("line", record.getMessage())
    if sys.argv[1] == "silent-driver":
        # Drive the real pyglet player with the silent driver as if it were a device.
        import pyglet.media
        sources = []
        make_source = audio._track_source
        audio._track_source = lambda *a: sources.append(make_source(*a)) or sources[-1]
        audio._open_pyglet_media = lambda: pyglet.media
        sound = audio.PreviewSound(scene, look)
        sound.play(3.0)
        time.sleep(0.5)
        played = sources[0]._position - 144000
        sound.close()
        fresh = make_source(pyglet.media, sound.track, 144000)
        data = fresh.get_audio_data(4096)
        same = data.data == audio.to_int16(sound.track.render(144000, 145024)).tobytes()
        print("played", played, "same", same)
""")


def run_preview_script(mode: str) -> str:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", PREVIEW_SCRIPT, mode], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_preview_without_display_is_silent():
    output = run_preview_script("no-display")
    assert "available False" in output
    assert "lines 1" in output, output
    assert "no sound device" in output


def test_preview_with_silent_driver_is_silent():
    output = run_preview_script("silent-driver")
    assert "available False" in output
    assert "lines 1" in output, output
    assert "silent driver" in output
    played = int(output.split("played ")[1].split()[0])
    assert played > 0
    assert "same True" in output
