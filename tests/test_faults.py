"""Runtime faults through the real command line: FFmpeg, disk, signals, OpenGL, display, shaders.

Each case runs ``python -m hyperloss_gl`` in a work folder under ``tmp_path``. It
checks the exit status (1 for a runtime fault, 130 after SIGINT, 143 after SIGTERM),
the message, and that no traceback is printed. It also checks that the folder
contains exactly the expected files: no temporary, lock or half-written file, and
an earlier file at the output path unchanged.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

from test_cli import ROOT
from test_encode import mounted_tmpfs
from hyperloss_gl.encode import probe

TINY = ("--size", "64x112", "--fps", "10")
"""Output options that keep every recording in this file fast."""
EARLIER = b"an earlier recording that must survive"
TIMEOUT_S = 60.0


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.fixture
def work(tmp_path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def assert_fault(result, status: int, *fragments: str) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} missing from: {result.stderr}"


def fake_ffmpeg(folder: Path, encode_body: str) -> dict[str, str]:
    """Write an ffmpeg that runs ``encode_body`` when it would encode frames from stdin.

    Every other call (``-encoders``, ``-h``, probing) goes to the real FFmpeg. Returns
    the environment that makes Hyperloss use it.
    """
    real = imageio_ffmpeg.get_ffmpeg_exe()
    script = folder / "ffmpeg"
    script.write_text(f"""#!/bin/bash
REAL={real!r}
for argument in "$@"; do
    if [ "$argument" = pipe:0 ]; then
{encode_body}
    fi
done
exec "$REAL" "$@"
""")
    script.chmod(0o755)
    return {"IMAGEIO_FFMPEG_EXE": str(script)}


def processes_mentioning(text: str) -> list[str]:
    """Return the command lines of running processes that contain ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in command:
            found.append(command.decode(errors="replace"))
    return found


def run_cli(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "hyperloss_gl", *map(str, args)], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=TIMEOUT_S)


def default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler; a terminal's foreground job gets the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(*args, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "hyperloss_gl", *map(str, args)], cwd=cwd,
                            env=environment, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)


def read_until(process: subprocess.Popen, marker: str) -> str:
    """Read the process's standard error until it contains ``marker``; return what was read.

    It reads the file descriptor directly, because select() does not see lines that
    already wait in the buffer of ``process.stderr``.
    """
    data = b""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr.fileno()], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(process.stderr.fileno(), 1 << 16)
        assert chunk, f"the process exited before logging {marker!r}:\n{data.decode()}"
        data += chunk
        if marker.encode() in data:
            return data.decode()
    process.kill()
    raise AssertionError(f"no {marker!r} within {TIMEOUT_S} s:\n{data.decode()}")


def finish(process: subprocess.Popen, text: str) -> subprocess.CompletedProcess:
    """Wait for the process; return its status and all of its standard error."""
    _, remaining = process.communicate(timeout=TIMEOUT_S)
    return subprocess.CompletedProcess(process.args, process.returncode, "", text + remaining)


# FFmpeg fails while recording


def test_ffmpeg_exits_early(tmp_path, work):
    env = fake_ffmpeg(tmp_path, """
        head -c 100000 > /dev/null
        echo "fake ffmpeg: Conversion failed: simulated encoder error" >&2
        exit 1""")
    (work / "out.mp4").write_bytes(EARLIER)
    result = run_cli("--record", "out.mp4", "--to", "1", *TINY, cwd=work, env=env)
    assert_fault(result, 1, "FFmpeg exit status 1", "Last lines of FFmpeg's output",
                 "fake ffmpeg: Conversion failed: simulated encoder error",
                 "out.mp4 is unchanged")
    assert files_under(work) == {"out.mp4"}
    assert (work / "out.mp4").read_bytes() == EARLIER


def test_ffmpeg_killed(tmp_path, work):
    env = fake_ffmpeg(tmp_path, """
        head -c 100000 > /dev/null
        echo "fake ffmpeg: killed after 100000 bytes" >&2
        kill -KILL $$""")
    result = run_cli("--record", "out.mp4", "--to", "1", *TINY, cwd=work, env=env)
    assert_fault(result, 1, "killed by SIGKILL", "fake ffmpeg: killed after 100000 bytes")
    assert files_under(work) == set()


# The disk fills up


@pytest.mark.parametrize("sound", [True, False])
def test_disk_full_keeps_earlier_recording(work, sound):
    with mounted_tmpfs(work / "full", "size=40k") as full:
        (full / "out.mp4").write_bytes(EARLIER * 800)
        sound_options = () if sound else ("--no-sound",)
        result = run_cli("--record", "full/out.mp4", "--to", "5", *sound_options, *TINY,
                         cwd=work)
        assert_fault(result, 1, "No space left on device", "full/out.mp4 is unchanged")
        assert files_under(full) == {"out.mp4"}
        assert (full / "out.mp4").read_bytes() == EARLIER * 800


def test_disk_full_keeps_earlier_still(work):
    with mounted_tmpfs(work / "full", "size=40k") as full:
        (full / "still.png").write_bytes(EARLIER * 800)
        result = run_cli("--still", "5", "--output", "full/still.png", "--size", "540x960",
                         cwd=work)
        assert_fault(result, 1, "failed to write the still full/still.png",
                     "No space left on device", "full/still.png is unchanged")
        assert files_under(full) == {"still.png"}
        assert (full / "still.png").read_bytes() == EARLIER * 800


# Ctrl-C and SIGTERM


