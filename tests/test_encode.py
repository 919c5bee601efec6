"""Tests of hyperloss_gl.encode against the FFmpeg binary that imageio-ffmpeg ships.

Frames are small synthetic pictures (gradients and moving squares) built with NumPy.
The squares sit on even coordinates and move 2 pixels per frame, so their edges match
the 2x2 chroma blocks of yuv420p. Sharp colour edges inside a block lose chroma detail
in any 4:2:0 encoding and would cap the PSNR near 31 dB even when lossless.
"""

import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import wave
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pytest

from hyperloss_gl import encode
from hyperloss_gl.encode import (
    EncoderSettings,
    VideoWriter,
    concat_segments,
    decode_frames,
    probe,
    rgb_to_yuv420p,
    yuv420p_to_rgb,
)
from hyperloss_gl.errors import HyperlossError, UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 128, 224, 60


# ---------------------------------------------------------------------------
# Helpers


def make_frames(count, width=WIDTH, height=HEIGHT, start=0):
    """Return RGBA frames (count, h, w, 4): a colour gradient with two moving squares."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 4), dtype=np.uint8)
    for index in range(count):
        n = start + index
        frame = frames[index]
        frame[..., 0] = x * 255 // (width - 1)
        frame[..., 1] = y * 255 // (height - 1)
        frame[..., 2] = (n * 6) % 256
        frame[..., 3] = 255
        top = (2 * n) % (height - 24)
        frame[top : top + 20, 10:30, :3] = (230, 60, 20)
        left = (2 * n) % (width - 16)
        frame[60:72, left : left + 12, :3] = (30, 200, 240)
    return frames


def noise_frames(count, width, height, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, height, width, 4), dtype=np.uint8)


def record(path, frames, settings=None, **kwargs):
    """Record RGBA frames through frame_buffer()/submit() and return the RecordingResult."""
    height, width = frames.shape[1:3]
    settings = settings or EncoderSettings()
    with VideoWriter(path, width, height, FPS, settings, **kwargs) as writer:
        for frame in frames:
            buffer = writer.frame_buffer()
            buffer[...] = frame
            writer.submit(buffer)
    return writer.close()


def psnr(first, second):
    difference = first.astype(np.float64) - second.astype(np.float64)
    mse = np.mean(difference**2)
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(255.0**2 / mse)


def write_wav(path, seconds, sample_rate=44100, channels=1):
    samples = round(seconds * sample_rate)
    t = np.arange(samples) / sample_rate
    tone = (np.sin(2 * np.pi * 440.0 * t) * 12000).astype("<i2")
    data = np.repeat(tone[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(data.tobytes())
    return path


def top_level_boxes(path):
    """Return the types of the top-level ISO BMFF boxes of an MP4 file, in file order."""
    types = []
    data = Path(path).read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        types.append(box_type.decode("ascii"))
        if size < 8:
            break
        offset += size
    return types


def frame_times(path):
    """Return the presentation time in seconds of each decoded frame, from showinfo."""
    result = subprocess.run(
        [encode.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0"]
        + ["-vf", "showinfo", "-f", "null", "-"],
        check=False,
        capture_output=True,
        text=True,
    )
    return [float(value) for value in re.findall(r"pts_time:([0-9.]+)", result.stderr)]


def decode_planes(path):
    """Return the stored yuv420p planes of every frame, shape (n, w * h * 3 / 2)."""
    result = subprocess.run(
        [
            encode.ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-f",
            "rawvideo",
            "-",
        ],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(result.stdout, dtype=np.uint8).reshape(-1, WIDTH * HEIGHT * 3 // 2)


def leftovers(folder):
    """Return the hidden temporary and lock files in a folder."""
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


@contextmanager
def mounted_tmpfs(path, options):
    """Mount a tmpfs at path for the duration of the block, or skip the test if not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            check=False,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("the mount command is not installed")
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def insert_output_options(monkeypatch, *options):
    """Make VideoWriter pass extra FFmpeg output options, placed before the output file."""
    original = encode.build_encode_command

    def build(*args, **kwargs):
        command = original(*args, **kwargs)
        return command[:-1] + list(options) + command[-1:]

    monkeypatch.setattr(encode, "build_encode_command", build)


