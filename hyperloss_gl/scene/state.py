"""The frame state: everything the renderer draws at one time ``t``.

:class:`Animator` holds only data fixed for the whole video (the scene, its
timeline and the cloud's per-vector data) and turns a time into a
:class:`FrameState`. It keeps no state between calls, so seeking anywhere
costs one evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hyperloss_gl.scene import easing, layout
from hyperloss_gl.scene.cloud import (
    CloudModel, build_cloud, camera_projection, camera_view, project,
)
from hyperloss_gl.scene.description import Scene
from hyperloss_gl.scene.garble import garble, garble_mask
from hyperloss_gl.scene.timeline import CHIP_POP_S, TRACER_TRAIL_S, Position, Timeline

TRAIL_SAMPLES = 14
OTHER_REGION_LEARNING = 0.04
"""Share of an epoch's training that reaches the regions other than the active one."""
ORDER_RATE = 0.55
"""Order of a region after ``k`` trainings is ``1 - exp(-ORDER_RATE * k)``."""
WAVE_REACH = 640.0
"""Radius of the backprop wave at the end of its stage, in design pixels."""
WAVE_WIDTH = 46.0
"""Half-width of the band that lights vectors as the wave front passes, in design pixels."""


@dataclass(frozen=True)
class Chip:
    """One token chip of the input row."""

    text: str
    scale: float
    alpha: float


@dataclass(frozen=True)
class OutputText:
    """The answer row: the characters shown now and which of them are still garbled."""

    text: str
    garbled: np.ndarray
    stage: str | None
    alpha: float
    flash: float
    """1.0 at the moment the answer becomes aligned, fading to 0."""


@dataclass(frozen=True)
class LossState:
    """The loss panel. Positions are in design pixels."""

    step: float
    value: float
    curve: np.ndarray
    """(k, 2) points of the curve traced so far, the last one at the tracer."""
    tracer: tuple[float, float]
    trail: np.ndarray
    """(m, 2) past tracer positions, newest first."""
    trail_alpha: np.ndarray
    axes_progress: float
    moving: float
    """0..1, how fast the tracer moves now; the dot glows brighter while it moves."""


@dataclass(frozen=True)
class CloudState:
    """The regional cloud at one time. Arrays have one row per vector."""

    positions: np.ndarray
    directions: np.ndarray
    """(n, 3) direction of each vector; not unit length, the renderer normalises it."""
    colors: np.ndarray
    brightness: np.ndarray
    view: np.ndarray
    projection: np.ndarray
    activation: np.ndarray
    """(r,) 0..1 per region: how lit its boundary and vectors are."""
    order: np.ndarray
    """(r,) 0..1 per region: how far training has ordered its vectors."""
    region_screen: np.ndarray
    """(r, 3) projected centre x, y in design pixels and the projected radius."""


@dataclass(frozen=True)
class WaveState:
    """The backprop ring, in design pixels."""

    center: tuple[float, float]
    radius: float
    strength: float
    color: tuple[float, float, float]


@dataclass(frozen=True)
class FrameState:
    """Everything the renderer needs to draw the frame at ``t``."""

    t: float
    position: Position
    title_alpha: float
    counter_text: str
    counter_alpha: float
    counter_pop: float
    chips: tuple[Chip, ...]
    """Every token of the shown prompt; chips that have not popped in yet have alpha 0."""
    chip_region: int
    output: OutputText
    loss: LossState
    cloud: CloudState
    wave: WaveState
    outro: float
    """0..1 through the outro, 0 before it."""


