"""The record driver: render frames offscreen and pipe them to FFmpeg, or write one still.

Frame ``n`` shows ``t = n / fps``. The driver only picks those times and
moves pixels: the animator decides the story, the renderer draws it, and
:mod:`hyperloss_gl.encode` owns FFmpeg and the output file.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from hyperloss_gl import log
from hyperloss_gl.audio import temporary_track_file
from hyperloss_gl.atomic import open_temporary_beside
from hyperloss_gl.encode import EncoderSettings, VideoWriter
from hyperloss_gl.errors import HyperlossError, UsageError
from hyperloss_gl.look import Look
from hyperloss_gl.render.context import create_headless_context
from hyperloss_gl.render.renderer import Renderer
from hyperloss_gl.render.yuv import resolve_readback
from hyperloss_gl.scene import Animator, Scene

READBACK_RING = 2
"""Pixel buffers in flight: frame ``n`` is copied out while frame ``n + 1`` draws."""


@dataclass(frozen=True)
class RenderOptions:
    """Output size, frame rate, time range and resources of a rendering."""

    width: int
    height: int
    fps: int
    start: float = 0.0
    end: float | None = None
    shader_dir: Path | None = None
    motion_blur: int = 1
    """Sub-frames averaged per frame; 1 turns motion blur off."""


@dataclass(frozen=True)
class RecordSummary:
    """Figures of a finished recording."""

    path: Path
    frames: int
    seconds: float
    video_seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


SHUTTER = 0.5
"""Open shutter as a share of the frame interval, for motion blur (a 180-degree shutter)."""


def shutter_times(t: float, fps: int, count: int) -> list[float]:
    """Return ``count`` sub-frame times spread evenly over a shutter centred on ``t``."""
    open_s = SHUTTER / fps
    return [max(t + ((k + 0.5) / count - 0.5) * open_s, 0.0) for k in range(count)]


def frame_range(animator: Animator, options: RenderOptions) -> range:
    """Return the frame numbers whose times lie in ``[start, end)`` of the video."""
    total = animator.timeline.frame_count(options.fps)
    first = int(math.ceil(options.start * options.fps - 1e-9))
    duration = animator.timeline.duration
    end = duration if options.end is None else options.end
    last = min(total, int(math.ceil(end * options.fps - 1e-9)))
    if first >= last:
        raise UsageError(f"the time range {options.start:g} s to {end:g} s contains no frame "
                         f"of the {duration:.2f} s video; choose --from below --to and inside "
                         "the video.")
    return range(first, last)


class FrameSource:
    """An offscreen context, a renderer and an animator: frames by number or time."""

    def __init__(self, scene: Scene, look: Look, options: RenderOptions,
                 ctx: moderngl.Context | None = None):
        self.options = options
        self.owns_context = ctx is None
        self.ctx = ctx or create_headless_context()
        self.animator = Animator(scene)
        self.renderer = Renderer(self.ctx, scene, look, options.width, options.height,
                                 options.shader_dir)

    def states(self, t: float) -> list:
        """Return the frame state at ``t``, or one per sub-frame with motion blur."""
        count = self.options.motion_blur
        if count <= 1:
            return [self.animator.state_at(t)]
        return [self.animator.state_at(time) for time in shutter_times(t, self.options.fps,
                                                                       count)]

    def draw(self, t: float, flip_for_readback: bool = True) -> None:
        """Draw the frame at ``t`` into the renderer's output framebuffer."""
        self.renderer.render_blurred(self.states(t), flip_for_readback=flip_for_readback)

    def release(self) -> None:
        """Release the context if this source created it."""
        if self.owns_context:
            self.ctx.release()

    def still(self, t: float) -> np.ndarray:
        """Return the frame at ``t`` as an (height, width, 4) RGBA array, top row first."""
        self.draw(t)
        return self.renderer.read_rgba().copy()


