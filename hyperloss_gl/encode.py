"""Encode raw frames to MP4 with FFmpeg, and inspect, decode and join the results.

The record driver renders each frame into a buffer from :meth:`VideoWriter.frame_buffer`
and hands it back with :meth:`VideoWriter.submit`. A writer thread feeds the buffers to
the stdin of an FFmpeg process, the binary that imageio-ffmpeg ships, or the one named
by the ``IMAGEIO_FFMPEG_EXE`` environment variable.

Output: H.264 High profile (High 4:4:4 Predictive when lossless, or HEVC Main),
yuv420p in BT.709 limited (tv) range, with primaries, transfer, matrix and range
tagged as BT.709/tv, constant frame rate (frame n at t = n / fps) and the index at
the front of the file (``+faststart``).

Chroma of the 4:2:0 output is the mean of each 2x2 block of pixels, so the chroma
samples sit at the centre of the block and the stream is tagged
``chroma_sample_location=center``. :func:`decode_frames` repeats each chroma sample over
its block. A picture whose colour is constant on each 2x2 block therefore round-trips
within rounding and encoder loss.

The MP4 appears at the output path only when it is complete. Until then FFmpeg writes
a hidden file beside it, ``.<stem>.partial-<pid><suffix>``, and a lock file
``.<name>.lock`` keeps a second writer away from the same output path.
"""

from __future__ import annotations

import fcntl
import functools
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from hyperloss_gl import log
from hyperloss_gl.errors import HyperlossError, UsageError

SUPPORTED_CODECS = ("libx264", "libx265", "h264_nvenc")

# Preset names of x264 and x265 (``x264 --fullhelp``). FFmpeg passes them through as
# strings, so it would only reject a typo after the first frame arrives.
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)

# Output file suffix -> FFmpeg muxer.
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}

INPUT_FORMATS = ("rgba", "yuv420p")

AUDIO_CODEC_OPTIONS = ("-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2")

# BT.709 luma coefficients (ITU-R BT.709-6, table 3).
KR = 0.2126
KB = 0.0722
KG = 1.0 - KR - KB

# Number of FFmpeg output lines that an error message quotes.
STDERR_TAIL_LINES = 15

# Seconds that a failure path waits for FFmpeg to exit by itself before killing it.
EXIT_GRACE_SECONDS = 5.0

_BITRATE_PATTERN = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?[kKM]?$")
_FRAME_COUNT_PATTERN = re.compile(r"frame=\s*([0-9]+)")

# End-of-encode statistics of x264 and x265, which would push FFmpeg's own error
# messages out of the quoted tail of its output.
_ENCODER_STATISTICS_PATTERN = re.compile(r"^(\[libx26[45] @ 0x[0-9a-f]+\] |x265 \[info\])")


# ---------------------------------------------------------------------------
# FFmpeg binary and encoders


@functools.cache
def ffmpeg_exe() -> str:
    """Return the path of the FFmpeg binary, as imageio-ffmpeg finds it."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise HyperlossError(
            f"FFmpeg not found: {error} Reinstall imageio-ffmpeg or set IMAGEIO_FFMPEG_EXE "
            "to the path of an ffmpeg binary."
        ) from error


def _run_ffmpeg(arguments: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run FFmpeg to completion and capture its output as text."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", *arguments]
    try:
        return subprocess.run(
            command,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except OSError as error:
        raise HyperlossError(
            f"Failed to run FFmpeg at {command[0]}: {error}. Reinstall imageio-ffmpeg or set "
            "IMAGEIO_FFMPEG_EXE to a working ffmpeg binary."
        ) from error


@functools.cache
def available_encoders() -> frozenset[str]:
    """Return the names of the encoders that ``ffmpeg -encoders`` lists."""
    result = _run_ffmpeg(["-encoders"])
    names = set()
    for line in result.stdout.splitlines():
        # Lines look like " V....D libx264   libx264 H.264 / AVC ...".
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


@functools.cache
def _encoder_presets(codec: str) -> tuple[str, ...]:
    """Return the named values of an encoder's ``-preset`` option from ``ffmpeg -h``."""
    result = _run_ffmpeg(["-h", f"encoder={codec}"])
    presets = []
    in_preset_option = False
    for line in result.stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith("-preset "):
            in_preset_option = True
            continue
        if in_preset_option:
            # Named values are indented further than options and do not start with "-".
            if not stripped or stripped.startswith("-"):
                break
            presets.append(stripped.split()[0])
    return tuple(presets)


@functools.cache
def _hardware_encoder_error(codec: str) -> str | None:
    """Encode one frame with a hardware encoder and return FFmpeg's error, or None if it works.

    FFmpeg lists h264_nvenc whenever it was built with it, even on a machine without an
    NVIDIA GPU or driver, so only a trial encode shows whether it can run.
    """
    result = _run_ffmpeg(
        [
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=256x256:r=1:d=1",
            "-frames:v",
            "1",
            "-c:v",
            codec,
            "-f",
            "null",
            "-",
        ],
        timeout=60,
    )
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"exit status {result.returncode}"


# ---------------------------------------------------------------------------
# Settings


X264_DARK_AQ = "aq-mode=3:aq-strength=1.5"
"""x264 adaptive quantisation that spends bits on dark flat areas against banding."""


