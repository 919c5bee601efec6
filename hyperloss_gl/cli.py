"""The ``hyperloss`` command: parse options, configure logging, run a driver.

Exit status: 0 on success, 1 on a runtime failure, 2 on invalid input, 130
after Ctrl-C and 143 after SIGTERM. A user's mistake prints a message, never
a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import math
import re
import signal
from pathlib import Path

from hyperloss_gl import __version__, log
from hyperloss_gl.errors import HyperlossError, UsageError

DEFAULT_RECORDING = Path("capture/hyperloss.mp4")
DEFAULT_SOUND_RECORDING = Path("capture/hyperloss.wav")
SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
MAX_SIZE = 7680
MAX_FPS = 240
TIME_LIMIT_S = 1e6
"""Upper bound of time options before the scene is known; the scene's length is checked later."""
MAX_JOBS = 64
MAX_CODEC_PIXELS = 139_264 * 256
"""Frame size limit of H.264 level 6.2 (139,264 macroblocks of 16x16) and of HEVC level 6.2."""


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that cleanup code runs as for Ctrl-C."""


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into even, positive pixel sizes."""
    match = SIZE_PATTERN.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; use WIDTHxHEIGHT, "
                                         "for example 1080x1920")
    width, height = int(match.group(1)), int(match.group(2))
    for name, value in (("width", width), ("height", height)):
        if not 16 <= value <= MAX_SIZE:
            raise argparse.ArgumentTypeError(f"invalid {name} {value} in {text!r}; allowed "
                                             f"are 16 to {MAX_SIZE} pixels")
        if value % 2:
            raise argparse.ArgumentTypeError(
                f"invalid {name} {value} in {text!r}: H.264 in yuv420p needs even sizes; "
                f"use {value - 1} or {value + 1}")
    return width, height


