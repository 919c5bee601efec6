"""Playback state of the live preview: playhead, speed, loop range and key bindings.

Nothing here imports OpenGL or a window library, so the whole behaviour of the
keys and of the timeline bar is testable without a display. The playhead is a
frame number: frame ``n`` shows ``t = n / fps``, as in a recording. While
playing, the playhead advances by wall-clock time times the speed, so a
preview that draws fewer frames than the video's rate skips frames and stays
in real time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SPEEDS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
"""Playback speeds that ``-`` and ``=`` step through. J and L double up to the last one."""
MAX_STEP_S = 1.0
"""Maximum wall-clock step that one ``advance`` applies. A longer stall, such as
a dragged window, counts as a seek, so the sound restarts in step."""

KEY_BINDINGS: dict[str, str] = {
    "space": "toggle_play",
    "left": "step_back",
    "right": "step_forward",
    "shift+left": "second_back",
    "shift+right": "second_forward",
    "[": "previous_epoch",
    "]": "next_epoch",
    "home": "first_frame",
    "end": "last_frame",
    **{str(number % 10): f"epoch_{number}" for number in range(1, 11)},
    "j": "shuttle_back",
    "k": "pause",
    "l": "shuttle_forward",
    "-": "slower",
    "_": "slower",
    "=": "faster",
    "+": "faster",
    "i": "mark_in",
    "o": "mark_out",
    "p": "clear_loop",
    "enter": "return_to_start",
    "tab": "toggle_hud",
    "g": "toggle_guides",
    "s": "save_still",
    "f12": "save_window",
    "r": "reload",
    "h": "toggle_help",
    "?": "toggle_help",
    "escape": "quit",
    "q": "quit",
}
"""Key name to action. Key names are lowercase characters or the names above, and
``shift+`` marks the bindings that differ with Shift held."""

KEY_HELP: tuple[tuple[str, str], ...] = (
    ("Space", "play or pause"),
    ("Left / Right", "pause and step one frame"),
    ("Shift+Left / Right", "jump one second"),
    ("[ / ]", "previous / next epoch start"),
    ("Home / End", "first / last frame"),
    ("1 ... 9, 0", "start of epoch 1 ... 9, 10"),
    ("J / K / L", "play backwards / pause / play forwards. J or L again doubles the speed "
                  "up to 4x"),
    ("- / =", "slower / faster"),
    ("I / O", "set the loop range's in / out point"),
    ("P", "clear the loop range"),
    ("Enter", "go back to where playback started"),
    ("Tab", "show or hide the HUD, the timeline bar and short messages"),
    ("G", "show or hide the safe-zone guides"),
    ("S", "save a full-size still of this frame into capture/"),
    ("F12", "save a screenshot of the window into capture/"),
    ("R", "reload the shaders and the look file now"),
    ("H or ?", "show or hide this help"),
    ("Esc or Q", "quit"),
    ("F11", "full screen on or off (moderngl-window's own key)"),
    ("Mouse", "drag along the timeline bar to scrub"),
)
"""Rows of the help overlay and of the README's key table."""

PLAYBACK_ACTIONS = frozenset({
    "toggle_play", "step_back", "step_forward", "second_back", "second_forward",
    "previous_epoch", "next_epoch", "first_frame", "last_frame", "shuttle_back", "pause",
    "shuttle_forward", "slower", "faster", "mark_in", "mark_out", "clear_loop",
    "return_to_start", *(f"epoch_{number}" for number in range(1, 11)),
})
"""Actions that :meth:`Playback.press` performs. The window performs the others."""


def key_name(key: str, shift: bool = False) -> str:
    """Return the binding name of a key: lowercase, with ``shift+`` where Shift changes it."""
    name = key if len(key) != 1 else key.lower()
    if shift and f"shift+{name}" in KEY_BINDINGS:
        return f"shift+{name}"
    return name