@pytest.fixture(scope="module")
def source_frames():
    return make_frames(30)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, source_frames):
    """One default recording of source_frames, shared by the read-only checks."""
    path = tmp_path_factory.mktemp("recorded") / "clip.mp4"
    result = record(path, source_frames)
    return path, result


# ---------------------------------------------------------------------------
# Output format


def test_probe_reports_h264_high_bt709(recorded, source_frames):
    path, _ = recorded
    info = probe(path)

    assert info["codec"] == "h264"
    assert info["profile"] == "High"
    assert info["pix_fmt"] == "yuv420p"
    assert info["width"] == WIDTH
    assert info["height"] == HEIGHT
    assert info["fps"] == FPS
    assert info["frame_count"] == len(source_frames)
    assert info["color_range"] == "tv"
    assert info["color_space"] == "bt709"
    assert info["color_transfer"] == "bt709"
    assert info["color_primaries"] == "bt709"
    assert info["duration"] == pytest.approx(len(source_frames) / FPS, abs=0.01)
    assert info["audio"] is None


def test_recording_result_fields(recorded, source_frames):
    path, result = recorded

    assert result.path == path
    assert result.frames == len(source_frames)
    assert result.duration_seconds == pytest.approx(len(source_frames) / FPS)
    assert result.size_bytes == path.stat().st_size
    assert result.queue_wait_seconds >= 0
    assert result.pipe_write_seconds > 0


def test_index_before_media_data(recorded):
    boxes = top_level_boxes(recorded[0])

    assert "moov" in boxes
    assert "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")


def test_frame_n_shown_at_n_over_fps(recorded, source_frames):
    times = frame_times(recorded[0])

    assert len(times) == len(source_frames)
    expected = np.arange(len(source_frames)) / FPS
    assert np.allclose(times, expected, atol=1e-4)


def test_command_converts_and_tags_bt709(recorded):
    command = " ".join(recorded[1].command)

    assert "scale=out_color_matrix=bt709:out_range=tv:flags=full_chroma_inp+area" in command
    assert "-color_range pc -colorspace rgb" in command
    assert "-color_primaries bt709 -color_trc bt709 -colorspace bt709 -color_range tv" in command
    assert "-movflags +faststart" in command
    assert "-profile:v high" in command
    assert "-r 60" in command


def test_rgba_round_trip_psnr(recorded, source_frames):
    decoded = decode_frames(recorded[0], WIDTH, HEIGHT)

    assert decoded.shape == (len(source_frames), HEIGHT, WIDTH, 3)
    assert decoded.dtype == np.uint8
    per_frame = [psnr(decoded[i], source_frames[i, ..., :3]) for i in range(len(source_frames))]
    assert min(per_frame) >= 35.0, per_frame


def test_decode_frames_start_and_count(recorded):
    everything = decode_frames(recorded[0], WIDTH, HEIGHT)
    window = decode_frames(recorded[0], WIDTH, HEIGHT, start=10, count=5)
    tail = decode_frames(recorded[0], WIDTH, HEIGHT, start=25)

    assert window.shape[0] == 5
    assert np.array_equal(window, everything[10:15])
    assert np.array_equal(tail, everything[25:])


def test_decode_frames_rejects_wrong_size(recorded):
    with pytest.raises(HyperlossError, match=f"{WIDTH}x{HEIGHT}, not 32x32"):
        decode_frames(recorded[0], 32, 32)


def test_lossless_rgba_matches_reference_conversion(tmp_path, source_frames):
    path = tmp_path / "lossless.mp4"
    record(path, source_frames, EncoderSettings(crf=0))
    decoded = decode_planes(path)

    reference = np.stack([rgb_to_yuv420p(frame) for frame in source_frames])
    difference = np.abs(decoded.astype(int) - reference.astype(int))
    # FFmpeg's fixed-point conversion and the float reference may round differently.
    assert decoded.shape == reference.shape
    assert difference.max() <= 1
    assert difference.mean() < 0.1
    assert probe(path, count_frames=False)["profile"] == "High 4:4:4 Predictive"