class Animator:
    """Turns times into frame states for one scene."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.timeline = Timeline(scene)
        self.cloud: CloudModel = build_cloud(scene)
        self.loss = np.array(scene.loss, np.float64)
        self.loss_points = np.array([
            layout.loss_point(i, v, len(self.loss) - 1, scene.loss_axis_max)
            for i, v in enumerate(self.loss)], np.float64).reshape(-1, 2)
        self.training = self._training_table()
        self.projection = camera_projection()

    def _training_table(self) -> np.ndarray:
        """Return (epochs + 1, regions): the training each region had before each epoch."""
        scene = self.scene
        table = np.zeros((scene.epochs + 1, len(scene.regions)))
        for epoch, example in enumerate(scene.examples):
            step = np.full(len(scene.regions), OTHER_REGION_LEARNING)
            step[example.region] = 1.0
            table[epoch + 1] = table[epoch] + step
        return table

    def loss_at(self, step: float) -> float:
        """Return the loss at a fractional step, interpolated linearly between steps."""
        return float(np.interp(step, np.arange(len(self.loss)), self.loss))

    def state_at(self, t: float) -> FrameState:
        """Return the frame state at time ``t`` in seconds (clamped to the video)."""
        t = min(max(float(t), 0.0), self.timeline.duration)
        pos = self.timeline.locate(t)
        activation = self._activation(t, pos)
        wave = self._wave(t, pos)
        return FrameState(
            t=t, position=pos,
            title_alpha=float(easing.ease_out_cubic(t / 0.5)),
            counter_text=self._counter_text(pos),
            counter_alpha=0.0 if pos.phase == "intro" else 1.0,
            counter_pop=self._counter_pop(t, pos),
            chips=self._chips(t, pos),
            chip_region=self.scene.examples[max(pos.epoch, 0)].region,
            output=self._output(t, pos),
            loss=self._loss(t),
            cloud=self._cloud(t, pos, activation, wave),
            wave=wave,
            outro=pos.progress if pos.phase == "outro" else 0.0)

    def _counter_text(self, pos: Position) -> str:
        epoch = max(pos.epoch, 0) + 1
        return f"Epoch {epoch}/{self.scene.epochs}"

    def _counter_pop(self, t: float, pos: Position) -> float:
        if pos.phase != "epoch":
            return 0.0
        return float(easing.pulse(self.timeline.stage_progress(t, pos.epoch, "tick")))

    def _chips(self, t: float, pos: Position) -> tuple[Chip, ...]:
        if pos.phase == "intro":
            return ()
        epoch = pos.epoch
        fade = 1.0
        if pos.phase == "epoch" and pos.stage == "tick" and epoch > 0:
            # The previous epoch's chips leave while the counter ticks.
            fade = 1.0 - float(easing.smoothstep(pos.progress / 0.8))
            epoch -= 1
        chips = []
        for text, start in zip(self.scene.examples[epoch].tokens,
                               self.timeline.chip_times(epoch)):
            p = (t - start) / CHIP_POP_S if fade == 1.0 else 1.0
            chips.append(Chip(text, float(easing.ease_out_back(p)),
                              float(easing.clamp01(p * 2.5)) * fade))
        return tuple(chips)

    def _severity(self, epoch: int) -> float:
        start = self.loss[epoch * self.scene.steps_per_epoch]
        return float(min(start / max(self.loss[0], 1e-9), 1.0))

    def _output(self, t: float, pos: Position) -> OutputText:
        empty = OutputText("", np.zeros(0, bool), None, 0.0, 0.0)
        if pos.phase == "intro":
            return empty
        epoch, scene, fade = pos.epoch, self.scene, 1.0
        stage = pos.stage
        if pos.phase == "epoch" and stage in ("tick", "tokens", "forward"):
            if epoch == 0 or stage != "tick":
                return empty
            epoch, stage, fade = epoch - 1, "tracer", 1.0 - float(easing.smoothstep(pos.progress))
        text = scene.examples[epoch].output
        aligned_start = self.timeline.stage_start(epoch, "aligned")
        flash = 0.0
        if stage in ("gibberish", "partial"):
            mask = garble_mask(text, stage, self._severity(epoch), scene.seed, epoch)
        elif stage == "aligned":
            # The remaining garbled characters resolve left to right over 60 % of the stage.
            mask = garble_mask(text, "partial", self._severity(epoch), scene.seed, epoch)
            resolved = np.arange(len(text)) < pos.progress / 0.6 * len(text)
            mask = mask & ~resolved
        else:
            mask = np.zeros(len(text), bool)
        if stage not in ("gibberish", "partial"):
            flash = float(math.exp(-max(t - aligned_start - 0.6 * scene.timing["aligned"], 0.0)
                                   / 0.25)) if t >= aligned_start else 0.0
        shown = garble(text, mask, scene.seed, epoch, t)
        in_p = self.timeline.stage_progress(t, epoch, "gibberish")
        alpha = float(easing.smoothstep(in_p / 0.4)) * fade
        return OutputText(shown, mask, stage, alpha, flash * fade)

    def _loss(self, t: float) -> LossState:
        timeline = self.timeline
        step = timeline.tracer_step(t)
        value = self.loss_at(step)
        steps = len(self.loss) - 1
        axis_max = self.scene.loss_axis_max
        whole = int(math.floor(step))
        tracer = layout.loss_point(step, value, steps, axis_max)
        curve = np.vstack([self.loss_points[:whole + 1], [tracer]])
        times = t - np.arange(TRAIL_SAMPLES) * (TRACER_TRAIL_S / (TRAIL_SAMPLES - 1))
        trail_steps = np.array([timeline.tracer_step(max(x, 0.0)) for x in times])
        trail_values = np.interp(trail_steps, np.arange(len(self.loss)), self.loss)
        trail = np.array([layout.loss_point(s, v, steps, axis_max)
                          for s, v in zip(trail_steps, trail_values)], np.float64)
        alpha = (1.0 - np.arange(TRAIL_SAMPLES) / (TRAIL_SAMPLES - 1)) ** 1.5
        speed = abs(step - trail_steps[3]) / (3 * TRACER_TRAIL_S / (TRAIL_SAMPLES - 1))
        return LossState(step, value, curve, tracer, trail, alpha,
                         float(easing.ease_in_out_cubic((t - 0.3) / 1.0)),
                         float(min(speed / 8.0, 1.0)))

    def _activation(self, t: float, pos: Position) -> np.ndarray:
        activation = np.zeros(len(self.scene.regions))
        if pos.phase != "epoch":
            return activation
        region = self.scene.examples[pos.epoch].region
        rise = easing.ease_out_cubic(self.timeline.stage_progress(t, pos.epoch, "forward"))
        fall = easing.smoothstep(self.timeline.stage_progress(t, pos.epoch, "tracer"))
        activation[region] = rise * (1.0 - fall)
        return activation

    def _order(self, t: float, pos: Position) -> np.ndarray:
        if pos.phase == "intro":
            trained = self.training[0]
        elif pos.phase == "outro":
            trained = self.training[-1]
        else:
            p = easing.ease_in_out_cubic(self.timeline.stage_progress(t, pos.epoch, "backprop"))
            trained = self.training[pos.epoch] + p * (self.training[pos.epoch + 1]
                                                      - self.training[pos.epoch])
        return 1.0 - np.exp(-ORDER_RATE * trained)

    def _wave(self, t: float, pos: Position) -> WaveState:
        center = (layout.CONTENT_CENTER_X, layout.OUTPUT_ROW.y + 24.0)
        if pos.phase != "epoch" or pos.stage != "backprop":
            return WaveState(center, 0.0, 0.0, (1.0, 1.0, 1.0))
        region = self.scene.regions[self.scene.examples[pos.epoch].region]
        radius = WAVE_REACH * float(easing.ease_out_cubic(pos.progress))
        strength = float(easing.smoothstep(pos.progress / 0.12) * (1.0 - pos.progress) ** 0.8)
        return WaveState(center, radius, strength, region.color)

    def _cloud(self, t: float, pos: Position, activation: np.ndarray,
               wave: WaveState) -> CloudState:
        model = self.cloud
        order = self._order(t, pos)
        positions = np.empty_like(model.scatter)
        directions = np.empty_like(model.scatter_dir)
        brightness = np.empty(len(positions), np.float32)
        any_active = float(activation.max()) if len(activation) else 0.0
        # Vectors are stored region by region, so each region is one slice with
        # scalar weights: no per-vector gathers, which matters at 100,000 vectors.
        for index in range(len(self.scene.regions)):
            rows = slice(model.offsets[index], model.offsets[index + 1])
            weight = np.float32(order[index])
            lit = float(activation[index])
            np.multiply(model.move[rows], weight, out=positions[rows])
            positions[rows] += model.scatter[rows]
            if lit > 0.0:
                positions[rows] += np.sin(t * 7.0 + model.phase[rows]) * np.float32(0.045 * lit)
            np.multiply(model.turn[rows], weight, out=directions[rows])
            directions[rows] += model.scatter_dir[rows]
            brightness[rows] = 0.6 - 0.3 * any_active + 2.6 * lit
        view = camera_view(t)
        view_projection = self.projection @ view
        if wave.strength > 0.0 and len(positions):
            screen, _ = project(positions, view_projection)
            distance = np.hypot(screen[:, 0] - wave.center[0], screen[:, 1] - wave.center[1])
            brightness += (2.4 * wave.strength) * np.exp(
                -np.square((distance - wave.radius) / WAVE_WIDTH)).astype(np.float32)
        centers, _ = project(model.region_centers, view_projection)
        edge, _ = project(model.region_centers + np.stack(
            [model.region_radii, np.zeros_like(model.region_radii),
             np.zeros_like(model.region_radii)], axis=1), view_projection)
        radius = np.hypot(*(edge - centers).T) if len(centers) else np.zeros(0)
        region_screen = np.column_stack([centers, radius]) if len(centers) else np.zeros((0, 3))
        return CloudState(positions, directions, model.base_color, brightness, view,
                          self.projection, activation, order, region_screen)
