"""The scheduler: lays the intro, the epochs with their stages and the outro on the time axis.

Every epoch has the same length, so locating ``t`` is arithmetic and keeps no
state. The same layout yields the list of events (ticks, chip pops, steps)
that other parts, such as the sound track, line up with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hyperloss_gl.scene.description import STAGES, Scene

CHIP_POP_S = 0.26
"""Length of one chip's pop animation in seconds."""
BOUNDARY_SNAP_S = 1e-9
"""Times this close before a stage boundary count as on it, against float rounding."""
TRACER_TRAIL_S = 0.22
"""How far back in time the tracer's trail reaches, in seconds."""


@dataclass(frozen=True)
class Position:
    """The phase, epoch and stage that a time falls in.

    ``epoch`` is 0-based; it is -1 during the intro and the last epoch during
    the outro. ``stage`` is None outside epochs; ``progress`` runs 0..1 over the
    stage, or over the intro or outro.
    """

    t: float
    phase: str
    epoch: int
    stage: str | None
    progress: float
    stage_start: float


@dataclass(frozen=True)
class Event:
    """A moment the animation marks, such as a chip popping in.

    ``kind`` is one of: ``intro``, ``epoch``, ``chip``, ``region_on``,
    ``region_off``, ``gibberish``, ``partial``, ``aligned``, ``wave``, ``step``,
    ``outro``. ``index`` is the chip, step or region index where that applies.
    """

    t: float
    kind: str
    epoch: int = -1
    index: int = -1
    duration: float = 0.0


class Timeline:
    """Stage layout of one scene on the time axis, in seconds."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.intro = scene.timing["intro"]
        self.outro = scene.timing["outro"]
        self.epochs = scene.epochs
        self.epoch_duration = scene.epoch_duration
        self.stage_offsets = {}
        offset = 0.0
        for stage in STAGES:
            self.stage_offsets[stage] = offset
            offset += scene.timing[stage]
        self.outro_start = self.intro + self.epochs * self.epoch_duration
        self.duration = self.outro_start + self.outro

    def frame_count(self, fps: int) -> int:
        """Return the number of video frames; frame ``n`` shows ``t = n / fps``."""
        return max(1, int(math.ceil(self.duration * fps - 1e-9)))

    def epoch_start(self, epoch: int) -> float:
        """Return the start time of a 0-based epoch."""
        return self.intro + epoch * self.epoch_duration

    def stage_start(self, epoch: int, stage: str) -> float:
        """Return the start time of one stage of a 0-based epoch."""
        return self.epoch_start(epoch) + self.stage_offsets[stage]

    def stage_end(self, epoch: int, stage: str) -> float:
        """Return the end time of one stage of a 0-based epoch."""
        return self.stage_start(epoch, stage) + self.scene.timing[stage]

    def locate(self, t: float) -> Position:
        """Return the phase, epoch, stage and progress at time ``t``.

        A time up to ``BOUNDARY_SNAP_S`` before a boundary counts as on it, so
        frame ``n`` at ``n / fps`` starts a stage whose start time is the same
        number computed another way.
        """
        u = t + BOUNDARY_SNAP_S
        if u < self.intro:
            return Position(t, "intro", -1, None, max(t, 0.0) / self.intro, 0.0)
        if u >= self.outro_start:
            progress = min(max(t - self.outro_start, 0.0) / self.outro, 1.0)
            return Position(t, "outro", self.epochs - 1, None, progress, self.outro_start)
        epoch = self._epoch_at(u)
        for stage in reversed(STAGES):
            start = self.stage_start(epoch, stage)
            if u >= start:
                length = self.scene.timing[stage]
                progress = min(max(t - start, 0.0) / length, 1.0)
                return Position(t, "epoch", epoch, stage, progress, start)
        raise AssertionError("unreachable: _epoch_at returns an epoch that starts at or before t")

    def _epoch_at(self, t: float) -> int:
        """Return the 0-based epoch whose span, as ``epoch_start`` computes it, contains ``t``.

        Floor division and the sum in ``epoch_start`` round differently, so the
        estimate is corrected by one epoch where needed. Then ``locate`` of any
        ``stage_start`` time names that stage.
        """
        epoch = min(max(int((t - self.intro) // self.epoch_duration), 0), self.epochs - 1)
        if epoch + 1 < self.epochs and t >= self.epoch_start(epoch + 1):
            epoch += 1
        elif epoch > 0 and t < self.epoch_start(epoch):
            epoch -= 1
        return epoch

    def stage_progress(self, t: float, epoch: int, stage: str) -> float:
        """Return how far ``t`` is through one stage, clamped to 0..1."""
        start = self.stage_start(epoch, stage)
        return min(max((t - start) / self.scene.timing[stage], 0.0), 1.0)

    def chip_times(self, epoch: int) -> list[float]:
        """Return the time each token chip of an epoch starts to pop in."""
        count = len(self.scene.examples[epoch].tokens)
        start = self.stage_start(epoch, "tokens")
        spacing = self.scene.timing["tokens"] / max(count, 1)
        return [start + i * spacing for i in range(count)]

    def tracer_step(self, t: float) -> float:
        """Return the tracer's position in training steps (a float) at time ``t``.

        During an epoch's tracer stage the dot moves one step at a time, each
        step eased so that it lands on the data point.
        """
        steps = self.scene.steps_per_epoch
        if t + BOUNDARY_SNAP_S < self.intro:
            return 0.0
        if t + BOUNDARY_SNAP_S >= self.outro_start:
            return float(self.epochs * steps)
        epoch = self._epoch_at(t + BOUNDARY_SNAP_S)
        p = self.stage_progress(t, epoch, "tracer") * steps
        whole = min(int(p), steps - 1)
        frac = p - whole
        eased = frac * frac * (3.0 - 2.0 * frac)
        return epoch * steps + whole + eased

    def events(self) -> list[Event]:
        """Return every event of the scene, sorted by time."""
        scene = self.scene
        timing = scene.timing
        events = [Event(0.0, "intro", duration=self.intro)]
        steps = scene.steps_per_epoch
        for epoch, example in enumerate(scene.examples):
            events.append(Event(self.epoch_start(epoch), "epoch", epoch, epoch,
                                timing["tick"]))
            for i, chip_t in enumerate(self.chip_times(epoch)):
                events.append(Event(chip_t, "chip", epoch, i, CHIP_POP_S))
            region_on = self.stage_start(epoch, "forward")
            region_off = self.stage_end(epoch, "tracer")
            events.append(Event(region_on, "region_on", epoch, example.region,
                                region_off - region_on))
            events.append(Event(region_off, "region_off", epoch, example.region))
            for stage in ("gibberish", "partial", "aligned"):
                events.append(Event(self.stage_start(epoch, stage), stage, epoch,
                                    duration=timing[stage]))
            events.append(Event(self.stage_start(epoch, "backprop"), "wave", epoch,
                                duration=timing["backprop"]))
            tracer = self.stage_start(epoch, "tracer")
            for j in range(steps):
                events.append(Event(tracer + (j + 1) * timing["tracer"] / steps, "step", epoch,
                                    epoch * steps + j + 1))
        events.append(Event(self.outro_start, "outro", self.epochs - 1, duration=self.outro))
        return sorted(events, key=lambda event: event.t)