@dataclass(frozen=True)
class EncoderSettings:
    """Video encoder, preset and rate control, checked when the object is created.

    ``crf`` (0 to 51, lower is better, 0 is lossless with libx264) and ``bitrate``
    (FFmpeg syntax such as ``"8M"`` or ``"8000k"``) are mutually exclusive, so set
    ``crf=None`` to use a bitrate. Whether the codec exists in this FFmpeg build is
    checked by :meth:`check_available`, because that runs FFmpeg.
    """

    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int | None = 18
    bitrate: str | None = None

    def __post_init__(self):
        if self.codec not in SUPPORTED_CODECS:
            raise UsageError(
                f"Unsupported encoder {self.codec!r} (--encoder): choose one of "
                f"{', '.join(SUPPORTED_CODECS)}."
            )

        if self.crf is not None and self.bitrate is not None:
            raise UsageError(
                f"crf={self.crf} and bitrate={self.bitrate!r} are mutually exclusive: set only "
                "one of them (crf=None to use a bitrate)."
            )
        if self.crf is None and self.bitrate is None:
            raise UsageError("Neither crf nor bitrate is set: set one of them, for example crf=18.")

        if self.crf is not None:
            if isinstance(self.crf, bool) or not isinstance(self.crf, int):
                raise UsageError(f"Invalid crf {self.crf!r}: use a whole number from 0 to 51.")
            if not 0 <= self.crf <= 51:
                raise UsageError(
                    f"Invalid crf {self.crf}: use a value from 0 to 51 (18 is typical)."
                )
            if self.crf == 0 and self.codec == "h264_nvenc":
                raise UsageError(
                    "crf=0 (lossless) is not available with h264_nvenc, whose constant-quality "
                    "value 0 means automatic: use crf 1 to 51, or codec libx264 for lossless."
                )

        if self.bitrate is not None and not _BITRATE_PATTERN.match(str(self.bitrate)):
            raise UsageError(
                f"Invalid bitrate {self.bitrate!r}: use a number with an optional k or M suffix, "
                "such as 8M or 8000k."
            )

        if self.codec in ("libx264", "libx265") and self.preset not in X264_PRESETS:
            raise UsageError(
                f"Invalid preset {self.preset!r} for {self.codec}: choose one of "
                f"{', '.join(X264_PRESETS)}."
            )

    @property
    def lossless(self) -> bool:
        """True when the settings request lossless H.264 (libx264 with crf 0)."""
        return self.codec == "libx264" and self.crf == 0

    def check_available(self) -> None:
        """Raise UsageError unless this FFmpeg build can run the codec with the preset."""
        if self.codec not in available_encoders():
            raise UsageError(
                f"Encoder {self.codec} is not available in the FFmpeg at {ffmpeg_exe()} "
                "(missing from `ffmpeg -encoders`): use codec libx264, or set IMAGEIO_FFMPEG_EXE "
                f"to an ffmpeg binary built with {self.codec}."
            )

        if self.codec == "h264_nvenc":
            presets = _encoder_presets(self.codec)
            if presets and self.preset not in presets:
                raise UsageError(
                    f"Invalid preset {self.preset!r} for h264_nvenc: choose one of "
                    f"{', '.join(presets)} (p1 is fastest, p7 best)."
                )
            error = _hardware_encoder_error(self.codec)
            if error is not None:
                raise UsageError(
                    f"Encoder h264_nvenc failed to start: {error}. It needs an NVIDIA GPU "
                    "with its driver: use codec libx264 instead."
                )

    def video_codec_options(self, container: str) -> list[str]:
        """Return the FFmpeg output options for the video encoder and its rate control."""
        options = ["-c:v", self.codec, "-preset", self.preset]

        if self.codec == "h264_nvenc":
            if self.crf is not None:
                # NOTE: the h264_nvenc options have not been run on a machine with a GPU.
                options += ["-rc", "vbr", "-cq", str(self.crf), "-b:v", "0"]
            else:
                options += ["-b:v", self.bitrate]
        elif self.crf is not None:
            options += ["-crf", str(self.crf)]
        else:
            options += ["-b:v", self.bitrate]

        if self.codec == "libx265":
            options += ["-profile:v", "main"]
            if container in ("mp4", "mov"):
                # FFmpeg tags HEVC in MP4 as hev1 by default, which QuickTime and iOS
                # do not play.
                options += ["-tag:v", "hvc1"]
        elif not self.lossless:
            # x264 rejects High profile for lossless and picks High 4:4:4 Predictive itself.
            options += ["-profile:v", "high"]
        if self.codec == "libx264" and not self.lossless:
            # Adaptive quantisation biased to dark, flat blocks keeps the dither of the
            # dark background. With x264's defaults at CRF 18 the dither was smoothed
            # away and the vignette banded again, as tests/test_quality.py measures.
            # It costs about a third more bits in those areas.
            options += ["-x264-params", X264_DARK_AQ]
        return options


# ---------------------------------------------------------------------------
# Output path, temporary file and lock


def _check_output_path(out_path) -> tuple[Path, str]:
    """Validate the output path, create its folder if missing, and return it with its muxer."""
    path = Path(os.path.abspath(Path(out_path).expanduser()))

    if path.is_dir():
        raise UsageError(
            f"Output path {path} is a folder: give a file name in it, such as "
            f"{path / ('video' + (path.suffix or '.mp4'))}."
        )
    container = CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise UsageError(
            f"Invalid output file name {str(path)!r}: the extension must be one of "
            f"{', '.join(CONTAINERS)}, which selects the container."
        )
    if path.exists() and not path.is_file():
        raise UsageError(
            f"Output path {path} exists and is not a regular file: choose another name."
        )

    folder = path.parent
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(
                f"Failed to create output folder {folder}: {error.strerror or error}. "
                "Choose an output path in a writable folder."
            ) from error
        log.info("Created output folder %s", folder)
    return path, container


def check_output_path(out_path) -> Path:
    """Check a recording's output path before any rendering, create its folder, and return it.

    Raises UsageError for an extension other than those of CONTAINERS, a folder, or a
    folder that cannot be created.
    """
    return _check_output_path(out_path)[0]


def _partial_path(out_path: Path, pid: int | None = None) -> Path:
    pid = os.getpid() if pid is None else pid
    return out_path.with_name(f".{out_path.stem}.partial-{pid}{out_path.suffix}")


def _lock_path(out_path: Path) -> Path:
    return out_path.with_name(f".{out_path.name}.lock")


def _describe_process(pid_text: str) -> str:
    """Return "process <pid> (<command line>)" for a pid read from a lock file."""
    if not pid_text.isdigit():
        return "another process"
    try:
        raw = Path(f"/proc/{pid_text}/cmdline").read_bytes()
    except OSError:
        return f"process {pid_text}"
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    if len(command) > 100:
        command = command[:97] + "..."
    return f"process {pid_text} ({command})" if command else f"process {pid_text}"