@dataclass(frozen=True)
class LoopRange:
    """Inclusive first and last frame that playback repeats."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


class Playback:
    """Playhead, play state, speed and loop range of one video.

    ``epoch_frames`` are the first frames of the epochs, first epoch first
    (see :func:`epoch_start_frames`). The playhead moves only through the
    methods below, and every move that is not playback itself increments
    :attr:`seek_count`, so that the sound can restart at the new time.
    """

    def __init__(self, fps: int, frame_count: int, epoch_frames: Sequence[int],
                 start_frame: int = 0):
        if fps <= 0 or frame_count <= 0:
            raise ValueError(f"fps ({fps}) and frame_count ({frame_count}) must be positive")
        self.fps = fps
        self.frame_count = frame_count
        self.epoch_frames = sorted(int(frame) for frame in epoch_frames)
        self._position = float(self._clamp(start_frame))
        self.playing = False
        self.speed = 1.0
        """Signed playback speed: 1.0 is real time forwards, -2.0 twice as fast backwards."""
        self.loop_in: int | None = None
        self.loop_out: int | None = None
        self.play_started_frame = self.frame
        """Frame at which playback last started, where Enter returns."""
        self.seek_count = 0
        self.notice: str | None = None
        """Short text for the HUD about the last key that could not do what it names."""

    # Playhead ----------------------------------------------------------------

    @property
    def last_frame(self) -> int:
        return self.frame_count - 1

    @property
    def frame(self) -> int:
        """Frame on screen: the playhead rounded down."""
        return min(int(math.floor(self._position)), self.last_frame)

    @property
    def time(self) -> float:
        """Time of the frame on screen in seconds."""
        return self.frame / self.fps

    def _clamp(self, frame: int) -> int:
        return min(max(int(frame), 0), self.last_frame)

    def seek(self, frame: int) -> None:
        """Move the playhead to ``frame``, clamped to the video, keeping the play state."""
        self._position = float(self._clamp(frame))
        self.seek_count += 1

    def seek_fraction(self, fraction: float) -> None:
        """Move the playhead to a fraction 0..1 of the video, as the timeline bar does."""
        fraction = min(max(fraction, 0.0), 1.0)
        self.seek(round(fraction * self.last_frame))

    # Loop range ----------------------------------------------------------------

    @property
    def loop(self) -> LoopRange | None:
        """Frames that playback repeats, or None when neither point is set."""
        if self.loop_in is None and self.loop_out is None:
            return None
        first = 0 if self.loop_in is None else self.loop_in
        last = self.last_frame if self.loop_out is None else self.loop_out
        return LoopRange(first, last)

    def mark_in(self) -> None:
        """Set the loop range's in point at the current frame, clearing an out point before it."""
        self.loop_in = self.frame
        if self.loop_out is not None and self.loop_out < self.loop_in:
            self.loop_out = None
            self.notice = "out point was before the new in point and is cleared"

    def mark_out(self) -> None:
        """Set the loop range's out point at the current frame, clearing an in point after it."""
        self.loop_out = self.frame
        if self.loop_in is not None and self.loop_in > self.loop_out:
            self.loop_in = None
            self.notice = "in point was after the new out point and is cleared"

    def clear_loop(self) -> None:
        self.loop_in = self.loop_out = None

    # Playing -------------------------------------------------------------------

    def play(self, speed: float | None = None) -> None:
        """Start playing at ``speed`` (default: the current speed).

        Starting forwards on the last frame restarts from the first, and
        starting backwards on the first frame restarts from the last. With a
        loop range set, a playhead outside it first moves to its in point.
        """
        if speed is not None:
            self.speed = speed
        loop = self.loop
        if loop is not None and not loop.first <= self.frame <= loop.last:
            self.seek(loop.first if self.speed > 0 else loop.last)
        elif loop is None and self.speed > 0 and self.frame == self.last_frame:
            self.seek(0)
        elif loop is None and self.speed < 0 and self.frame == 0:
            self.seek(self.last_frame)
        self.playing = True
        self.play_started_frame = self.frame

    def pause(self) -> None:
        self.playing = False

    def advance(self, seconds: float) -> None:
        """Move the playhead by ``seconds`` of wall-clock time when playing."""
        if not self.playing or seconds <= 0:
            return
        if seconds > MAX_STEP_S:
            seconds = MAX_STEP_S
            self.seek_count += 1
        self._position += seconds * self.fps * self.speed
        loop = self.loop
        if loop is not None:
            self._wrap_in_loop(loop)
        elif self._position >= self.frame_count:
            self._position = float(self.last_frame)
            self.playing = False
        elif self._position < 0:
            self._position = 0.0
            self.playing = False

    def _wrap_in_loop(self, loop: LoopRange) -> None:
        # The loop covers positions from first up to last + 1. A playhead that
        # left it re-enters from the other end, keeping the overshoot.
        end = loop.last + 1
        if self.speed > 0 and self._position >= end:
            self._position = loop.first + (self._position - end) % loop.length
            self.seek_count += 1
        elif self.speed < 0 and self._position < loop.first:
            self._position = end - (loop.first - self._position) % loop.length
            self._position = min(self._position, end - 1e-6)
            self.seek_count += 1

    def _shuttle(self, direction: int) -> None:
        if self.playing and self.speed * direction > 0:
            self.speed = direction * min(abs(self.speed) * 2, SPEEDS[-1])
        else:
            self.play(float(direction))

    def _change_speed(self, steps: int) -> None:
        magnitude = abs(self.speed)
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - magnitude))
        index = min(max(index + steps, 0), len(SPEEDS) - 1)
        self.speed = math.copysign(SPEEDS[index], self.speed)

    # Epochs --------------------------------------------------------------------

    def _jump_to_epoch(self, number: int) -> None:
        """Seek to the start of 1-based epoch ``number``."""
        if number > len(self.epoch_frames):
            self.notice = (f"no epoch {number}: this scene has {len(self.epoch_frames)} "
                           "epochs")
            return
        self.seek(self.epoch_frames[number - 1])

    def _previous_epoch(self) -> None:
        earlier = [frame for frame in self.epoch_frames if frame < self.frame]
        self.seek(earlier[-1] if earlier else 0)

    def _next_epoch(self) -> None:
        later = [frame for frame in self.epoch_frames if frame > self.frame]
        if later:
            self.seek(later[0])
        else:
            self.notice = "no epoch starts after this frame"

    # Keys ----------------------------------------------------------------------

    def press(self, key: str, shift: bool = False) -> str | None:
        """Handle one key press and return its action name, or None for an unbound key.

        Playback actions (:data:`PLAYBACK_ACTIONS`) happen here. The caller
        performs the returned name of any other action, such as ``quit``.
        """
        action = KEY_BINDINGS.get(key_name(key, shift))
        if action is None:
            return None
        self.notice = None
        if action in PLAYBACK_ACTIONS:
            self._perform(action)
        return action

    def _perform(self, action: str) -> None:
        if action.startswith("epoch_"):
            self._jump_to_epoch(int(action.removeprefix("epoch_")))
            return
        handlers = {
            "toggle_play": lambda: self.pause() if self.playing else self.play(),
            "pause": self.pause,
            "shuttle_back": lambda: self._shuttle(-1),
            "shuttle_forward": lambda: self._shuttle(1),
            "slower": lambda: self._change_speed(-1),
            "faster": lambda: self._change_speed(1),
            "step_back": lambda: self._step(-1),
            "step_forward": lambda: self._step(1),
            "second_back": lambda: self.seek(self.frame - self.fps),
            "second_forward": lambda: self.seek(self.frame + self.fps),
            "previous_epoch": self._previous_epoch,
            "next_epoch": self._next_epoch,
            "first_frame": lambda: self.seek(0),
            "last_frame": lambda: self.seek(self.last_frame),
            "mark_in": self.mark_in,
            "mark_out": self.mark_out,
            "clear_loop": self.clear_loop,
            "return_to_start": lambda: self.seek(self.play_started_frame),
        }
        handlers[action]()

    def _step(self, frames: int) -> None:
        self.pause()
        self.seek(self.frame + frames)