def test_yuv420p_input_is_passed_through_exactly(tmp_path, source_frames):
    path = tmp_path / "yuv.mp4"
    planes = [rgb_to_yuv420p(frame) for frame in source_frames]
    with VideoWriter(
        path, WIDTH, HEIGHT, FPS, EncoderSettings(crf=0), input_format="yuv420p"
    ) as writer:
        for plane in planes:
            writer.write(plane)
    decoded = decode_frames(path, WIDTH, HEIGHT)

    # Lossless H.264 returns the planes bit for bit, so any conversion by FFmpeg would show.
    expected = np.stack([yuv420p_to_rgb(plane, WIDTH, HEIGHT) for plane in planes])
    assert np.array_equal(decoded, expected)
    info = probe(path, count_frames=False)
    assert info["color_range"] == "tv"
    assert info["color_space"] == "bt709"
    assert info["color_transfer"] == "bt709"
    assert info["color_primaries"] == "bt709"
    assert "scale=" not in " ".join(writer.close().command)


def test_yuv420p_and_rgba_paths_agree(tmp_path, source_frames, recorded):
    path = tmp_path / "yuv.mp4"
    with VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings(), input_format="yuv420p") as writer:
        for frame in source_frames:
            buffer = writer.frame_buffer()
            buffer[...] = rgb_to_yuv420p(frame)
            writer.submit(buffer)
    from_yuv = decode_frames(path, WIDTH, HEIGHT)
    from_rgba = decode_frames(recorded[0], WIDTH, HEIGHT)

    assert psnr(from_yuv, from_rgba) >= 40.0
    assert np.abs(from_yuv.astype(int) - from_rgba.astype(int)).mean() < 1.5
    assert psnr(from_yuv, source_frames[..., :3]) >= 35.0


def test_audio_muxed_as_aac_48k_stereo(tmp_path, source_frames):
    wav = write_wav(tmp_path / "tone.wav", len(source_frames) / FPS, sample_rate=44100, channels=1)
    path = tmp_path / "with_audio.mp4"
    result = record(path, source_frames, audio_path=wav)
    audio = probe(path)["audio"]

    assert audio is not None
    assert audio["codec"] == "aac"
    assert audio["sample_rate"] == 48000
    assert audio["channels"] == 2
    assert audio["duration"] == pytest.approx(0.5, abs=0.005)
    assert "-b:a 192k" in " ".join(result.command)
    assert "-shortest" not in result.command


def test_missing_audio_file_rejected(tmp_path):
    with pytest.raises(UsageError, match="nothing.wav not found"):
        VideoWriter(
            tmp_path / "a.mp4",
            WIDTH,
            HEIGHT,
            FPS,
            EncoderSettings(),
            audio_path=tmp_path / "nothing.wav",
        )


