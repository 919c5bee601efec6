"""Recording with --jobs: segments joined into the frames of a single-process recording."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hyperloss_gl.encode import EncoderSettings, decode_frames, probe
from hyperloss_gl.errors import HyperlossError, UsageError
from hyperloss_gl.look import load_look
from hyperloss_gl.parallel import record_parallel, split_frames
from hyperloss_gl.record import FrameSource, RenderOptions, record_video

WIDTH, HEIGHT, FPS = 128, 224, 30
START, END = 3.0, 4.0
FRAMES = int((END - START) * FPS)
REPOSITORY = Path(__file__).resolve().parent.parent


def session_processes(session: int) -> list[str]:
    """Return the command lines of live processes in a session: workers and their FFmpegs.

    Zombies are left out: multiprocessing's resource tracker exits with the parent
    and stays a zombie until the system's init process reaps it.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
        if "\nState:\tZ" not in status:
            found.append(command)
    return found


def wait_for_session_end(session: int, seconds: float) -> list[str]:
    """Return the live processes of a session that remain after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while (remaining := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return remaining


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(error, 1e-12))


@pytest.mark.parametrize("length, jobs, expected", [
    (10, 3, [4, 3, 3]),
    (9, 3, [3, 3, 3]),
    (2, 4, [1, 1]),
    (1, 1, [1]),
])
def test_split_frames_lengths(length, jobs, expected):
    parts = split_frames(range(5, 5 + length), jobs)
    assert [len(part) for part in parts] == expected
    assert parts[0].start == 5
    assert parts[-1].stop == 5 + length
    for before, after in zip(parts, parts[1:]):
        assert before.stop == after.start


@pytest.fixture(scope="module")
def lossless_pair(tmp_path_factory, default_scene):
    folder = tmp_path_factory.mktemp("lossless")
    options = RenderOptions(WIDTH, HEIGHT, FPS, START, END)
    settings = EncoderSettings(preset="ultrafast", crf=0)
    single = folder / "single.mp4"
    joined = folder / "joined.mp4"
    record_video(default_scene, load_look(), single, options, settings, progress=False,
                 sound=False)
    summary = record_parallel(default_scene, load_look(), joined, options, settings, 3,
                              sound=False)
    return single, joined, summary


def test_lossless_segments_equal_single_recording(lossless_pair):
    single, joined, summary = lossless_pair
    assert summary.frames == FRAMES
    expected = decode_frames(single, WIDTH, HEIGHT)
    frames = decode_frames(joined, WIDTH, HEIGHT)
    assert frames.shape == expected.shape == (FRAMES, HEIGHT, WIDTH, 3)
    for index in range(FRAMES):
        assert np.array_equal(frames[index], expected[index]), f"frame {index} differs"


def test_joined_recording_has_no_audio_without_sound(lossless_pair):
    assert probe(lossless_pair[1])["audio"] is None


def test_default_settings_match_single_recording(gl, tmp_path, default_scene):
    options = RenderOptions(WIDTH, HEIGHT, FPS, START, END)
    # Render before recording, because record_video makes a context of its own current.
    source = FrameSource(default_scene, load_look(), options, ctx=gl)
    rendered_frames = [source.still(START + index / FPS)[..., :3] for index in range(FRAMES)]
    settings = EncoderSettings()
    single = tmp_path / "single.mp4"
    joined = tmp_path / "joined.mp4"
    record_video(default_scene, load_look(), single, options, settings, progress=False,
                 sound=False)
    record_parallel(default_scene, load_look(), joined, options, settings, 2)

    info = probe(joined)
    assert info["frame_count"] == FRAMES
    assert info["audio"] is not None
    assert info["audio"]["duration"] == pytest.approx(END - START, abs=0.03)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["joined.mp4", "single.mp4"]

    # Both are lossy, and the second segment restarts the encoder with an IDR frame,
    # so each file is compared with the rendered frames rather than with the other.
    expected = decode_frames(single, WIDTH, HEIGHT)
    frames = decode_frames(joined, WIDTH, HEIGHT)
    for index, rendered in enumerate(rendered_frames):
        quality = psnr(frames[index], rendered)
        reference = psnr(expected[index], rendered)
        # x264 at CRF 18 keeps about 31 to 34 dB of this dithered 128x224 picture.
        assert quality >= 30.0, f"PSNR {quality:.1f} dB at frame {index}"
        assert quality >= reference - 1.5, (
            f"frame {index}: {quality:.1f} dB joined, {reference:.1f} dB single")


def test_failing_worker_leaves_nothing(tmp_path, default_scene):
    shaders = tmp_path / "shaders"
    shaders.mkdir()
    for path in (REPOSITORY / "shaders").iterdir():
        (shaders / path.name).write_bytes(path.read_bytes())
    (shaders / "composite.frag").write_text("#version 330 core\nvoid main() { broken }\n")
    out = tmp_path / "out" / "video.mp4"
    options = RenderOptions(WIDTH, HEIGHT, FPS, START, END, shader_dir=shaders)

    with pytest.raises(HyperlossError, match="composite"):
        record_parallel(default_scene, load_look(), out, options, EncoderSettings(), 2,
                        sound=False)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_invalid_job_count_raises(tmp_path, default_scene):
    options = RenderOptions(WIDTH, HEIGHT, FPS, START, END)
    with pytest.raises(UsageError, match="job count"):
        record_parallel(default_scene, load_look(), tmp_path / "video.mp4", options,
                        EncoderSettings(), 0)


@pytest.mark.parametrize("signum, to_group, status", [
    (signal.SIGINT, True, 130),
    (signal.SIGTERM, False, 143),
])
def test_interrupt_leaves_nothing(tmp_path, signum, to_group, status):
    # SIGINT to the process group is what Ctrl-C in a terminal sends.
    out = tmp_path / "video.mp4"
    command = [sys.executable, "-m", "hyperloss_gl", "--record", str(out), "--jobs", "2",
               "--size", "256x448", "--from", "0", "--to", "20", "--preset", "ultrafast"]
    process = subprocess.Popen(command, cwd=REPOSITORY, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(tmp_path.glob(".video.segments-*/.segment-*.partial-*")):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no segment was started within 60 s"
            time.sleep(0.05)
        if to_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        assert process.wait(timeout=60) == status
        assert wait_for_session_end(process.pid, 5.0) == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stderr.close()
    assert list(tmp_path.iterdir()) == []


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run([sys.executable, "-m", "hyperloss_gl", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("jobs", ["0", "65", "two"])
def test_cli_rejects_invalid_jobs(tmp_path, jobs):
    result = run_cli("--record", "out.mp4", "--jobs", jobs, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "job count" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_cli_jobs_records_range(tmp_path):
    result = run_cli("--record", "out.mp4", "--jobs", "2", "--size", "108x192", "--fps", "10",
                     "--from", "2", "--to", "3", "--preset", "ultrafast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert probe(tmp_path / "out.mp4")["frame_count"] == 10
    assert "with 2 processes" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.mp4"]