class _OutputLock:
    """Exclusive flock on ``.<name>.lock`` beside an output file, held while writing it."""

    def __init__(self, out_path: Path):
        self.path = _lock_path(out_path)
        self._fd: int | None = None

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise UsageError(
                    f"Output folder {out_path.parent} is not writable ({error.strerror or error} "
                    f"on {self.path.name}): choose another output path or fix its permissions."
                ) from error

            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                os.close(fd)
                raise UsageError(
                    f"Output file {out_path} is already being written by "
                    f"{_describe_process(holder)}: wait for it to finish or choose another "
                    "output path."
                ) from None

            # The previous holder unlinks the lock file when it finishes. If that happened
            # between our open and flock, this lock protects a deleted file, so start over.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            opened = os.fstat(fd)
            if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
                os.close(fd)
                continue

            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            return

    def release(self) -> None:
        """Remove the lock file and release the lock. Safe to call more than once."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def _remove_stale_partials(out_path: Path) -> None:
    """Delete temporary files of earlier writers of out_path that died without cleaning up.

    Call this only while holding the output lock, because then every partial file is
    abandoned.
    """
    prefix = f".{out_path.stem}.partial-"
    for entry in os.scandir(out_path.parent):
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(out_path.suffix)):
            continue
        pid_text = name[len(prefix) : len(name) - len(out_path.suffix)]
        if pid_text.isdigit():
            log.info("Removing stale temporary file %s", entry.path)
            Path(entry.path).unlink(missing_ok=True)


def _create_empty_file(temp_path: Path) -> None:
    """Create the temporary file, so that an unwritable folder fails before FFmpeg starts."""
    try:
        fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise UsageError(
            f"Output folder {temp_path.parent} is not writable ({error.strerror or error} on "
            f"{temp_path.name}): choose another output path or fix its permissions."
        ) from error
    os.close(fd)


def _publish(temp_path: Path, out_path: Path) -> None:
    """Flush temp_path to disk and rename it onto out_path in one step."""
    fd = os.open(temp_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

    os.replace(temp_path, out_path)

    folder_fd = os.open(out_path.parent, os.O_RDONLY)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)


# ---------------------------------------------------------------------------
# FFmpeg command


def _colour_filter_chain(input_format: str) -> str:
    """Return the ``-vf`` chain that converts (rgba) or only tags (yuv420p) the frames."""
    # setparams writes the tags into every frame. In FFmpeg 9.0.2 (imageio-ffmpeg 0.8.1)
    # frame tags win over the -color_* output options, so without it the sRGB transfer
    # tag of the input would reach the file.
    tags = (
        "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
        ":chroma_location=center"
    )
    if input_format == "yuv420p":
        return tags
    # "area" makes each chroma sample the mean of its 2x2 block, which the centre
    # chroma location tag describes. accurate_rnd (rounding instead of truncating)
    # is left out: it cost about 5 ms per 1080x1920 frame, a quarter of x264
    # veryfast's time, on the 2-core machine the benchmark ran on.
    convert = "scale=out_color_matrix=bt709:out_range=tv:flags=full_chroma_inp+area"
    return f"{convert},format=yuv420p,{tags}"


def _input_colour_options(input_format: str) -> list[str]:
    if input_format == "yuv420p":
        return [
            "-color_range", "tv",
            "-colorspace", "bt709",
            "-color_primaries", "bt709",
            "-color_trc", "bt709",
        ]  # fmt: skip
    return [
        "-color_range", "pc",
        "-colorspace", "rgb",
        "-color_primaries", "bt709",
        "-color_trc", "iec61966-2-1",
    ]  # fmt: skip


def _container_options(container: str) -> list[str]:
    if container in ("mp4", "mov"):
        return ["-movflags", "+faststart"]
    return ["-cues_to_front", "1"]


def build_encode_command(
    temp_path: Path,
    width: int,
    height: int,
    fps: int,
    settings: EncoderSettings,
    container: str,
    *,
    input_format: str = "rgba",
    audio_path: Path | None = None,
) -> list[str]:
    """Return the FFmpeg command that reads raw frames on stdin and writes temp_path."""
    command = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel", "info",
        "-y",
        "-f", "rawvideo",
        "-pix_fmt", input_format,
        "-s", f"{width}x{height}",
        "-r", str(fps),
        *_input_colour_options(input_format),
        "-i", "pipe:0",
    ]  # fmt: skip
    if audio_path is not None:
        command += ["-i", str(audio_path)]

    command += ["-map", "0:v:0"]
    if audio_path is not None:
        command += ["-map", "1:a:0"]

    command += [
        "-vf", _colour_filter_chain(input_format),
        # One output frame per submitted frame, which the frame count check in close() needs.
        "-fps_mode", "passthrough",
        *settings.video_codec_options(container),
        "-pix_fmt", "yuv420p",
        "-color_primaries", "bt709",
        "-color_trc", "bt709",
        "-colorspace", "bt709",
        "-color_range", "tv",
        "-chroma_sample_location", "center",
    ]  # fmt: skip
    if audio_path is not None:
        command += list(AUDIO_CODEC_OPTIONS)
    command += _container_options(container)
    command += ["-f", container, str(temp_path)]
    return command


def _stderr_tail(text: str, max_lines: int = STDERR_TAIL_LINES) -> str:
    """Return the last lines of FFmpeg's output without the encoder's statistics."""
    lines = []
    for line in text.replace("\r", "\n").splitlines():
        if not line.strip():
            continue
        if _ENCODER_STATISTICS_PATTERN.match(line) and not re.search(
            r"error|fail|invalid", line, re.IGNORECASE
        ):
            continue
        lines.append(line.rstrip())
    return "\n".join("    " + line for line in lines[-max_lines:])


def _parse_frame_count(text: str) -> int | None:
    """Return the frame count of FFmpeg's final statistics line, or None if there is none."""
    counts = _FRAME_COUNT_PATTERN.findall(text)
    return int(counts[-1]) if counts else None


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit status {returncode}"


# ---------------------------------------------------------------------------
# Writer


@dataclass(frozen=True)
class RecordingResult:
    """Summary of a finished recording, with the timing counters for benchmarks."""

    path: Path
    frames: int
    width: int
    height: int
    fps: int
    codec: str
    size_bytes: int
    elapsed_seconds: float
    queue_wait_seconds: float
    pipe_write_seconds: float
    command: tuple[str, ...] = field(repr=False)

    @property
    def duration_seconds(self) -> float:
        """Video duration in seconds: frames / fps."""
        return self.frames / self.fps