def test_libx265_records_hevc_main(tmp_path):
    path = tmp_path / "hevc.mp4"
    record(path, make_frames(8), EncoderSettings(codec="libx265", preset="ultrafast", crf=28))
    info = probe(path)

    assert info["codec"] == "hevc"
    assert info["profile"] == "Main"
    assert info["frame_count"] == 8
    assert info["color_space"] == "bt709"
    assert info["color_range"] == "tv"
    header = subprocess.run(
        [encode.ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert "hvc1" in header.stderr


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_mov_and_mkv_containers(tmp_path, suffix):
    path = tmp_path / f"clip{suffix}"
    record(path, make_frames(6))
    info = probe(path)

    assert info["frame_count"] == 6
    assert info["color_space"] == "bt709"


# ---------------------------------------------------------------------------
# Concatenation


def record_segments(folder, frames, sizes, settings):
    paths, start = [], 0
    for index, size in enumerate(sizes):
        path = folder / f"segment{index}.mp4"
        record(path, frames[start : start + size], settings)
        paths.append(path)
        start += size
    return paths


def test_concat_keeps_frames_and_tags(tmp_path, source_frames):
    segments = record_segments(tmp_path, source_frames, [10, 12, 8], EncoderSettings())
    joined = concat_segments(segments, tmp_path / "joined.mp4")
    info = probe(joined)
    decoded = decode_frames(joined, WIDTH, HEIGHT)

    assert info["frame_count"] == 30
    assert info["codec"] == "h264"
    assert info["profile"] == "High"
    assert info["color_range"] == "tv"
    assert info["color_space"] == "bt709"
    assert info["color_transfer"] == "bt709"
    assert info["color_primaries"] == "bt709"
    assert psnr(decoded, source_frames[..., :3]) >= 35.0
    assert np.allclose(frame_times(joined), np.arange(30) / FPS, atol=1e-4)
    boxes = top_level_boxes(joined)
    assert boxes.index("moov") < boxes.index("mdat")
    assert leftovers(tmp_path) == []


def test_concat_lossless_equals_single_recording(tmp_path, source_frames):
    settings = EncoderSettings(crf=0)
    segments = record_segments(tmp_path, source_frames, [10, 10, 10], settings)
    joined = concat_segments(segments, tmp_path / "joined.mp4")
    single = tmp_path / "single.mp4"
    record(single, source_frames, settings)

    assert np.array_equal(
        decode_frames(joined, WIDTH, HEIGHT), decode_frames(single, WIDTH, HEIGHT)
    )


def test_concat_with_audio(tmp_path, source_frames):
    segments = record_segments(tmp_path, source_frames, [15, 15], EncoderSettings())
    wav = write_wav(tmp_path / "tone.wav", 0.5, sample_rate=48000, channels=2)
    joined = concat_segments(segments, tmp_path / "joined.mp4", audio_path=wav)
    info = probe(joined)

    assert info["frame_count"] == 30
    assert info["audio"]["codec"] == "aac"
    assert info["audio"]["duration"] == pytest.approx(0.5, abs=0.005)


def test_concat_rejects_mismatched_segments(tmp_path):
    first = tmp_path / "a.mp4"
    second = tmp_path / "b.mp4"
    record(first, make_frames(4))
    record(second, make_frames(4, width=32, height=32))

    with pytest.raises(UsageError, match="b.mp4 has width"):
        concat_segments([first, second], tmp_path / "joined.mp4")
    assert not (tmp_path / "joined.mp4").exists()


def test_concat_rejects_missing_segment(tmp_path):
    with pytest.raises(UsageError, match="missing.mp4 not found"):
        concat_segments([tmp_path / "missing.mp4"], tmp_path / "joined.mp4")


# ---------------------------------------------------------------------------
# Settings and output path checks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codec": "libvpx"}, "Unsupported encoder 'libvpx'"),
        ({"crf": 52}, "Invalid crf 52"),
        ({"crf": -1}, "Invalid crf -1"),
        ({"crf": 18, "bitrate": "8M"}, "mutually exclusive"),
        ({"crf": None}, "Neither crf nor bitrate"),
        ({"crf": None, "bitrate": "8 Mbit"}, "Invalid bitrate"),
        ({"preset": "quick"}, "Invalid preset 'quick' for libx264"),
        ({"codec": "h264_nvenc", "crf": 0}, "not available with h264_nvenc"),
    ],
)
def test_encoder_settings_rejected(kwargs, message):
    with pytest.raises(UsageError, match=message):
        EncoderSettings(**kwargs)


def test_bitrate_setting_accepted(tmp_path):
    path = tmp_path / "bitrate.mp4"
    result = record(path, make_frames(6), EncoderSettings(crf=None, bitrate="2M"))

    assert "-b:v 2M" in " ".join(result.command)
    assert probe(path)["frame_count"] == 6


def test_encoder_missing_from_build_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(encode, "available_encoders", lambda: frozenset({"libx264"}))

    with pytest.raises(UsageError, match="Encoder libx265 is not available.*use codec libx264"):
        VideoWriter(tmp_path / "a.mp4", WIDTH, HEIGHT, FPS, EncoderSettings(codec="libx265"))
    assert leftovers(tmp_path) == []


def test_nvenc_without_gpu_rejected(tmp_path):
    if encode._hardware_encoder_error("h264_nvenc") is None:
        pytest.skip("h264_nvenc works on this machine")

    with pytest.raises(UsageError, match="h264_nvenc failed to start.*use codec libx264"):
        VideoWriter(
            tmp_path / "a.mp4", WIDTH, HEIGHT, FPS, EncoderSettings(codec="h264_nvenc", preset="p4")
        )


