"""Record one video with several processes: contiguous segments, joined without re-encoding.

:func:`record_parallel` splits the frame range into ``jobs`` contiguous segments.
Each segment is rendered and encoded by its own process (``spawn`` start method,
its own EGL context and FFmpeg) into a temporary folder beside the output. Each
segment is an independent encode, so it starts with an IDR frame and every seam
is a closed GOP. :func:`hyperloss_gl.encode.concat_segments` then joins the
segments with the sound track of the whole range.

The joined video has the frames of a single-process recording, because frame
``n`` depends only on ``t = n / fps``. With lossless settings (``crf=0``) the
decoded frames are identical. With lossy settings they differ slightly, because
the encoder starts over at each seam.

If a worker fails, or the parent gets Ctrl-C or SIGTERM, every worker is stopped,
the temporary folder is removed and the output path stays as it was.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import shutil
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hyperloss_gl import log
from hyperloss_gl.audio import temporary_track_file
from hyperloss_gl.encode import EncoderSettings, check_output_path, concat_segments
from hyperloss_gl.errors import HyperlossError, UsageError
from hyperloss_gl.look import Look
from hyperloss_gl.record import RecordSummary, RenderOptions, frame_range
from hyperloss_gl.scene import Animator, Scene

MAX_JOBS = 64

STOP_GRACE_SECONDS = 20.0
"""Seconds that a stopped worker gets to kill its FFmpeg and remove its files before SIGKILL."""

POLL_SECONDS = 0.2

RESULT_GRACE_SECONDS = 5.0
"""Seconds that the parent waits for the result of a worker that has exited with status 0."""


class WorkerStopped(BaseException):
    """Raised in a worker by SIGINT or SIGTERM, so that its recording cleans up as for Ctrl-C."""


@dataclass(frozen=True)
class SegmentJob:
    """One worker's share: a contiguous frame range and the file to encode it into."""

    index: int
    frames: range
    path: Path
    scene: Scene
    look: Look
    options: RenderOptions
    settings: EncoderSettings
    readback: str
    log_level: int


def split_frames(frames: range, jobs: int) -> list[range]:
    """Split ``frames`` into at most ``jobs`` contiguous, non-empty ranges of near-equal length."""
    count = min(jobs, len(frames))
    base, extra = divmod(len(frames), count)
    parts = []
    start = frames.start
    for index in range(count):
        stop = start + base + (1 if index < extra else 0)
        parts.append(range(start, stop))
        start = stop
    return parts


def record_parallel(scene: Scene, look: Look, out_path: Path, options: RenderOptions,
                    settings: EncoderSettings, jobs: int, *, sound: bool = True,
                    music: Path | None = None, readback: str = "rgba") -> RecordSummary:
    """Record ``options``' time range into ``out_path`` with ``jobs`` worker processes.

    Raises UsageError for an invalid job count or output path, and HyperlossError
    when a worker or the join fails. KeyboardInterrupt and other BaseExceptions
    stop the workers, remove the temporary files and propagate.

    NOTE: the output lock is taken only by the join, so a second recording to the
    same path is rejected after its segments are rendered, not before.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise UsageError(f"Invalid job count {jobs!r}: use a whole number from 1 to {MAX_JOBS}.")
    out = check_output_path(out_path)
    settings.check_available()
    animator = Animator(scene)
    frames = frame_range(animator, options)
    parts = split_frames(frames, jobs)
    for part in parts:
        selected = frame_range(animator, _segment_options(options, part))
        if selected != part:
            raise HyperlossError(f"The time range of segment frames {part.start} to "
                                 f"{part.stop - 1} selects frames {selected.start} to "
                                 f"{selected.stop - 1}; record without --jobs.")

    started = time.perf_counter()
    folder = _make_segment_folder(out)
    try:
        segment_jobs = [
            SegmentJob(index, part, folder / f"segment-{index:03d}{out.suffix}", scene, look,
                       _segment_options(options, part), settings, readback,
                       log.getEffectiveLevel())
            for index, part in enumerate(parts)
        ]
        log.info("recording %d frames in %d segments of about %d frames each", len(frames),
                 len(parts), len(parts[0]))
        _run_workers(segment_jobs)
        with temporary_track_file(scene, look, out, options.fps, frames, enabled=sound,
                                  music=music) as audio_path:
            concat_segments([job.path for job in segment_jobs], out, audio_path=audio_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    seconds = time.perf_counter() - started
    summary = RecordSummary(out, len(frames), seconds, len(frames) / options.fps)
    log.info("recorded %d frames (%.2f s of video) with %d processes in %.1f s, %.1f frames/s, "
             "%.2f s per second of video: %s", summary.frames, summary.video_seconds, len(parts),
             seconds, summary.fps, seconds / summary.video_seconds, out)
    return summary


def _segment_options(options: RenderOptions, part: range) -> RenderOptions:
    """Return options whose time range selects exactly the frames of ``part``."""
    return replace(options, start=part.start / options.fps, end=part.stop / options.fps)


def _make_segment_folder(out: Path) -> Path:
    """Create the hidden folder beside ``out`` that contains the segments until the join."""
    folder = out.with_name(f".{out.stem}.segments-{os.getpid()}")
    try:
        folder.mkdir()
    except FileExistsError:
        # A folder of this process's id is left over from a process that was killed.
        shutil.rmtree(folder)
        folder.mkdir()
    except OSError as error:
        raise UsageError(f"Failed to create the segment folder {folder}: "
                         f"{error.strerror or error}. Choose an output path in a writable "
                         "folder.") from error
    return folder


# ---------------------------------------------------------------------------
# Parent side


def _run_workers(segment_jobs: list[SegmentJob]) -> None:
    """Start one process per segment and wait until all have finished.

    On a worker's failure, or on any exception in the parent, stop every worker
    and wait for it to clean up before raising.
    """
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    workers = []
    try:
        for job in segment_jobs:
            process = context.Process(target=_worker_main, args=(job, messages),
                                      name=f"hyperloss-segment-{job.index}", daemon=False)
            process.start()
            workers.append(process)
        _wait_for_workers(workers, segment_jobs, messages)
    except BaseException:
        _stop_workers(workers)
        raise
    finally:
        for process in workers:
            if process.exitcode is not None:
                process.close()
        messages.close()
        messages.join_thread()


def _wait_for_workers(workers: list, segment_jobs: list[SegmentJob], messages) -> None:
    """Collect each worker's result message and raise HyperlossError on the first failure."""
    finished: set[int] = set()
    exited_at: dict[int, float] = {}
    while len(finished) < len(workers):
        try:
            index, status, detail = messages.get(timeout=POLL_SECONDS)
        except queue.Empty:
            _check_exits(workers, finished, exited_at)
            continue
        job = segment_jobs[index]
        if status == "done":
            finished.add(index)
            log.info("segment %d of %d: frames %d to %d recorded in %.1f s", index + 1,
                     len(workers), job.frames.start, job.frames.stop - 1, detail)
            continue
        message, exit_status = detail
        error_class = UsageError if exit_status == UsageError.exit_status else HyperlossError
        raise error_class(f"Segment {index + 1} of {len(workers)} (frames {job.frames.start} to "
                          f"{job.frames.stop - 1}) failed: {message}")
    for process in workers:
        process.join()