class VideoWriter:
    """Pipe raw frames to FFmpeg and publish the finished MP4 at ``out_path``.

    ``input_format="rgba"`` takes width * height * 4 bytes per frame, top row first,
    sRGB in full range. OpenGL reads rows bottom-up, so flip before submitting.
    ``input_format="yuv420p"`` takes width * height * 3 / 2 bytes per frame: the Y
    plane, then U, then V, already in BT.709 limited range, with each chroma sample
    the mean of its 2x2 block (see :func:`rgb_to_yuv420p`). FFmpeg then only tags it.

    Use it as a context manager. Leaving the block normally calls :meth:`close`, and
    leaving it with an exception (KeyboardInterrupt included) calls :meth:`abort`.

    Counters for benchmarks: ``frames_submitted``, ``frames_written`` (frames
    completely written to FFmpeg's stdin), ``queue_wait_seconds`` (time the caller
    spent blocked in frame_buffer() and submit()) and ``pipe_write_seconds`` (time the
    writer thread spent writing to stdin).
    """

    def __init__(
        self,
        out_path,
        width: int,
        height: int,
        fps: int,
        settings: EncoderSettings,
        *,
        input_format: str = "rgba",
        audio_path=None,
        queue_frames: int = 3,
    ):
        self._state = "starting"
        self.process: subprocess.Popen | None = None
        self._lock: _OutputLock | None = None
        self._stderr_file = None
        self._thread: threading.Thread | None = None

        _check_frame_size(width, height)
        if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
            raise UsageError(
                f"Invalid frame rate {fps!r}: use a whole number of frames per second, such as 60."
            )
        if input_format not in INPUT_FORMATS:
            raise UsageError(
                f"Invalid input format {input_format!r}: use one of {', '.join(INPUT_FORMATS)}."
            )
        if isinstance(queue_frames, bool) or not isinstance(queue_frames, int) or queue_frames < 1:
            raise ValueError(f"queue_frames must be a positive integer, got {queue_frames!r}")

        self.width = width
        self.height = height
        self.fps = fps
        self.settings = settings
        self.input_format = input_format
        self.frame_size = width * height * 4 if input_format == "rgba" else width * height * 3 // 2

        self.out_path, self.container = _check_output_path(out_path)
        self.audio_path = None
        self._audio_duration = None
        if audio_path is not None:
            self.audio_path, self._audio_duration = _check_audio_path(audio_path)
        settings.check_available()

        self.frames_submitted = 0
        self.frames_written = 0
        self.queue_wait_seconds = 0.0
        self.pipe_write_seconds = 0.0
        self._failure: BaseException | None = None
        self._error_message: str | None = None
        self._result: RecordingResult | None = None

        self._lock = _OutputLock(self.out_path)
        try:
            _remove_stale_partials(self.out_path)
            self.temp_path = _partial_path(self.out_path)
            _create_empty_file(self.temp_path)
            self.command = build_encode_command(
                self.temp_path,
                width,
                height,
                fps,
                settings,
                self.container,
                input_format=input_format,
                audio_path=self.audio_path,
            )
            self._allocate_buffers(queue_frames)
            self._start_ffmpeg()
        except BaseException:
            self._release_resources()
            raise
        self._state = "open"
        log.info(
            "Recording %dx%d at %d fps (%s, %s) to %s",
            width,
            height,
            fps,
            settings.codec,
            input_format,
            self.out_path,
        )

    # -- setup

    def _allocate_buffers(self, queue_frames: int) -> None:
        # Pool size: up to queue_frames buffers wait in the queue, the writer thread
        # writes one and the caller fills one.
        shape = (self.height, self.width, 4) if self.input_format == "rgba" else (self.frame_size,)
        self._pool = [np.zeros(shape, dtype=np.uint8) for _ in range(queue_frames + 2)]
        self._free_buffers: queue.Queue = queue.Queue()
        for buffer in self._pool:
            self._free_buffers.put(buffer)
        self._handed_out: set[int] = set()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_frames)

    def _start_ffmpeg(self) -> None:
        log.debug("FFmpeg command: %s", subprocess.list2cmdline(self.command))
        # A file, not a pipe, so that FFmpeg cannot block on a full stderr pipe.
        self._stderr_file = tempfile.TemporaryFile(prefix="hyperloss-ffmpeg-", suffix=".log")
        self._started = time.perf_counter()
        try:
            # Its own process group keeps the terminal's Ctrl-C away from FFmpeg, so
            # that FFmpeg stops only when abort() kills it.
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr_file,
                process_group=0,
            )
        except OSError as error:
            raise HyperlossError(
                f"Failed to start FFmpeg at {self.command[0]}: {error}. Reinstall imageio-ffmpeg "
                "or set IMAGEIO_FFMPEG_EXE to a working ffmpeg binary."
            ) from error

        try:
            # A 1 MiB pipe needs fewer wake-ups per frame than the default 64 KiB. Linux
            # allows unprivileged processes up to /proc/sys/fs/pipe-max-size, 1 MiB by default.
            fcntl.fcntl(self.process.stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        except OSError as error:
            log.debug("Could not enlarge the FFmpeg stdin pipe: %s", error)

        self._thread = threading.Thread(
            target=self._feed_ffmpeg, name="hyperloss-ffmpeg-writer", daemon=True
        )
        self._thread.start()

    # -- writer thread

    def _feed_ffmpeg(self) -> None:
        """Write queued buffers to FFmpeg's stdin until the None sentinel arrives.

        After a write fails, it keeps taking buffers and returning them to the pool
        without writing, so that a caller blocked in frame_buffer() gets one back.
        """
        fd = self.process.stdin.fileno()
        while True:
            buffer = self._queue.get()
            if buffer is None:
                return
            try:
                if self._failure is None:
                    started = time.perf_counter()
                    _write_all(fd, memoryview(buffer).cast("B"))
                    self.pipe_write_seconds += time.perf_counter() - started
                    self.frames_written += 1
            except OSError as error:  # BrokenPipeError when FFmpeg has exited
                self._failure = error
            finally:
                self._free_buffers.put(buffer)

    # -- frame API

    def frame_buffer(self) -> np.ndarray:
        """Take a reusable frame buffer from the pool, blocking until one is free.

        The array has shape (height, width, 4) for rgba and (width * height * 3 / 2,)
        for yuv420p, dtype uint8. Fill it and pass it to submit(). Its contents are
        undefined until you write them.
        """
        self._check_open()
        self._raise_if_failed()
        if len(self._handed_out) >= len(self._pool):
            raise RuntimeError(
                f"All {len(self._pool)} frame buffers are handed out: submit() one before "
                "asking for another."
            )

        started = time.perf_counter()
        while True:
            try:
                buffer = self._free_buffers.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._thread.is_alive():
                    self._fail("the writer thread stopped unexpectedly")
        self.queue_wait_seconds += time.perf_counter() - started

        self._handed_out.add(id(buffer))
        return buffer

    def submit(self, buffer) -> None:
        """Queue a filled buffer from frame_buffer() for FFmpeg, blocking while the queue is full.

        Raises HyperlossError if FFmpeg has exited or a write to it failed.
        """
        self._check_open()
        if id(buffer) not in self._handed_out:
            raise ValueError(
                "submit() takes a buffer returned by frame_buffer() that was not submitted yet. "
                "Use write() for other data."
            )
        self._raise_if_failed()

        self._handed_out.discard(id(buffer))
        started = time.perf_counter()
        self._enqueue(buffer)
        self.queue_wait_seconds += time.perf_counter() - started
        self.frames_submitted += 1

        self._raise_if_failed()

    def _enqueue(self, item) -> None:
        """Put a buffer or the None sentinel on the queue, blocking while it is full."""
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._fail("the writer thread stopped unexpectedly")

    def write(self, data) -> None:
        """Copy one frame of bytes (or a uint8 array) into a pooled buffer and submit it."""
        if isinstance(data, np.ndarray):
            if data.dtype != np.uint8:
                raise ValueError(f"frame data must be uint8, got {data.dtype}")
            source = data.reshape(-1)
        else:
            source = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
        if source.size != self.frame_size:
            raise ValueError(
                f"frame data has {source.size} bytes, expected {self.frame_size} for "
                f"{self.width}x{self.height} {self.input_format}"
            )

        buffer = self.frame_buffer()
        np.copyto(buffer.reshape(-1), source)
        self.submit(buffer)

    # -- finishing

    def close(self) -> RecordingResult:
        """Finish the recording and move the file onto out_path.

        Waits for the queued frames, closes FFmpeg's stdin and waits for it to exit.
        Raises HyperlossError, with the end of FFmpeg's output, unless it exited with
        status 0 and reports as many frames as were submitted. On any failure out_path
        stays as it was. Calling close() again returns the same result.
        """
        if self._state == "closed":
            return self._result
        if self._state == "failed":
            raise HyperlossError(self._error_message)
        self._check_open()

        self._state = "closing"
        try:
            return self._finish()
        except BaseException:
            # Includes KeyboardInterrupt while waiting for FFmpeg.
            self.abort()
            raise

    def _finish(self) -> RecordingResult:
        self._enqueue(None)
        self._thread.join()
        if self._failure is not None or self.process.poll() is not None:
            self._fail("FFmpeg stopped reading frames")

        try:
            self.process.stdin.close()
        except OSError as error:
            self._failure = error
            self._fail("closing FFmpeg's stdin failed")
        returncode = self.process.wait()

        output = self._read_stderr()
        frames_reported = _parse_frame_count(output)
        if returncode != 0:
            self._fail("FFmpeg failed while finishing the file", output)
        if frames_reported != self.frames_submitted or self.frames_written != self.frames_submitted:
            self._fail(
                f"FFmpeg reports {frames_reported} encoded frames but {self.frames_submitted} were "
                "submitted",
                output,
            )

        _publish(self.temp_path, self.out_path)
        elapsed = time.perf_counter() - self._started
        self._result = RecordingResult(
            path=self.out_path,
            frames=self.frames_submitted,
            width=self.width,
            height=self.height,
            fps=self.fps,
            codec=self.settings.codec,
            size_bytes=self.out_path.stat().st_size,
            elapsed_seconds=elapsed,
            queue_wait_seconds=self.queue_wait_seconds,
            pipe_write_seconds=self.pipe_write_seconds,
            command=tuple(self.command),
        )
        self._state = "closed"
        self._release_resources()
        self._warn_on_audio_length()
        log.debug(
            "Wrote %s: %d frames (%.2f s of video) in %.1f s, %.1f MiB",
            self.out_path,
            self._result.frames,
            self._result.duration_seconds,
            elapsed,
            self._result.size_bytes / (1 << 20),
        )
        return self._result

    def _warn_on_audio_length(self) -> None:
        if self._audio_duration is None:
            return
        video_duration = self.frames_submitted / self.fps
        # The WAV duration in FFmpeg's header line has 10 ms resolution.
        if abs(self._audio_duration - video_duration) > 1.0 / self.fps + 0.01:
            log.warning(
                "Audio %s lasts %.2f s but the video lasts %.2f s, so the file lasts as long as "
                "the longer one",
                self.audio_path,
                self._audio_duration,
                video_duration,
            )

    def abort(self) -> None:
        """Kill FFmpeg, stop the writer thread and remove the temporary file.

        Leaves out_path as it was. Safe to call more than once and after close(),
        which it then leaves alone.
        """
        if self._state in ("closed", "aborted", "failed"):
            return
        self._state = "aborted"
        self._release_resources()
        log.info("Recording to %s aborted; removed the temporary file", self.out_path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    # -- failure handling

    def _check_open(self) -> None:
        if self._state != "open":
            if self._state == "failed":
                raise HyperlossError(self._error_message)
            raise RuntimeError(f"VideoWriter for {self.out_path} is {self._state}, not open")

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            self._fail("writing a frame to FFmpeg failed")
        if self.process.poll() is not None:
            self._fail("FFmpeg exited before the recording was finished")

    def _fail(self, reason: str, output: str | None = None) -> None:
        """Clean up after a failure and raise HyperlossError with the end of FFmpeg's output."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=EXIT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        returncode = None if self.process is None else self.process.poll()
        if output is None:
            output = self._read_stderr()

        self._state = "failed"
        self._release_resources()

        tail = _stderr_tail(output)
        target = f"Nothing was written to {self.out_path}"
        if self.out_path.exists():
            target = f"The existing file {self.out_path} is unchanged"
        if "No space left on device" in output:
            next_step = (
                f"Free space on the disk that holds {self.out_path.parent} and record again."
            )
        elif returncode is not None and returncode < 0:
            next_step = (
                "A signal from outside this program stopped FFmpeg (SIGKILL often comes from the "
                "out-of-memory killer): check free memory and record again."
            )
        else:
            next_step = "Fix the cause shown in FFmpeg's output above and record again."

        self._error_message = (
            f"Recording {self.out_path} failed: {reason} (FFmpeg {_describe_exit(returncode)}, "
            f"{self.frames_written} of {self.frames_submitted} submitted frames written).\n"
            f"Last lines of FFmpeg's output:\n{tail or '    (no output)'}\n"
            f"{target}. {next_step}"
        )
        raise HyperlossError(self._error_message)

    def _read_stderr(self) -> str:
        if self._stderr_file is None or self._stderr_file.closed:
            return ""
        self._stderr_file.seek(0, os.SEEK_END)
        size = self._stderr_file.tell()
        self._stderr_file.seek(max(0, size - 65536))
        return self._stderr_file.read().decode(errors="replace")

    def _release_resources(self) -> None:
        """Kill FFmpeg if running, join the thread, delete the temporary file, unlock."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

        if self._thread is not None and self._thread.is_alive():
            # FFmpeg is gone, so the thread's writes fail at once and it drains the
            # queue; the sentinel then stops it.
            while self._thread.is_alive():
                try:
                    self._queue.put(None, timeout=0.5)
                    break
                except queue.Full:
                    continue
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                log.warning("FFmpeg writer thread for %s did not stop within 10 s", self.out_path)

        # Close stdin only after the thread has stopped, because the thread writes to the
        # raw file descriptor, whose number the system could otherwise reuse for another file.
        if self.process is not None and self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass  # the buffered writer contains no data, so EPIPE here loses nothing

        temp_path = getattr(self, "temp_path", None)
        if temp_path is not None and self._state != "closed":
            temp_path.unlink(missing_ok=True)

        if self._stderr_file is not None:
            self._stderr_file.close()
        if self._lock is not None:
            self._lock.release()


def _write_all(fd: int, view: memoryview) -> None:
    """Write all of view to fd, continuing after partial writes."""
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _check_frame_size(width, height) -> None:
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(
                f"Invalid frame {name} {value!r}: use a positive whole number of pixels."
            )
        if value % 2:
            raise UsageError(
                f"Invalid frame {name} {value}: yuv420p video needs an even {name}, "
                f"so use {value - 1} or {value + 1}."
            )


def _check_audio_path(audio_path) -> tuple[Path, float | None]:
    """Raise UsageError unless audio_path is a readable audio file. Return it and its duration."""
    path = Path(audio_path).expanduser()
    if not path.is_file():
        raise UsageError(f"Audio file {path} not found: give the path of an existing WAV file.")
    header = probe_header(path)
    if header["audio"] is None:
        raise UsageError(f"Audio file {path} contains no audio stream: give a WAV file with sound.")
    return path, header["duration"]


# ---------------------------------------------------------------------------
# Colour conversion


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """Convert one sRGB frame, shape (h, w, 3 or 4) uint8, to BT.709 limited-range yuv420p.

    This is the reference for the ``input_format="yuv420p"`` contract: each chroma
    sample is the mean of its 2x2 block. Returns the Y, U and V planes concatenated as
    a flat uint8 array of h * w * 3 / 2 bytes. Alpha is ignored.
    """
    height, width = rgb.shape[:2]
    _check_frame_size(width, height)
    r, g, b = (rgb[..., channel].astype(np.float64) / 255.0 for channel in range(3))

    luma = KR * r + KG * g + KB * b
    cb = (b - luma) / (2.0 * (1.0 - KB))
    cr = (r - luma) / (2.0 * (1.0 - KR))

    def block_mean(plane):
        return (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2]) / 4.0

    y_plane = 16.0 + 219.0 * luma
    u_plane = 128.0 + 224.0 * block_mean(cb)
    v_plane = 128.0 + 224.0 * block_mean(cr)
    planes = [
        np.clip(np.rint(plane), 0, 255).astype(np.uint8).reshape(-1)
        for plane in (y_plane, u_plane, v_plane)
    ]
    return np.concatenate(planes)


def yuv420p_to_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Convert one BT.709 limited-range yuv420p frame (flat uint8) to RGB, shape (h, w, 3).

    Each chroma sample is repeated over its 2x2 block, the inverse of the block mean
    in rgb_to_yuv420p and in the encoder's conversion.
    """
    luma_size = width * height
    chroma_size = luma_size // 4
    y_plane = frame[:luma_size].reshape(height, width).astype(np.float32)
    u_plane = frame[luma_size : luma_size + chroma_size].reshape(height // 2, width // 2)
    v_plane = frame[luma_size + chroma_size :].reshape(height // 2, width // 2)

    luma = (y_plane - 16.0) / 219.0
    cb = (u_plane.astype(np.float32) - 128.0) / 224.0
    cr = (v_plane.astype(np.float32) - 128.0) / 224.0
    cb = cb.repeat(2, axis=0).repeat(2, axis=1)
    cr = cr.repeat(2, axis=0).repeat(2, axis=1)

    r = luma + 2.0 * (1.0 - KR) * cr
    b = luma + 2.0 * (1.0 - KB) * cb
    g = (luma - KR * r - KB * b) / KG
    rgb = np.stack([r, g, b], axis=-1) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Probing and decoding


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses or brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


_FIELD_ORDERS = {
    "progressive",
    "top first",
    "bottom first",
    "top coded first (swapped)",
    "bottom coded first (swapped)",
}
_CHROMA_LOCATIONS = {"left", "center", "topleft", "top", "bottomleft", "bottom"}
_CHANNEL_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "quad": 4,
    "4.0": 4,
    "5.0": 5,
    "5.0(side)": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.1": 7,
    "7.1": 8,
}


def _parse_codec(spec: str) -> tuple[str, str | None]:
    """Return codec name and profile from e.g. ``h264 (High) (avc1 / 0x31637661)``."""
    codec = spec.split()[0]
    profile = None
    for group in re.findall(r"\(([^()]*)\)", spec):
        if " / 0x" not in group:  # skip the fourcc group
            profile = group
            break
    return codec, profile


def _parse_pixel_format(spec: str) -> dict:
    """Parse e.g. ``yuv420p(tv, bt709/unknown/unknown, progressive)``."""
    result = {
        "pix_fmt": spec.split("(")[0].strip(),
        "color_range": None,
        "color_space": None,
        "color_primaries": None,
        "color_transfer": None,
    }
    match = re.search(r"\((.*)\)", spec)
    if not match:
        return result
    for item in (part.strip() for part in match.group(1).split(",")):
        if item in ("tv", "pc"):
            result["color_range"] = item
        elif item in _FIELD_ORDERS or item in _CHROMA_LOCATIONS or not item:
            continue
        elif "/" in item:
            # FFmpeg prints matrix/primaries/transfer when they differ.
            space, primaries, transfer = item.split("/")
            result.update(color_space=space, color_primaries=primaries, color_transfer=transfer)
        else:
            result.update(color_space=item, color_primaries=item, color_transfer=item)
    for key in ("color_space", "color_primaries", "color_transfer"):
        if result[key] == "unknown":
            result[key] = None
    return result


def _parse_fps(text: str) -> float | None:
    match = re.search(r"([0-9.]+)(k?) fps", text)
    if not match:
        return None
    value = float(match.group(1))
    return value * 1000 if match.group(2) else value


def _parse_video_stream(description: str) -> dict:
    parts = _split_top_level(description)
    codec, profile = _parse_codec(parts[0])
    info = {"codec": codec, "profile": profile, "width": None, "height": None}
    if len(parts) > 1:
        info.update(_parse_pixel_format(parts[1]))
    for part in parts[2:]:
        size = re.match(r"([0-9]+)x([0-9]+)", part)
        if size and info["width"] is None:
            info["width"], info["height"] = int(size.group(1)), int(size.group(2))
    info["fps"] = _parse_fps(description)
    return info


def _parse_audio_stream(description: str) -> dict:
    parts = _split_top_level(description)
    codec, profile = _parse_codec(parts[0])
    info = {
        "codec": codec,
        "profile": profile,
        "sample_rate": None,
        "channels": None,
        "channel_layout": None,
    }
    for part in parts[1:]:
        rate = re.fullmatch(r"([0-9]+) Hz", part)
        if rate:
            info["sample_rate"] = int(rate.group(1))
            continue
        channels = re.fullmatch(r"([0-9]+) channels.*", part)
        if channels:
            info["channels"] = int(channels.group(1))
            continue
        if info["channel_layout"] is None and info["sample_rate"] is not None:
            info["channel_layout"] = part
            info["channels"] = _CHANNEL_LAYOUTS.get(part)
    return info


def _parse_duration(text: str) -> float | None:
    match = re.search(r"Duration: ([0-9]+):([0-9]+):([0-9.]+)", text)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def probe_header(path) -> dict:
    """Parse the stream header that ``ffmpeg -i`` prints, without decoding any frames.

    Returns the keys of :func:`probe` except frame_count, audio without duration, and
    ``video``, True if the file has a video stream. The video keys are present only
    then. Raises HyperlossError if FFmpeg cannot open the file.
    """
    path = Path(path)
    result = _run_ffmpeg(["-i", str(path)])
    text = result.stderr
    if "Input #0" not in text:
        raise HyperlossError(
            f"FFmpeg failed to open {path}:\n{_stderr_tail(text)}\nCheck that the path names a "
            "complete video or audio file."
        )

    info: dict = {
        "path": str(path),
        "duration": _parse_duration(text),
        "audio": None,
        "video": False,
    }
    for line in text.splitlines():
        stream = re.match(r"\s*Stream #0:[0-9]+\S*: (Video|Audio): (.*)", line)
        if not stream:
            continue
        kind, description = stream.groups()
        if kind == "Video" and not info["video"] and "(attached pic)" not in description:
            info.update(_parse_video_stream(description))
            info["video"] = True
        elif kind == "Audio" and info["audio"] is None:
            info["audio"] = _parse_audio_stream(description)
    return info


def _count_frames(path: Path, stream_copy: bool = False) -> int:
    """Count the video frames of a file by decoding them, or its packets with stream_copy."""
    arguments = ["-i", str(path), "-map", "0:v:0"]
    if stream_copy:
        arguments += ["-c", "copy"]
    result = _run_ffmpeg([*arguments, "-f", "null", "-"])
    count = _parse_frame_count(result.stderr)
    if result.returncode != 0 or count is None:
        raise HyperlossError(
            f"Failed to count the frames of {path} ({_describe_exit(result.returncode)}):\n"
            f"{_stderr_tail(result.stderr)}\nCheck that the file is complete."
        )
    return count


def _count_audio_samples(path: Path) -> int:
    """Return the number of samples per channel in the first audio stream, by decoding it."""
    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path)]
    command += ["-map", "0:a:0", "-ac", "1", "-f", "s16le", "pipe:1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sample_bytes = 0
    while chunk := process.stdout.read(1 << 20):
        sample_bytes += len(chunk)
    errors = process.stderr.read().decode(errors="replace")
    if process.wait() != 0:
        raise HyperlossError(f"Failed to decode the audio of {path}:\n{_stderr_tail(errors)}")
    return sample_bytes // 2  # 2 bytes per sample after the downmix to mono


def probe(path, *, count_frames: bool = True) -> dict:
    """Describe the first video and audio stream of a media file.

    Keys: path, duration (container, seconds, 10 ms resolution), codec, profile,
    pix_fmt, width, height, fps, frame_count (by decoding every frame, or None with
    count_frames=False), color_range, color_space, color_transfer, color_primaries,
    and audio (None, or a dict with codec, profile, sample_rate, channels,
    channel_layout and duration counted from the decoded samples).
    The colour keys are None where the file leaves them unspecified.
    """
    path = Path(path)
    info = probe_header(path)
    if not info.pop("video"):
        raise HyperlossError(f"{path} contains no video stream: give the path of a video file.")

    info["frame_count"] = _count_frames(path) if count_frames else None
    if info["audio"] is not None:
        samples = _count_audio_samples(path)
        rate = info["audio"]["sample_rate"]
        info["audio"]["duration"] = samples / rate if rate else None
    return info


def decode_frames(
    path, width: int, height: int, start: int = 0, count: int | None = None
) -> np.ndarray:
    """Decode frames start .. start + count - 1 of a video to RGB, shape (n, h, w, 3) uint8.

    FFmpeg outputs the stored yuv420p planes unchanged, and yuv420p_to_rgb converts them
    with the BT.709 limited-range matrix, so the result does not depend on FFmpeg's
    default matrix. The file must be yuv420p in limited range and width x height.
    Frames before start are decoded and dropped, so a large start costs time.
    """
    if start < 0 or (count is not None and count < 0):
        raise ValueError(f"start and count must not be negative, got start={start}, count={count}")
    path = Path(path)
    header = probe_header(path)
    if not header["video"]:
        raise HyperlossError(f"{path} contains no video stream: give the path of a video file.")
    if (header["width"], header["height"]) != (width, height):
        raise HyperlossError(
            f"{path} is {header['width']}x{header['height']}, not {width}x{height}: "
            "pass the size of the video."
        )
    if header.get("pix_fmt") != "yuv420p" or header.get("color_range") == "pc":
        raise HyperlossError(
            f"{path} is {header.get('pix_fmt')} in {header.get('color_range')} range, but "
            "decode_frames only converts limited-range yuv420p."
        )
    if count == 0:
        return np.empty((0, height, width, 3), dtype=np.uint8)

    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:v:0"]
    if start:
        command += ["-vf", f"trim=start_frame={start}"]
    if count is not None:
        command += ["-frames:v", str(count)]
    # No -pix_fmt, so that FFmpeg has no reason to convert the decoded planes.
    command += ["-f", "rawvideo", "pipe:1"]

    frame_size = width * height * 3 // 2
    frames = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # stderr is read only at the end, which is safe because "-loglevel error" keeps
        # it short.
        while chunk := process.stdout.read(frame_size):
            if len(chunk) != frame_size:
                raise HyperlossError(
                    f"FFmpeg returned a partial frame of {path}. The file may be damaged."
                )
            frames.append(yuv420p_to_rgb(np.frombuffer(chunk, dtype=np.uint8), width, height))
        errors = process.stderr.read().decode(errors="replace")
        if process.wait() != 0:
            raise HyperlossError(f"Failed to decode {path}:\n{_stderr_tail(errors)}")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
    if not frames:
        return np.empty((0, height, width, 3), dtype=np.uint8)
    return np.stack(frames)


# ---------------------------------------------------------------------------
# Concatenation


def _concat_list_line(path: Path) -> str:
    # The concat demuxer reads single-quoted strings, with ' written as '\''.
    escaped = str(path).replace("'", "'\\''")
    return f"file '{escaped}'\n"


def concat_segments(segment_paths, out_path, *, audio_path=None) -> Path:
    """Join video segments into one file without re-encoding the video.

    Every segment must have been encoded independently with the same settings, so that
    each one starts with an IDR frame and shares the first segment's codec parameters.
    The result keeps the segments' colour tags and gets the index at the front. Only
    the first video stream of the segments is kept. With audio_path, that WAV file is
    encoded as the soundtrack (AAC, 48 kHz, stereo, 192 kb/s).
    The file appears at out_path only when it is complete, under the same lock as
    VideoWriter. Returns out_path.
    """
    segments = [Path(os.path.abspath(Path(path).expanduser())) for path in segment_paths]
    if not segments:
        raise UsageError("No segments given to concatenate: pass at least one segment file.")
    out, container = _check_output_path(out_path)
    if out in segments:
        raise UsageError(
            f"Output path {out} is also one of the segments: choose another output path."
        )
    for segment in segments:
        if not segment.is_file():
            raise UsageError(f"Segment {segment} not found: record it first or fix the path.")
    audio = None if audio_path is None else _check_audio_path(audio_path)[0]

    expected_frames, codec = _check_segments_match(segments)

    lock = _OutputLock(out)
    temp_path = _partial_path(out)
    try:
        _remove_stale_partials(out)
        _create_empty_file(temp_path)
        with tempfile.NamedTemporaryFile("w", prefix="hyperloss-concat-", suffix=".txt") as listing:
            listing.writelines(_concat_list_line(segment) for segment in segments)
            listing.flush()

            arguments = ["-y", "-nostats", "-f", "concat", "-safe", "0", "-i", listing.name]
            if audio is not None:
                arguments += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0"]
                arguments += ["-c:v", "copy", *AUDIO_CODEC_OPTIONS]
            else:
                arguments += ["-map", "0:v:0", "-c", "copy"]
            if container in ("mp4", "mov") and codec == "hevc":
                arguments += ["-tag:v", "hvc1"]
            arguments += [*_container_options(container), "-f", container, str(temp_path)]
            result = _run_ffmpeg(arguments)

        frames = _parse_frame_count(result.stderr)
        if result.returncode != 0 or frames != expected_frames:
            raise HyperlossError(
                f"Concatenating {len(segments)} segments into {out} failed "
                f"({_describe_exit(result.returncode)}, {frames} of {expected_frames} frames):\n"
                f"{_stderr_tail(result.stderr)}\nThe segments and {out} were not changed. "
                "Check that every segment was recorded with the same settings."
            )
        _publish(temp_path, out)
    finally:
        temp_path.unlink(missing_ok=True)
        lock.release()

    log.info("Concatenated %d segments (%d frames) into %s", len(segments), expected_frames, out)
    return out


def _check_segments_match(segments: list[Path]) -> tuple[int, str]:
    """Raise UsageError unless all segments share codec, size, pixel format and fps.

    Returns the total number of video packets and the codec. The packet count is the
    frame count, because MP4, MOV and Matroska store one H.264 or HEVC frame per packet.
    """
    keys = ("codec", "profile", "pix_fmt", "width", "height", "fps", "color_range", "color_space")
    first = probe_header(segments[0])
    if not first["video"]:
        raise UsageError(
            f"Segment {segments[0]} contains no video stream: pass the recorded video segments."
        )
    total = 0
    for segment in segments:
        header = first if segment == segments[0] else probe_header(segment)
        for key in keys:
            if header.get(key) != first.get(key):
                raise UsageError(
                    f"Segment {segment} has {key} {header.get(key)!r} but {segments[0]} has "
                    f"{first.get(key)!r}: record all segments with the same settings."
                )
        total += _count_frames(segment, stream_copy=True)
    return total, first["codec"]


__all__ = [
    "CONTAINERS",
    "SUPPORTED_CODECS",
    "EncoderSettings",
    "RecordingResult",
    "VideoWriter",
    "available_encoders",
    "build_encode_command",
    "check_output_path",
    "concat_segments",
    "decode_frames",
    "ffmpeg_exe",
    "probe",
    "probe_header",
    "rgb_to_yuv420p",
    "yuv420p_to_rgb",
]