@pytest.mark.parametrize(("width", "height"), [(63, 96), (64, 95)])
def test_odd_frame_size_rejected(tmp_path, width, height):
    with pytest.raises(UsageError, match="needs an even"):
        VideoWriter(tmp_path / "a.mp4", width, height, FPS, EncoderSettings())


@pytest.mark.parametrize("name", ["clip.avi", "clip", "clip.mp4.tmp"])
def test_bad_extension_rejected(tmp_path, name):
    with pytest.raises(UsageError, match="extension must be one of .mp4, .mov, .mkv"):
        VideoWriter(tmp_path / name, WIDTH, HEIGHT, FPS, EncoderSettings())


def test_output_path_is_folder_rejected(tmp_path):
    folder = tmp_path / "clip.mp4"
    folder.mkdir()

    with pytest.raises(UsageError, match=f"{folder} is a folder"):
        VideoWriter(folder, WIDTH, HEIGHT, FPS, EncoderSettings())


def test_missing_output_folder_created(tmp_path, caplog):
    path = tmp_path / "new" / "nested" / "clip.mp4"
    with caplog.at_level("INFO", logger="hyperloss_gl"):
        record(path, make_frames(4))

    assert path.is_file()
    assert f"Created output folder {path.parent}" in caplog.text


def test_unwritable_folder_rejected(tmp_path):
    folder = tmp_path / "readonly"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        context = nullcontext(folder)
    else:
        # Root ignores permission bits, so use a read-only file system instead.
        context = mounted_tmpfs(folder, "ro,size=64k")

    with context:
        with pytest.raises(UsageError, match=f"{folder} is not writable"):
            VideoWriter(folder / "clip.mp4", WIDTH, HEIGHT, FPS, EncoderSettings())
        assert os.listdir(folder) == []


# ---------------------------------------------------------------------------
# Atomic output and locking


def test_output_appears_only_when_complete(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings())
    for frame in make_frames(10):
        writer.write(frame)

    assert not path.exists()
    assert writer.temp_path.parent == tmp_path
    assert writer.temp_path.name == f".clip.partial-{os.getpid()}.mp4"
    assert writer.temp_path.exists()
    assert (tmp_path / ".clip.mp4.lock").exists()

    writer.close()

    assert path.is_file()
    assert leftovers(tmp_path) == []


def test_existing_output_replaced_on_success(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old recording")
    record(path, make_frames(6))

    assert probe(path)["frame_count"] == 6


def test_second_writer_in_same_process_rejected(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings()) as first:
        with pytest.raises(UsageError, match=f"already being written by process {os.getpid()}"):
            VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings())
        for frame in make_frames(5):
            first.write(frame)

    assert probe(path)["frame_count"] == 5
    assert leftovers(tmp_path) == []


