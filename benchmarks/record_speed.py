"""Measure the recorder against the encoder alone, and the frame cost as cloud and size grow.

Run from the repository root, for example:

    python benchmarks/record_speed.py --size 1080x1920 --fps 60 --from 3 --to 6 \\
        --preset medium --crf 18

Sections of the output:

1. Machine: CPU model, cores, OpenGL renderer, FFmpeg version, date and command.
2. Recorder, per readback (rgba and yuv by default):
   - wall time of ``record_video`` for the range (context creation and shader
     compilation excluded, sound off), frames per second and seconds per second of video;
   - per-frame milliseconds of an instrumented run of the same frames: frame state
     (``Animator.state_at``), draw (batch building and GL passes, up to ``ctx.finish()``),
     YUV conversion pass (yuv only), readback (GPU to pixel buffer to writer buffer),
     encoder wait (time blocked on the writer's queue) and pipe write (writer thread);
   - the limit: the frames of the instrumented run, kept in memory, encoded by a new
     VideoWriter with the same FFmpeg command. It is timed from FFmpeg's start to the
     finished file.
   - the ratio of the recorder's wall time to the limit.
3. Cloud: frame state and draw milliseconds at 175, 1,000, 10,000 and 100,000 vectors.
4. Size: draw milliseconds at 540x960, 1080x1920 and 2160x3840.

Medians are printed, and for sections 3 and 4 also the minimum, which other load on
the machine disturbs least. The instrumented run calls ``ctx.finish()`` after each pass, so
its frames per second are lower than the recorder's, which overlaps the GPU, the
CPU and FFmpeg.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from hyperloss_gl import log  # noqa: E402
from hyperloss_gl.cli import parse_size  # noqa: E402
from hyperloss_gl.encode import EncoderSettings, VideoWriter, ffmpeg_exe  # noqa: E402
from hyperloss_gl.look import load_look  # noqa: E402
from hyperloss_gl.record import FrameSource, RenderOptions, frame_range, record_video  # noqa: E402
from hyperloss_gl.render.context import create_headless_context  # noqa: E402
from hyperloss_gl.scene import Animator, Scene, load_scene  # noqa: E402

CLOUD_SIZES = (175, 1_000, 10_000, 100_000)
FRAME_SIZES = ((540, 960), (1080, 1920), (2160, 3840))
STATE_SAMPLES = 30
DRAW_SAMPLES = 12
MEMORY_SHARE = 0.6
"""Largest share of the available memory that the frames held for the limit may take."""


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=(1080, 1920), metavar="WxH",
                        help="frame size in pixels (default: 1080x1920)")
    parser.add_argument("--fps", type=int, default=60, help="frames per second (default: 60)")
    parser.add_argument("--from", dest="start", type=float, default=3.0, metavar="SECONDS",
                        help="start of the timed range (default: 3)")
    parser.add_argument("--to", dest="end", type=float, default=6.0, metavar="SECONDS",
                        help="end of the timed range (default: 6)")
    parser.add_argument("--encoder", default="libx264", help="video encoder (default: libx264)")
    parser.add_argument("--preset", default="medium", help="encoder preset (default: medium)")
    parser.add_argument("--crf", type=int, default=18, help="constant rate factor (default: 18)")
    parser.add_argument("--readback", default="rgba,yuv",
                        help="comma-separated readbacks to time: rgba, yuv (default: both)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="recorder and limit runs per readback, alternating; medians are "
                             "printed (default: 1)")
    parser.add_argument("--skip-recorder", action="store_true", help="leave out section 2")
    parser.add_argument("--skip-cloud", action="store_true", help="leave out section 3")
    parser.add_argument("--skip-sizes", action="store_true", help="leave out section 4")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------
# Machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ffmpeg_version() -> str:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True,
                            text=True, check=False)
    return result.stdout.splitlines()[0] if result.stdout else "unknown"


def print_machine(ctx) -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = ctx.info
    print("# Machine")
    print(f"date (UTC)   {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}")
    print(f"command      python {shlex.join(sys.argv)}")
    print(f"CPU          {cpu_model()}, {os.cpu_count()} logical cores ({usable} usable)")
    print(f"OpenGL       {info['GL_RENDERER']}, {info['GL_VERSION']}")
    print(f"FFmpeg       {ffmpeg_version()}")
    print(f"Python       {platform.python_version()}, {platform.platform()}")
    print_load()
    print()


def print_load() -> None:
    """Print the 1, 5 and 15 minute load averages: other processes sharing the cores."""
    print("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


# ---------------------------------------------------------------------------
# Recorder against the limit


@dataclass
class InstrumentedRun:
    """Per-frame milliseconds of one instrumented recording, and its frames for the limit."""

    state_ms: list[float]
    draw_ms: list[float]
    convert_ms: list[float]
    readback_ms: list[float]
    encoder_wait_ms: list[float]
    pipe_ms_per_frame: float
    wall_seconds: float
    frames: list[np.ndarray]


def check_memory(frame_bytes: int, count: int) -> None:
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    needed = frame_bytes * count
    if needed > MEMORY_SHARE * available:
        raise SystemExit(f"The limit needs {count} frames of {frame_bytes / 2**20:.1f} MiB "
                         f"({needed / 2**30:.1f} GiB) in memory, but only "
                         f"{available / 2**30:.1f} GiB are available: shorten --from/--to.")


def run_instrumented(scene: Scene, options: RenderOptions, settings: EncoderSettings,
                     readback: str, out: Path) -> InstrumentedRun:
    """Record the range with ctx.finish() after each step, timing each step per frame."""
    source = FrameSource(scene, load_look(), options)
    ctx = source.ctx
    yuv = readback == "yuv"
    pixels = options.width * options.height
    frame_bytes = pixels * 3 // 2 if yuv else pixels * 4
    packed = np.empty(frame_bytes, np.uint8)
    frames = frame_range(source.animator, options)
    check_memory(frame_bytes, len(frames))
    pbo = ctx.buffer(reserve=frame_bytes)
    run = InstrumentedRun([], [], [], [], [], 0.0, 0.0, [])
    try:
        started = time.perf_counter()
        with VideoWriter(out, options.width, options.height, options.fps, settings,
                         input_format="yuv420p" if yuv else "rgba") as writer:
            for n in frames:
                t0 = time.perf_counter()
                state = source.animator.state_at(n / options.fps)
                t1 = time.perf_counter()
                if yuv:
                    # The composite pass itself writes yuv420p: no separate conversion.
                    source.renderer.render_yuv([state])
                else:
                    source.renderer.render(state, flip_for_readback=True)
                ctx.finish()
                t2 = time.perf_counter()
                t3 = time.perf_counter()
                if yuv:
                    source.renderer.read_yuv_into(pbo)
                else:
                    source.renderer.output_fbo.read_into(pbo, components=4)
                waited = writer.queue_wait_seconds
                buffer = writer.frame_buffer()
                if yuv:
                    pbo.read_into(packed)
                    source.renderer.unpack_yuv(packed, buffer)
                else:
                    pbo.read_into(buffer)
                t5 = time.perf_counter()
                run.frames.append(buffer.copy())
                writer.submit(buffer)
                run.state_ms.append((t1 - t0) * 1e3)
                run.draw_ms.append((t2 - t1) * 1e3)
                run.convert_ms.append((t3 - t2) * 1e3)
                # The wait inside frame_buffer() is the encoder's, not the readback's.
                run.readback_ms.append((t5 - t3 - (writer.queue_wait_seconds - waited)) * 1e3)
                run.encoder_wait_ms.append((writer.queue_wait_seconds - waited) * 1e3)
        result = writer.close()
        run.wall_seconds = time.perf_counter() - started
        run.pipe_ms_per_frame = result.pipe_write_seconds / len(frames) * 1e3
    finally:
        source.release()
    return run


def time_limit(frames: list[np.ndarray], options: RenderOptions, settings: EncoderSettings,
               readback: str, out: Path) -> float:
    """Return the wall seconds that FFmpeg takes to encode frames already in memory."""
    started = time.perf_counter()
    with VideoWriter(out, options.width, options.height, options.fps, settings,
                     input_format="yuv420p" if readback == "yuv" else "rgba") as writer:
        for frame in frames:
            writer.write(frame)
    return time.perf_counter() - started


def time_recorder(scene: Scene, options: RenderOptions, settings: EncoderSettings,
                  readback: str, out: Path) -> float:
    """Return the wall seconds of record_video for the range, without sound."""
    summary = record_video(scene, load_look(), out, options, settings, progress=False,
                           sound=False, readback=readback)
    return summary.seconds


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def print_recorder(scene: Scene, options: RenderOptions, settings: EncoderSettings,
                   readbacks: list[str], repeat: int, folder: Path) -> None:
    frames = len(frame_range(Animator(scene), options))
    video_seconds = frames / options.fps
    print(f"# Recorder against the limit: {options.width}x{options.height}, {options.fps} fps, "
          f"{options.start:g} s to {options.end:g} s ({frames} frames), {settings.codec} "
          f"--preset {settings.preset} --crf {settings.crf}")
    for readback in readbacks:
        instrumented = run_instrumented(scene, options, settings, readback,
                                        folder / f"instrumented-{readback}.mp4")
        recorder, limit = [], []
        for _ in range(repeat):
            recorder.append(time_recorder(scene, options, settings, readback,
                                          folder / f"recorder-{readback}.mp4"))
            limit.append(time_limit(instrumented.frames, options, settings, readback,
                                    folder / f"limit-{readback}.mp4"))
        instrumented.frames.clear()
        ratios = [r / l for r, l in zip(recorder, limit)]
        wall = median(recorder)
        print(f"\n## readback {readback}")
        print("per-frame ms (instrumented run, median / mean):")
        rows = [("frame state", instrumented.state_ms), ("draw", instrumented.draw_ms)]
        if readback == "yuv":
            rows.append(("yuv conversion pass", instrumented.convert_ms))
        rows += [("readback", instrumented.readback_ms),
                 ("encoder wait", instrumented.encoder_wait_ms)]
        for name, values in rows:
            print(f"  {name:<22}{median(values):8.2f} / {statistics.fmean(values):8.2f}")
        print(f"  {'pipe write (thread)':<22}{instrumented.pipe_ms_per_frame:8.2f} (mean)")
        print(f"  instrumented run: {instrumented.wall_seconds:.2f} s, "
              f"{frames / instrumented.wall_seconds:.1f} frames/s")
        print(f"recorder   {wall:8.2f} s  {frames / wall:6.1f} frames/s  "
              f"{wall / video_seconds:5.2f} s per second of video"
              f"  (runs: {', '.join(f'{value:.2f}' for value in recorder)})")
        print(f"limit      {median(limit):8.2f} s  {frames / median(limit):6.1f} frames/s  "
              f"{median(limit) / video_seconds:5.2f} s per second of video"
              f"  (runs: {', '.join(f'{value:.2f}' for value in limit)})")
        print(f"ratio      {median(ratios):8.3f}  recorder / limit"
              f"  (runs: {', '.join(f'{value:.3f}' for value in ratios)})")
    print()


# ---------------------------------------------------------------------------
# Cost as the cloud and the frame grow


def with_vectors(scene: Scene, total: int) -> Scene:
    """Return the scene with ``total`` vectors shared out over its regions."""
    count = len(scene.regions)
    base, extra = divmod(total, count)
    regions = tuple(replace(region, vectors=base + (1 if index < extra else 0))
                    for index, region in enumerate(scene.regions))
    return replace(scene, regions=regions)


def sample_times(options: RenderOptions, count: int) -> list[float]:
    end = options.end if options.end is not None else options.start + 1.0
    return [options.start + (end - options.start) * (i + 0.5) / count for i in range(count)]


def time_states(animator: Animator, times: list[float]) -> list[float]:
    animator.state_at(times[0])
    result = []
    for t in times:
        started = time.perf_counter()
        animator.state_at(t)
        result.append((time.perf_counter() - started) * 1e3)
    return result


def time_draws(source: FrameSource, times: list[float]) -> list[float]:
    """Return draw milliseconds (state excluded) per time, after one warm-up frame."""
    states = [source.animator.state_at(t) for t in times]
    source.renderer.render(states[0], flip_for_readback=True)
    source.ctx.finish()
    result = []
    for state in states:
        started = time.perf_counter()
        source.renderer.render(state, flip_for_readback=True)
        source.ctx.finish()
        result.append((time.perf_counter() - started) * 1e3)
    return result


def print_cloud(ctx, scene: Scene, options: RenderOptions) -> None:
    print(f"# Cloud: frame state and draw at {options.width}x{options.height} "
          f"(median and min of {STATE_SAMPLES} states and {DRAW_SAMPLES} draws from "
          f"{options.start:g} s to {options.end:g} s)")
    print(f"  {'vectors':>8} {'animator build ms':>18} {'frame state ms':>15} "
          f"{'(min)':>7} {'draw ms':>9} {'(min)':>7}")
    for total in CLOUD_SIZES:
        grown = with_vectors(scene, total)
        started = time.perf_counter()
        animator = Animator(grown)
        build_ms = (time.perf_counter() - started) * 1e3
        state_ms = time_states(animator, sample_times(options, STATE_SAMPLES))
        source = FrameSource(grown, load_look(), options, ctx=ctx)
        draw_ms = time_draws(source, sample_times(options, DRAW_SAMPLES))
        print(f"  {total:>8,} {build_ms:>18.1f} {median(state_ms):>15.2f} "
              f"{min(state_ms):>7.2f} {median(draw_ms):>9.1f} {min(draw_ms):>7.1f}")
    print()


def print_sizes(ctx, scene: Scene, options: RenderOptions) -> None:
    print(f"# Size: draw ms (median and min of {DRAW_SAMPLES} frames, default scene)")
    for width, height in FRAME_SIZES:
        sized = replace(options, width=width, height=height)
        source = FrameSource(scene, load_look(), sized, ctx=ctx)
        draw_ms = time_draws(source, sample_times(options, DRAW_SAMPLES))
        print(f"  {width:>5}x{height:<5} {median(draw_ms):8.1f} (min {min(draw_ms):.1f})")
    print()


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    log.setLevel(logging.WARNING)
    width, height = args.size
    options = RenderOptions(width, height, args.fps, args.start, args.end)
    settings = EncoderSettings(codec=args.encoder, preset=args.preset, crf=args.crf)
    readbacks = [name.strip() for name in args.readback.split(",") if name.strip()]
    for name in readbacks:
        if name not in ("rgba", "yuv"):
            raise SystemExit(f"Invalid readback {name!r} in --readback: use rgba, yuv or both.")
    scene = load_scene()
    ctx = create_headless_context()
    print_machine(ctx)
    if not args.skip_recorder:
        with tempfile.TemporaryDirectory(prefix="hyperloss-benchmark-") as folder:
            print_recorder(scene, options, settings, readbacks, args.repeat, Path(folder))
    with ctx:
        if not args.skip_cloud:
            print_cloud(ctx, scene, options)
        if not args.skip_sizes:
            print_sizes(ctx, scene, options)
    print_load()
    return 0


if __name__ == "__main__":
    sys.exit(main())