@pytest.mark.parametrize("signum, status, message", [
    (signal.SIGINT, 130, "stopped by Ctrl-C (SIGINT)"),
    (signal.SIGTERM, 143, "stopped by SIGTERM"),
])
def test_signal_while_recording(work, signum, status, message):
    (work / "out.mp4").write_bytes(EARLIER)
    # The whole video at 30 frames per second takes seconds, so the signal lands mid-way.
    process = start_cli("--record", "out.mp4", "--size", "64x112", "--fps", "30", cwd=work)
    text = read_until(process, "Recording 64x112")
    time.sleep(0.3)
    process.send_signal(signum)
    result = finish(process, text)
    assert_fault(result, status, message, "aborted; removed the temporary file")
    assert files_under(work) == {"out.mp4"}
    assert (work / "out.mp4").read_bytes() == EARLIER
    assert processes_mentioning(str(work)) == []


# No OpenGL


@pytest.mark.parametrize("variable, library, fragment", [
    ("GLCONTEXT_LINUX_LIBEGL", "/nonexistent/libEGL.so.1", "cannot load the EGL library"),
    ("GLCONTEXT_LINUX_LIBGL", "/nonexistent/libGL.so.1", "cannot load the OpenGL library"),
])
def test_missing_gl_library(work, variable, library, fragment):
    result = run_cli("--record", "out.mp4", "--to", "1", *TINY, cwd=work,
                     env={variable: library})
    assert_fault(result, 1, fragment, f"({library} not loaded)",
                 "apt-get install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri")
    assert files_under(work) == set()


def test_no_opengl_3_3(work):
    result = run_cli("--still", "1", "--output", "still.png", *TINY, cwd=work,
                     env={"MESA_GL_VERSION_OVERRIDE": "3.0"})
    if result.returncode == 0:
        pytest.skip("the OpenGL driver is not Mesa, so MESA_GL_VERSION_OVERRIDE has no effect")
    assert_fault(result, 1, "cannot create an OpenGL 3.3 core context through EGL",
                 "apt-get install libegl1")
    assert files_under(work) == set()


# No display for the preview


def test_preview_without_display(work):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-m", "hyperloss_gl", *TINY], cwd=work, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert_fault(result, 1, "cannot open the preview window: DISPLAY is not set",
                 "--record", "xvfb-run")
    assert files_under(work) == set()


@pytest.fixture
def display():
    """Start Xvfb on a free display number and return it as ``:N``; skip without Xvfb."""
    if not shutil.which("Xvfb"):
        pytest.skip("needs Xvfb (Debian: apt-get install xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                               "1920x1080x24", "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20.0)
        assert ready, "Xvfb did not report its display number within 20 s"
        yield ":" + os.read(read_end, 64).decode().strip()
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("signum, status, message", [
    (signal.SIGINT, 130, "stopped by Ctrl-C (SIGINT)"),
    (signal.SIGTERM, 143, "stopped by SIGTERM"),
])
def test_signal_stops_preview(work, display, signum, status, message):
    process = start_cli(*TINY, cwd=work, env={"DISPLAY": display})
    text = read_until(process, "preview renders at")
    time.sleep(0.5)
    process.send_signal(signum)
    result = finish(process, text)
    assert_fault(result, status, message)
    assert files_under(work) == set()


# Shaders that fail to compile


@pytest.mark.parametrize("broken", ["composite.frag", "common.glsl"])
def test_shader_error_before_recording(work, broken):
    shaders = work / "shaders"
    shutil.copytree(ROOT / "shaders", shaders)
    lines = (shaders / broken).read_text().splitlines()
    (shaders / broken).write_text("\n".join([*lines, "this is not GLSL"]) + "\n")
    before = files_under(work)
    result = run_cli("--record", "out.mp4", "--shaders", "shaders", "--to", "1", *TINY,
                     cwd=work)
    assert_fault(result, 1, "failed to build", f"{broken}:{len(lines) + 1}:",
                 "syntax error")
    assert "Recording" not in result.stderr
    assert files_under(work) == before


def test_shader_error_in_preview(work, display):
    shaders = work / "shaders"
    shutil.copytree(ROOT / "shaders", shaders)
    lines = (shaders / "text.frag").read_text().splitlines()
    (shaders / "text.frag").write_text("\n".join([*lines, "this is not GLSL"]) + "\n")
    result = run_cli("--shaders", "shaders", *TINY, cwd=work, env={"DISPLAY": display})
    assert_fault(result, 1, "shader program 'text' failed to build",
                 f"text.frag:{len(lines) + 1}:")


# Two recordings of one file


def test_second_recording_of_same_file_rejected(tmp_path, work):
    release = tmp_path / "release"
    # The first recording's FFmpeg starts encoding only once the release file exists.
    env = fake_ffmpeg(tmp_path, f"""
        while [ ! -e {str(release)!r} ]; do sleep 0.05; done""")
    first = start_cli("--record", "same.mp4", "--to", "1", *TINY, cwd=work, env=env)
    try:
        text = read_until(first, "Recording 64x112")
        second = run_cli("--record", "same.mp4", "--to", "2", *TINY, cwd=work, env=env)
    finally:
        release.touch()
    assert_fault(second, 2, "same.mp4 is already being written by process "
                            f"{first.pid}", "wait for it to finish")
    result = finish(first, text)
    assert result.returncode == 0, result.stderr
    assert files_under(work) == {"same.mp4"}
    assert probe(work / "same.mp4")["frame_count"] == 10