def _check_exits(workers: list, finished: set[int], exited_at: dict[int, float]) -> None:
    """Raise HyperlossError if a worker exited without sending its result."""
    now = time.monotonic()
    for index, process in enumerate(workers):
        if index in finished or process.exitcode is None:
            continue
        # A result may still be on its way through the queue's pipe after a clean exit.
        exited_at.setdefault(index, now)
        if process.exitcode == 0 and now - exited_at[index] < RESULT_GRACE_SECONDS:
            continue
        if process.exitcode == -signal.SIGKILL:
            cause = ("killed by SIGKILL, which often comes from the out-of-memory killer: "
                     "check free memory, record with fewer --jobs, and record again")
        elif process.exitcode < 0:
            cause = (f"killed by signal {-process.exitcode}; record again, or record "
                     "without --jobs")
        else:
            # Python printed the worker's traceback to standard error before it exited.
            cause = (f"exit status {process.exitcode}; its error output is above. Fix its "
                     "cause, or record without --jobs")
        raise HyperlossError(f"Segment {index + 1} of {len(workers)} stopped without a "
                             f"result: {cause}.")


def _stop_workers(workers: list) -> None:
    """Send SIGTERM to running workers, wait for their cleanup, then SIGKILL stragglers."""
    # A second Ctrl-C would otherwise interrupt the wait and leave workers running.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for process in workers:
            if process.exitcode is None:
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in workers:
            process.join(max(deadline - time.monotonic(), 0.0))
            if process.exitcode is None:
                log.warning("segment worker %s did not stop within %.0f s; killing it",
                            process.pid, STOP_GRACE_SECONDS)
                process.kill()
                process.join()
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------
# Worker side


_stop_requested = False


def _raise_stop(signum, frame):
    global _stop_requested
    # Ctrl-C sends SIGINT to the workers and the parent then sends SIGTERM: only the
    # first signal raises, so that the second cannot interrupt the cleanup. If the
    # first is lost (raised inside a __del__), the parent's SIGKILL after
    # STOP_GRACE_SECONDS ends the worker.
    if _stop_requested:
        return
    _stop_requested = True
    raise WorkerStopped()


def _worker_main(job: SegmentJob, messages) -> None:
    """Record one segment and put ``(index, status, detail)`` on ``messages``."""
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    _configure_worker_logging(job)
    from hyperloss_gl.record import record_video

    try:
        summary = record_video(job.scene, job.look, job.path, job.options, job.settings,
                               progress=False, sound=False, readback=job.readback)
        messages.put((job.index, "done", summary.seconds))
    except HyperlossError as error:
        messages.put((job.index, "failed", (str(error), error.exit_status)))
    except WorkerStopped:
        raise SystemExit(128 + signal.SIGTERM) from None
    except Exception as error:  # reported to the parent, which raises it as HyperlossError
        log.debug("segment %d failed", job.index, exc_info=True)
        messages.put((job.index, "failed", (f"{type(error).__name__}: {error}", 1)))
    finally:
        messages.close()
        messages.join_thread()


def _configure_worker_logging(job: SegmentJob) -> None:
    """Log to standard error like the parent, at warning level unless it logs debug."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"hyperloss: segment {job.index + 1}: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(job.log_level if job.log_level <= logging.DEBUG
                 else max(job.log_level, logging.WARNING))
    log.propagate = False