def _number(kind, low, high, what):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}; give "
                                             f"{'an integer' if kind is int else 'a number'}")
        if not (math.isfinite(value) and low <= value <= high):
            # Times have no real upper bound here; the video's length is checked later.
            allowed = f"{low} or more" if high >= TIME_LIMIT_S else f"{low} to {high}"
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}; allowed are {allowed}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser; the README's option table follows it."""
    parser = argparse.ArgumentParser(
        prog="hyperloss",
        description="Render 'Training a Language Model' as a vertical video. Without --record "
                    "or --still, open the live preview window.")
    parser.add_argument("--record", nargs="?", const=DEFAULT_RECORDING, type=Path,
                        metavar="OUT", help="record to an MP4 file without a window "
                        f"(default path: {DEFAULT_RECORDING}); a path ending in .wav writes "
                        "only the sound track")
    parser.add_argument("--still", type=_number(float, 0.0, TIME_LIMIT_S, "still time"),
                        metavar="SECONDS", help="write the one frame at SECONDS to --output")
    parser.add_argument("--output", type=Path, metavar="FRAME.png",
                        help="path of the --still image (default: capture/still-SECONDS.png)")
    parser.add_argument("--scene", type=Path, metavar="FILE",
                        help="scene description in TOML (default: the shipped scene)")
    parser.add_argument("--look", type=Path, metavar="FILE",
                        help="look file in TOML: colours, glow, sizes, sound levels "
                             "(default: the shipped look)")
    parser.add_argument("--shaders", type=Path, metavar="DIR",
                        help="folder of GLSL files to use instead of the shipped ones")
    parser.add_argument("--size", type=parse_size, metavar="WxH",
                        help="output size in pixels, even numbers (default: the scene's, "
                             "1080x1920)")
    parser.add_argument("--fps", type=_number(int, 1, MAX_FPS, "frame rate"),
                        help="frames per second (default: the scene's, 60)")
    parser.add_argument("--from", dest="start",
                        type=_number(float, 0.0, TIME_LIMIT_S, "start time"),
                        default=0.0, metavar="SECONDS",
                        help="start of the recorded range in seconds (default: 0)")
    parser.add_argument("--to", dest="end", type=_number(float, 0.0, TIME_LIMIT_S, "end time"),
                        metavar="SECONDS",
                        help="end of the recorded range in seconds (default: the end)")
    parser.add_argument("--encoder", default="libx264",
                        help="video encoder: libx264, libx265 or h264_nvenc (default: libx264)")
    parser.add_argument("--preset", default="veryfast",
                        help="encoder preset, for example veryfast or medium "
                             "(default: veryfast)")
    parser.add_argument("--crf", type=_number(int, 0, 51, "CRF"), default=None,
                        help="constant rate factor, 0 (lossless) to 51; lower is better "
                             "(default: 18)")
    parser.add_argument("--bitrate", metavar="RATE",
                        help="target bit rate such as 8M instead of --crf")
    parser.add_argument("--preview-scale", type=_number(float, 0.1, 1.0, "preview scale"),
                        default=0.5, metavar="FRACTION",
                        help="preview window only: render at this fraction of the video size, "
                             "0.1 to 1; lower draws faster (default: 0.5)")
    parser.add_argument("--no-sound", action="store_true",
                        help="record the video without an audio stream")
    parser.add_argument("--music", type=Path, metavar="FILE",
                        help="audio file (any format FFmpeg reads) mixed under the sound "
                             "effects, faded out at the end and ducked under the effects")
    parser.add_argument("--audio-only", action="store_true",
                        help="write only the sound track, 48 kHz stereo 16-bit WAV, to --record "
                             f"(default path: {DEFAULT_SOUND_RECORDING})")
    parser.add_argument("--jobs", type=_number(int, 1, MAX_JOBS, "job count"), default=1,
                        metavar="N", help="recording only: render and encode N contiguous "
                        f"segments in N processes, then join them, 1 to {MAX_JOBS} (default: 1)")
    parser.add_argument("--readback", choices=("rgba", "yuv", "auto"), default="auto",
                        help="recording only: read frames back as yuv420p written by the "
                             "composite pass, or as RGBA for FFmpeg to convert; auto is yuv "
                             "(default: auto)")
    parser.add_argument("--motion-blur", type=_number(int, 1, 32, "motion blur"), default=1,
                        metavar="N", help="recording and stills: average N sub-frames over a "
                        "half-frame shutter, 1 to 32; 1 is off (default: 1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser.add_argument("--version", action="version", version=f"hyperloss {__version__}")
    return parser


def unknown_arguments_message(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """Return argparse's message for unknown arguments, with the closest option for a typo."""
    message = f"unrecognized arguments: {' '.join(unknown)}"
    known = [option for action in parser._actions for option in action.option_strings
             if option.startswith("--")]
    for argument in unknown:
        if argument.startswith("--"):
            close = difflib.get_close_matches(argument.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]}?"
                break
    return message


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Send the package logger to standard error at the chosen level."""
    level = logging.INFO
    if verbose:
        level = logging.DEBUG
    elif quiet:
        level = logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("hyperloss: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(unknown_arguments_message(parser, unknown))
    configure_logging(args.verbose, args.quiet)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args)
    except HyperlossError as error:
        log.error("error: %s", error)
        return error.exit_status
    except KeyboardInterrupt:
        log.error("stopped by Ctrl-C (SIGINT)")
        return 130
    except Terminated:
        log.error("stopped by SIGTERM")
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """Load the scene and look, then record, write a still or open the preview."""
    from hyperloss_gl.look import load_look
    from hyperloss_gl.scene import load_scene

    scene = load_scene(args.scene)
    look = load_look(args.look)
    options = render_options(args, scene)
    if args.record is not None and args.still is not None:
        raise UsageError("--record and --still exclude each other; give one of them.")
    if args.audio_only and args.still is not None:
        raise UsageError("--audio-only and --still exclude each other; give one of them.")
    if args.output is not None and args.still is None:
        raise UsageError(f"--output {args.output} names the image of --still; add --still "
                         "SECONDS, or give a video's path to --record instead.")
    if args.record is not None or args.audio_only:
        return _record(args, scene, look, options)
    if args.still is not None:
        return _still(args, scene, look, options)
    from hyperloss_gl.preview import run_preview

    return run_preview(scene, look, options, args)


def render_options(args: argparse.Namespace, scene):
    """Combine the options with the scene's defaults and check the time range."""
    from hyperloss_gl.record import RenderOptions
    from hyperloss_gl.scene import Timeline

    width, height = args.size or (scene.width, scene.height)
    fps = args.fps or scene.fps
    duration = Timeline(scene).duration
    if args.end is not None and args.end <= args.start:
        raise UsageError(f"--from {args.start:g} must be before --to {args.end:g}.")
    if args.start >= duration:
        raise UsageError(f"--from {args.start:g} is past the end of the {duration:.2f} s video; "
                         f"use a value below {duration:.2f}.")
    if args.end is not None and args.end > duration:
        log.info("--to %g is past the end of the %.2f s video; the range ends with the video",
                 args.end, duration)
    if args.shaders is not None and not args.shaders.is_dir():
        raise UsageError(f"--shaders {args.shaders} is not a folder; copy the shipped shaders "
                         "folder and point --shaders at the copy.")
    return RenderOptions(width, height, fps, args.start, args.end, args.shaders,
                         motion_blur=args.motion_blur)


def _warn_above_codec_limit(width: int, height: int) -> None:
    if width * height > MAX_CODEC_PIXELS:
        log.warning("%dx%d has %d pixels, more than the %d that the highest level (6.2) of "
                    "H.264 and HEVC allows; many players and upload sites reject such a file. "
                    "7680x4320 is within the limit.", width, height, width * height,
                    MAX_CODEC_PIXELS)


def _record(args, scene, look, options) -> int:
    from hyperloss_gl.encode import EncoderSettings, check_output_path
    from hyperloss_gl.record import record_video

    if args.music is not None and args.no_sound:
        raise UsageError("--music and --no-sound exclude each other; give one of them.")
    if args.music is not None and not args.music.is_file():
        raise UsageError(f"--music {args.music} not found or not a file; give the path of an "
                         "audio file.")
    if args.audio_only or (args.record is not None and args.record.suffix.lower() == ".wav"):
        return _record_sound(args, scene, look, options)
    if args.crf is not None and args.bitrate is not None:
        raise UsageError("--crf and --bitrate exclude each other; give one of them.")
    check_output_path(args.record)
    _warn_above_codec_limit(options.width, options.height)
    settings = EncoderSettings(codec=args.encoder, preset=args.preset,
                               crf=None if args.bitrate else (18 if args.crf is None
                                                              else args.crf),
                               bitrate=args.bitrate)
    if args.jobs > 1:
        from hyperloss_gl.parallel import record_parallel

        record_parallel(scene, look, args.record, options, settings, args.jobs,
                        sound=not args.no_sound, music=args.music, readback=args.readback)
        return 0
    record_video(scene, look, args.record, options, settings, sound=not args.no_sound,
                 music=args.music, readback=args.readback)
    return 0


def _record_sound(args, scene, look, options) -> int:
    from hyperloss_gl.audio import record_sound
    from hyperloss_gl.record import frame_range
    from hyperloss_gl.scene import Animator

    out = args.record or DEFAULT_SOUND_RECORDING
    if out.suffix.lower() != ".wav":
        raise UsageError(f"--audio-only writes a WAV file, but --record names {out}; give "
                         "--record OUT.wav or leave --record out.")
    if args.no_sound:
        raise UsageError(f"--no-sound leaves nothing to write to {out}; drop --no-sound or "
                         "record an MP4.")
    frames = frame_range(Animator(scene), options)
    record_sound(scene, look, out, options.fps, frames, music=args.music)
    return 0


def _still(args, scene, look, options) -> int:
    from hyperloss_gl.record import FrameSource, check_png_path, write_png
    from hyperloss_gl.scene import Timeline

    duration = Timeline(scene).duration
    if args.still > duration:
        raise UsageError(f"--still {args.still:g} is outside the {duration:.2f} s video; "
                         f"use 0 to {duration:.2f}.")
    output = check_png_path(args.output or Path(f"capture/still-{args.still:06.2f}.png"))
    source = FrameSource(scene, look, options)
    write_png(output, source.still(args.still))
    return 0