def test_second_writer_names_other_process(tmp_path):
    path = tmp_path / "clip.mp4"
    child_code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from hyperloss_gl.encode import EncoderSettings, VideoWriter
        frame = np.full(({HEIGHT}, {WIDTH}, 4), 128, dtype=np.uint8)
        with VideoWriter({str(path)!r}, {WIDTH}, {HEIGHT}, {FPS}, EncoderSettings()) as writer:
            for _ in range(10):
                writer.write(frame)
            print("ready", flush=True)
            sys.stdin.readline()
            for _ in range(10):
                writer.write(frame)
        print("done", flush=True)
        """
    )
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", child_code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert child.stdout.readline().strip() == "ready"

        started = time.monotonic()
        with pytest.raises(UsageError) as raised:
            VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings())
        assert time.monotonic() - started < 5.0
        assert f"process {child.pid}" in str(raised.value)
        assert "already being written" in str(raised.value)

        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()

    assert probe(path)["frame_count"] == 20
    assert leftovers(tmp_path) == []


def test_stale_partial_file_removed(tmp_path):
    stale = tmp_path / ".clip.partial-999999.mp4"
    stale.write_bytes(b"left by a crashed writer")
    record(tmp_path / "clip.mp4", make_frames(4))

    assert not stale.exists()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# Failures while recording


def test_killed_ffmpeg_raises_and_cleans_up(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous file")
    frames = make_frames(40)
    writer = VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings())
    for frame in frames[:5]:
        writer.write(frame)
    os.kill(writer.process.pid, signal.SIGKILL)
    writer.process.wait()

    with pytest.raises(HyperlossError) as raised:
        for frame in frames[5:]:
            writer.write(frame)
        writer.close()

    message = str(raised.value)
    assert "killed by SIGKILL" in message
    assert "A signal from outside this program stopped FFmpeg" in message
    assert "Last lines of FFmpeg's output" in message
    assert f"The existing file {path} is unchanged" in message
    assert path.read_bytes() == b"previous file"
    assert leftovers(tmp_path) == []
    writer.abort()  # safe after the failure


def test_ffmpeg_startup_error_quoted(tmp_path, monkeypatch):
    # x264 refuses to open with High profile for lossless encoding (crf 0).
    insert_output_options(monkeypatch, "-profile:v", "high")
    path = tmp_path / "clip.mp4"

    with pytest.raises(HyperlossError) as raised:
        with VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings(crf=0)) as writer:
            for frame in make_frames(30):
                writer.write(frame)

    message = str(raised.value)
    assert "high profile doesn't support lossless" in message
    assert "exit status" in message
    assert "Nothing was written" in message
    assert not path.exists()
    assert writer.process.poll() is not None
    assert leftovers(tmp_path) == []


def test_ffmpeg_stopping_early_raises(tmp_path, monkeypatch):
    # FFmpeg exits with status 0 after 5 frames and closes its end of the pipe.
    insert_output_options(monkeypatch, "-frames:v", "5")
    path = tmp_path / "clip.mp4"

    with pytest.raises(HyperlossError) as raised:
        with VideoWriter(path, 256, 256, FPS, EncoderSettings()) as writer:
            for frame in make_frames(200, width=256, height=256):
                writer.write(frame)

    assert "Recording" in str(raised.value)
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_disk_full_keeps_existing_file(tmp_path):
    with mounted_tmpfs(tmp_path / "small", "size=256k") as folder:
        path = folder / "clip.mp4"
        previous = os.urandom(16 * 1024)
        path.write_bytes(previous)

        # Lossless noise needs about 40 KiB per frame, so 40 frames cannot fit.
        with pytest.raises(HyperlossError) as raised:
            with VideoWriter(path, 128, 224, FPS, EncoderSettings(crf=0)) as writer:
                for frame in noise_frames(40, 128, 224):
                    writer.write(frame)

        message = str(raised.value)
        assert "No space left on device" in message
        assert "Free space on the disk" in message
        assert path.read_bytes() == previous
        assert leftovers(folder) == []


def test_keyboard_interrupt_aborts_cleanly(tmp_path):
    path = tmp_path / "clip.mp4"

    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings()) as writer:
            for frame in make_frames(10):
                writer.write(frame)
            raise KeyboardInterrupt

    assert writer.process.poll() is not None
    assert not writer._thread.is_alive()
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_interrupt_while_blocked_aborts(tmp_path):
    # A stopped FFmpeg reads nothing, so write() blocks until SIGINT arrives.
    path = tmp_path / "clip.mp4"
    frame = np.full((512, 512, 4), 100, dtype=np.uint8)
    writer = VideoWriter(path, 512, 512, FPS, EncoderSettings(), queue_frames=2)
    os.kill(writer.process.pid, signal.SIGSTOP)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))

    with pytest.raises(KeyboardInterrupt):
        with writer:
            timer.start()
            for _ in range(1000):
                writer.write(frame)

    assert writer.frames_submitted < 1000
    assert writer.process.returncode == -signal.SIGKILL
    assert not writer._thread.is_alive()
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_abort_twice_and_after_close(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = VideoWriter(path, WIDTH, HEIGHT, FPS, EncoderSettings())
    writer.write(make_frames(1)[0])
    writer.abort()
    writer.abort()

    assert not path.exists()
    assert leftovers(tmp_path) == []

    result = record(path, make_frames(3))
    closed = VideoWriter(tmp_path / "other.mp4", WIDTH, HEIGHT, FPS, EncoderSettings())
    closed.write(make_frames(1)[0])
    closed.close()
    closed.abort()

    assert (tmp_path / "other.mp4").is_file()
    assert result.path.is_file()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# Frame buffers and queue


def test_frame_buffers_are_reused(tmp_path):
    seen = set()
    with VideoWriter(
        tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS, EncoderSettings(), queue_frames=2
    ) as writer:
        for frame in make_frames(20):
            buffer = writer.frame_buffer()
            seen.add(id(buffer))
            buffer[...] = frame
            writer.submit(buffer)

    assert len(seen) <= 2 + 2
    assert buffer.shape == (HEIGHT, WIDTH, 4)
    assert buffer.dtype == np.uint8


def test_submit_rejects_foreign_buffer(tmp_path):
    with VideoWriter(tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS, EncoderSettings()) as writer:
        with pytest.raises(ValueError, match="buffer returned by frame_buffer"):
            writer.submit(np.zeros((HEIGHT, WIDTH, 4), dtype=np.uint8))
        writer.write(make_frames(1)[0])


def test_write_rejects_wrong_size(tmp_path):
    with VideoWriter(tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS, EncoderSettings()) as writer:
        with pytest.raises(ValueError, match=f"expected {WIDTH * HEIGHT * 4}"):
            writer.write(b"\0" * 100)
        writer.write(make_frames(1)[0].tobytes())


def test_stderr_goes_to_file(tmp_path):
    with VideoWriter(tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS, EncoderSettings()) as writer:
        writer.write(make_frames(1)[0])
        assert writer.process.stderr is None
        assert writer.process.stdout is None


def test_back_pressure_blocks_producer(tmp_path):
    # 512x512 RGBA frames are 1 MiB, so the 1 MiB stdin pipe takes about one of them.
    size = 512
    frame = np.full((size, size, 4), 100, dtype=np.uint8)
    writer = VideoWriter(tmp_path / "clip.mp4", size, size, FPS, EncoderSettings(), queue_frames=2)
    os.kill(writer.process.pid, signal.SIGSTOP)

    def produce():
        for _ in range(30):
            writer.write(frame)

    producer = threading.Thread(target=produce, daemon=True)
    try:
        producer.start()
        time.sleep(1.0)

        assert producer.is_alive()
        # Queue of 2, one buffer in the writer thread, and whatever the pipe took.
        assert writer.frames_submitted <= 6
    finally:
        os.kill(writer.process.pid, signal.SIGCONT)
    producer.join(timeout=30)
    result = writer.close()

    assert result.frames == 30
    assert writer.frames_written == 30
    assert result.queue_wait_seconds > 0.5


# ---------------------------------------------------------------------------
# Header parsing


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "yuv420p(tv, bt709, progressive)",
            ("yuv420p", "tv", "bt709", "bt709", "bt709"),
        ),
        (
            "yuv420p(tv, bt709/unknown/unknown, progressive)",
            ("yuv420p", "tv", "bt709", None, None),
        ),
        (
            "yuv420p(pc, gbr/bt709/iec61966-2-1, progressive, left)",
            ("yuv420p", "pc", "gbr", "bt709", "iec61966-2-1"),
        ),
        ("yuv420p(progressive)", ("yuv420p", None, None, None, None)),
        ("yuv420p", ("yuv420p", None, None, None, None)),
    ],
)
def test_pixel_format_parsing(spec, expected):
    parsed = encode._parse_pixel_format(spec)
    keys = ("pix_fmt", "color_range", "color_space", "color_primaries", "color_transfer")

    assert tuple(parsed[key] for key in keys) == expected


def test_audio_stream_parsing():
    parsed = encode._parse_audio_stream(
        "aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 195 kb/s (default)"
    )

    assert parsed["codec"] == "aac"
    assert parsed["profile"] == "LC"
    assert parsed["sample_rate"] == 48000
    assert parsed["channels"] == 2