def check_png_path(path: Path) -> Path:
    """Check a still's output path before rendering, create its folder, and return it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"still output {path} must end in .png; give a name like frame.png.")
    if path.is_dir():
        raise UsageError(f"still output {path} is a folder; give a file name such as "
                         f"{path / 'frame.png'}.")
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"cannot create the folder {path.parent} for the still: it or a "
                             "folder above it is a file; choose another output path.") from None
        except OSError as error:
            raise UsageError(f"cannot create the folder {path.parent} for the still: "
                             f"{error.strerror or error}; choose another output path.") from None
        log.info("created folder %s", path.parent)
    return path


def write_png(path: Path, rgba: np.ndarray) -> Path:
    """Write an RGBA image to ``path`` atomically (temporary file, then rename).

    On any failure ``path`` keeps its earlier content, and no temporary file is left.
    """
    from PIL import Image

    path = check_png_path(path)
    temporary, handle = open_temporary_beside(path)
    try:
        with os.fdopen(handle, "wb") as file:
            Image.fromarray(rgba[:, :, :3]).save(file, format="PNG")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise HyperlossError(f"failed to write the still {path}: {error.strerror or error}. "
                             "Free disk space or choose another output path; any earlier file "
                             f"at {path} is unchanged.") from None
    finally:
        temporary.unlink(missing_ok=True)
    log.info("wrote %s (%dx%d)", path, rgba.shape[1], rgba.shape[0])
    return path


def record_video(scene: Scene, look: Look, out_path: Path, options: RenderOptions,
                 settings: EncoderSettings, progress: bool | None = None, *,
                 sound: bool = True, music: Path | None = None,
                 readback: str = "rgba") -> RecordSummary:
    """Render the frames of ``options``' time range and encode them into ``out_path``.

    With ``sound`` the file gets the range's sound track, with ``music`` mixed under it.
    ``readback`` is ``rgba``, ``yuv`` (convert to yuv420p on the GPU) or ``auto``
    (see :func:`hyperloss_gl.render.yuv.resolve_readback`).
    """
    source = FrameSource(scene, look, options)
    try:
        frames = frame_range(source.animator, options)
        readback = resolve_readback(readback, source.ctx)
        started = time.perf_counter()
        with temporary_track_file(scene, look, out_path, options.fps, frames, enabled=sound,
                                  music=music) as audio_path:
            _encode_frames(source, frames, out_path, settings, progress, audio_path, readback)
    finally:
        source.release()
    seconds = time.perf_counter() - started
    summary = RecordSummary(Path(out_path), len(frames), seconds, len(frames) / options.fps)
    log.info("recorded %d frames (%.2f s of video) in %.1f s, %.1f frames/s, %.2f s per second "
             "of video: %s", summary.frames, summary.video_seconds, seconds, summary.fps,
             seconds / summary.video_seconds, out_path)
    return summary


def _encode_frames(source: FrameSource, frames: range, out_path: Path,
                   settings: EncoderSettings, progress: bool | None,
                   audio_path: Path | None = None, readback: str = "rgba") -> None:
    """Draw ``frames`` and pass them to ``writer``, reading each back one frame late."""
    options = source.options
    renderer = source.renderer
    yuv = readback == "yuv"
    pixels = options.width * options.height
    size = pixels * 3 // 2 if yuv else pixels * 4
    ring = [source.ctx.buffer(reserve=size) for _ in range(READBACK_RING)]
    packed = np.empty(size, np.uint8) if yuv else None
    bar = _progress_bar(len(frames), progress)
    with VideoWriter(out_path, options.width, options.height, options.fps, settings,
                     input_format="yuv420p" if yuv else "rgba",
                     audio_path=audio_path) as writer:
        pending = []
        for n in frames:
            pbo = ring[n % READBACK_RING]
            if yuv:
                renderer.render_yuv(source.states(n / options.fps))
                renderer.read_yuv_into(pbo)
            else:
                source.draw(n / options.fps)
                renderer.output_fbo.read_into(pbo, components=4)
            pending.append(pbo)
            if len(pending) == READBACK_RING:
                _hand_over(pending.pop(0), writer, renderer, packed)
                bar.update(1)
        for pbo in pending:
            _hand_over(pbo, writer, renderer, packed)
            bar.update(1)
        bar.close()


def _hand_over(pbo: moderngl.Buffer, writer: VideoWriter, renderer: Renderer,
               packed: np.ndarray | None) -> None:
    """Copy a read-back frame into a writer buffer and queue it for FFmpeg."""
    buffer = writer.frame_buffer()
    if packed is None:
        pbo.read_into(buffer)
    else:
        pbo.read_into(packed)
        renderer.unpack_yuv(packed, buffer)
    writer.submit(buffer)


def _progress_bar(total: int, enabled: bool | None):
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, unit="frame", disable=not enabled, dynamic_ncols=True,
                desc="recording", smoothing=0.1)