def first_frame_at(t: float, fps: int) -> int:
    """Return the first frame at ``t`` seconds, rounded as the recorder rounds ``--from``."""
    return max(int(math.ceil(t * fps - 1e-9)), 0)


def epoch_start_frames(timeline, fps: int) -> list[int]:
    """Return the first frame of each epoch: the first that ``timeline.locate`` puts in it.

    The loop guards against a frame time that falls before an epoch's start
    by more than the timeline's boundary snap, which rounding alone does not
    produce.
    """
    frames = []
    for epoch in range(timeline.epochs):
        frame = first_frame_at(timeline.epoch_start(epoch), fps)
        while timeline.locate(frame / fps).epoch < epoch:
            frame += 1
        frames.append(frame)
    return frames


class SoundSync:
    """Drives a preview sound so that it plays only at 1x forwards, in step with the playhead.

    ``sound`` has ``play(t)`` and ``stop()``. :meth:`update` calls ``play(t)``
    when playback starts or seeks while playing forwards at exactly 1x, and
    ``stop()`` when it pauses, scrubs or changes to any other speed.
    """

    def __init__(self, sound):
        self.sound = sound
        self.sounding = False
        self._seek_count = -1

    def update(self, playback: Playback, scrubbing: bool = False) -> None:
        audible = playback.playing and playback.speed == 1.0 and not scrubbing
        if audible and (not self.sounding or playback.seek_count != self._seek_count):
            self.sound.play(playback.time)
            self.sounding = True
        elif not audible and self.sounding:
            self.sound.stop()
            self.sounding = False
        self._seek_count = playback.seek_count

    def stop(self) -> None:
        if self.sounding:
            self.sound.stop()
            self.sounding = False
