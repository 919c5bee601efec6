"""The scheduler: stage layout, ``locate``, the tracer's step, duration and events."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hyperloss_gl.scene import STAGES, Timeline
from hyperloss_gl.scene.timeline import BOUNDARY_SNAP_S, CHIP_POP_S

TIGHT = 1e-9
"""Tolerance in seconds or steps for values that differ only by float rounding."""


def nudge(t: float, ulps: int) -> float:
    """Move ``t`` by ``ulps`` units in the last place (negative moves it earlier)."""
    direction = math.inf if ulps > 0 else -math.inf
    for _ in range(abs(ulps)):
        t = math.nextafter(t, direction)
    return t


def custom_timeline(default_scene, steps_per_epoch: int = 3, **timing: float) -> Timeline:
    """Return the timeline of the default scene with other timing or steps per epoch."""
    count = default_scene.epochs * steps_per_epoch + 1
    scene = dataclasses.replace(
        default_scene,
        timing={**default_scene.timing, **timing},
        steps_per_epoch=steps_per_epoch,
        loss=tuple(np.linspace(4.8, 0.4, count)))
    return Timeline(scene)


ODD_TIMING = {"intro": 0.1, "tick": 1 / 3, "tokens": 0.7, "forward": 0.01, "gibberish": 0.3,
              "partial": 1 / 7, "aligned": 0.29, "backprop": 0.61, "tracer": 0.33,
              "outro": 0.9}
"""Stage lengths with no exact binary form, to bring out rounding at stage boundaries."""


# Stage layout


def test_stages_in_listed_order(default_timeline):
    for epoch in range(default_timeline.epochs):
        starts = [default_timeline.stage_start(epoch, stage) for stage in STAGES]
        assert starts == sorted(starts), f"epoch {epoch}"


def test_stage_lengths_positive(default_timeline):
    for epoch in range(default_timeline.epochs):
        for stage in STAGES:
            length = (default_timeline.stage_end(epoch, stage)
                      - default_timeline.stage_start(epoch, stage))
            assert length > 0, f"epoch {epoch} {stage}"


def test_stages_without_gaps(default_timeline):
    for epoch in range(default_timeline.epochs):
        for stage, following in zip(STAGES, STAGES[1:]):
            end = default_timeline.stage_end(epoch, stage)
            start = default_timeline.stage_start(epoch, following)
            assert end == pytest.approx(start, abs=TIGHT), f"epoch {epoch} {stage}"


def test_epochs_without_gaps(default_timeline):
    for epoch in range(default_timeline.epochs - 1):
        end = default_timeline.stage_end(epoch, "tracer")
        start = default_timeline.stage_start(epoch + 1, "tick")
        assert end == pytest.approx(start, abs=TIGHT), f"epoch {epoch}"


def test_first_epoch_after_intro(default_timeline):
    assert default_timeline.epoch_start(0) == default_timeline.intro


def test_outro_after_last_epoch(default_timeline):
    last = default_timeline.epochs - 1
    end = default_timeline.stage_end(last, "tracer")
    assert end == pytest.approx(default_timeline.outro_start, abs=TIGHT)


def test_stage_lengths_from_timing(default_scene, default_timeline):
    for stage in STAGES:
        length = default_timeline.stage_end(3, stage) - default_timeline.stage_start(3, stage)
        assert length == pytest.approx(default_scene.timing[stage], abs=TIGHT), stage


# locate()


def test_locate_stage_midpoints(default_timeline):
    for epoch in range(default_timeline.epochs):
        for stage in STAGES:
            start = default_timeline.stage_start(epoch, stage)
            end = default_timeline.stage_end(epoch, stage)
            position = default_timeline.locate((start + end) / 2)
            assert position.phase == "epoch"
            assert position.epoch == epoch
            assert position.stage == stage
            assert position.progress == pytest.approx(0.5)
            assert position.stage_start == pytest.approx(start, abs=TIGHT)


@pytest.mark.parametrize("timing", [{}, ODD_TIMING], ids=["default", "odd"])
def test_locate_stage_starts(default_scene, timing):
    timeline = custom_timeline(default_scene, **timing)
    for epoch in range(timeline.epochs):
        for stage in STAGES:
            position = timeline.locate(timeline.stage_start(epoch, stage))
            assert position.epoch == epoch, (epoch, stage)
            assert position.stage == stage, (epoch, stage)
            assert position.progress == 0.0, (epoch, stage)


@pytest.mark.parametrize("timing", [{}, ODD_TIMING], ids=["default", "odd"])
def test_locate_near_boundaries(default_scene, timing):
    timeline = custom_timeline(default_scene, **timing)
    boundaries = [timeline.stage_start(e, s) for e in range(timeline.epochs) for s in STAGES]
    boundaries.append(timeline.outro_start)
    for boundary in boundaries:
        # Up to BOUNDARY_SNAP_S before a boundary counts as on it, so step back further.
        before = timeline.locate(boundary - 10 * BOUNDARY_SNAP_S)
        after = timeline.locate(nudge(boundary, 4))
        assert 0.0 <= before.progress <= 1.0, boundary
        assert 0.0 <= after.progress <= 1.0, boundary
        where_before = (before.phase, before.epoch, before.stage)
        where_after = (after.phase, after.epoch, after.stage)
        assert where_after != where_before, boundary


def test_frame_at_epoch_start_shows_new_epoch(default_timeline):
    # 474 / 60 and 1.5 + 2 * 3.2 round to neighbouring floats; the frame must show epoch 3.
    for epoch in range(default_timeline.epochs):
        frame = round(default_timeline.epoch_start(epoch) * 60)
        position = default_timeline.locate(frame / 60)
        assert position.epoch == epoch, frame
        assert position.stage == "tick", frame


def test_locate_sweep_monotonic(default_timeline):
    order = {stage: i for i, stage in enumerate(STAGES)}
    previous = (-1, -1)
    for t in np.linspace(default_timeline.intro, default_timeline.outro_start, 5001)[:-1]:
        position = default_timeline.locate(float(t))
        key = (position.epoch, order[position.stage])
        assert key >= previous, f"t = {t}"
        previous = key


def test_locate_sweep_visits_every_stage(default_timeline):
    seen = set()
    for t in np.linspace(default_timeline.intro, default_timeline.outro_start, 5001)[:-1]:
        position = default_timeline.locate(float(t))
        seen.add((position.epoch, position.stage))
    assert len(seen) == default_timeline.epochs * len(STAGES)


def test_locate_intro(default_timeline):
    position = default_timeline.locate(default_timeline.intro / 2)
    assert position.phase == "intro"
    assert position.epoch == -1
    assert position.stage is None
    assert position.progress == pytest.approx(0.5)


def test_locate_before_zero(default_timeline):
    position = default_timeline.locate(-1.0)
    assert position.phase == "intro"
    assert position.progress == 0.0


def test_locate_outro(default_timeline):
    t = default_timeline.outro_start + default_timeline.outro / 4
    position = default_timeline.locate(t)
    assert position.phase == "outro"
    assert position.epoch == default_timeline.epochs - 1
    assert position.stage is None
    assert position.progress == pytest.approx(0.25)


def test_locate_after_end(default_timeline):
    position = default_timeline.locate(default_timeline.duration + 10.0)
    assert position.phase == "outro"
    assert position.progress == 1.0


def test_locate_every_frame(default_timeline):
    frames = default_timeline.frame_count(60)
    phases = [default_timeline.locate(n / 60).phase for n in range(frames)]
    assert phases[0] == "intro"
    assert phases[-1] == "outro"
    assert phases.count("intro") == 90


# Tracer


def test_tracer_step_at_epoch_end(default_scene, default_timeline):
    steps = default_scene.steps_per_epoch
    for k in range(1, default_timeline.epochs + 1):
        end = default_timeline.stage_end(k - 1, "tracer")
        assert default_timeline.tracer_step(end) == pytest.approx(steps * k, abs=TIGHT), k


def test_tracer_step_just_before_epoch_end(default_timeline):
    for k in range(1, default_timeline.epochs + 1):
        end = default_timeline.stage_end(k - 1, "tracer")
        assert default_timeline.tracer_step(end - 1e-3) < 3 * k, k


def test_tracer_holds_until_next_tracer(default_timeline):
    for k in range(1, default_timeline.epochs):
        hold_start = default_timeline.stage_end(k - 1, "tracer")
        hold_end = default_timeline.stage_start(k, "tracer")
        for t in np.linspace(hold_start, hold_end, 23):
            assert default_timeline.tracer_step(float(t)) == pytest.approx(3 * k, abs=TIGHT)


def test_tracer_zero_before_first_tracer(default_timeline):
    for t in np.linspace(0.0, default_timeline.stage_start(0, "tracer"), 31):
        assert default_timeline.tracer_step(float(t)) == 0.0


def test_tracer_last_step_in_outro(default_scene, default_timeline):
    last = len(default_scene.loss) - 1
    for t in np.linspace(default_timeline.outro_start, default_timeline.duration, 7):
        assert default_timeline.tracer_step(float(t)) == last


def test_tracer_step_monotonic(default_timeline):
    times = np.linspace(0.0, default_timeline.duration, 7001)
    steps = np.array([default_timeline.tracer_step(float(t)) for t in times])
    assert np.all(np.diff(steps) >= 0.0)


def test_tracer_moves_one_step_at_a_time(default_timeline):
    start = default_timeline.stage_start(4, "tracer")
    length = default_timeline.scene.timing["tracer"]
    for j in range(3):
        middle = start + (j + 0.5) * length / 3
        assert default_timeline.tracer_step(middle) == pytest.approx(12 + j + 0.5), j


@pytest.mark.parametrize("steps_per_epoch", [1, 5])
def test_tracer_other_steps_per_epoch(default_scene, steps_per_epoch):
    timeline = custom_timeline(default_scene, steps_per_epoch=steps_per_epoch)
    for k in range(1, timeline.epochs + 1):
        end = timeline.stage_end(k - 1, "tracer")
        step = timeline.tracer_step(end)
        assert step == pytest.approx(steps_per_epoch * k, abs=TIGHT), k


def test_tracer_odd_timing_epoch_end(default_scene):
    timeline = custom_timeline(default_scene, **ODD_TIMING)
    for k in range(1, timeline.epochs + 1):
        end = timeline.stage_end(k - 1, "tracer")
        assert timeline.tracer_step(end) == pytest.approx(3 * k, abs=TIGHT), k


# Duration and frames


def test_epoch_duration_sum(default_scene, default_timeline):
    expected = sum(default_scene.timing[stage] for stage in STAGES)
    assert default_timeline.epoch_duration == pytest.approx(expected)


def test_duration_formula(default_scene, default_timeline):
    expected = (default_scene.timing["intro"]
                + default_scene.epochs * default_timeline.epoch_duration
                + default_scene.timing["outro"])
    assert default_timeline.duration == pytest.approx(expected)


def test_duration_matches_scene(default_scene, default_timeline):
    assert default_timeline.duration == pytest.approx(default_scene.duration)


def test_duration_default_about_35s(default_timeline):
    assert 34.0 <= default_timeline.duration <= 36.5
    assert default_timeline.duration == pytest.approx(35.5)


def test_frame_count_60fps(default_timeline):
    assert default_timeline.frame_count(60) == 2130


def test_frame_count_covers_duration(default_timeline):
    for fps in (1, 24, 30, 60, 240):
        count = default_timeline.frame_count(fps)
        assert (count - 1) / fps < default_timeline.duration, fps
        assert count / fps >= default_timeline.duration - 1e-9, fps


def test_frame_count_not_rounded_up(default_scene):
    timeline = custom_timeline(default_scene, intro=1.0, outro=1.0, tick=0.1, tokens=0.1,
                               forward=0.1, gibberish=0.1, partial=0.1, aligned=0.1,
                               backprop=0.1, tracer=0.1)
    assert timeline.duration == pytest.approx(10.0)
    assert timeline.frame_count(60) == 600


# Events


def test_events_sorted(default_timeline):
    times = [event.t for event in default_timeline.events()]
    assert times == sorted(times)


def test_events_start_and_end(default_timeline):
    events = default_timeline.events()
    assert events[0].kind == "intro"
    assert events[0].t == 0.0
    assert events[-1].kind == "outro"
    assert events[-1].t == default_timeline.outro_start


def test_events_one_chip_per_token(default_scene, default_timeline):
    events = default_timeline.events()
    for epoch, example in enumerate(default_scene.examples):
        chips = [event for event in events if event.kind == "chip" and event.epoch == epoch]
        assert len(chips) == len(example.tokens), epoch
        assert [chip.index for chip in chips] == list(range(len(example.tokens))), epoch


def test_chip_events_in_tokens_stage(default_timeline):
    for event in default_timeline.events():
        if event.kind != "chip":
            continue
        assert event.t >= default_timeline.stage_start(event.epoch, "tokens")
        assert event.t < default_timeline.stage_end(event.epoch, "tokens")
        assert event.duration == CHIP_POP_S


def test_chip_events_strictly_increasing(default_timeline):
    for epoch in range(default_timeline.epochs):
        times = default_timeline.chip_times(epoch)
        assert all(a < b for a, b in zip(times, times[1:])), epoch


def test_chip_events_match_chip_times(default_timeline):
    events = default_timeline.events()
    for epoch in range(default_timeline.epochs):
        chips = [event.t for event in events if event.kind == "chip" and event.epoch == epoch]
        assert chips == default_timeline.chip_times(epoch)


def test_step_events_count(default_scene, default_timeline):
    steps = [event for event in default_timeline.events() if event.kind == "step"]
    assert [event.index for event in steps] == list(range(1, len(default_scene.loss)))


def test_step_events_when_tracer_lands(default_timeline):
    for event in default_timeline.events():
        if event.kind != "step":
            continue
        step = default_timeline.tracer_step(event.t)
        assert step == pytest.approx(event.index, abs=1e-6), event
        assert default_timeline.tracer_step(event.t - 0.02) < event.index, event


def test_step_events_in_own_epoch(default_scene, default_timeline):
    for event in default_timeline.events():
        if event.kind != "step":
            continue
        assert (event.index - 1) // default_scene.steps_per_epoch == event.epoch
        assert event.t > default_timeline.stage_start(event.epoch, "tracer")
        assert event.t <= default_timeline.stage_end(event.epoch, "tracer") + TIGHT


def test_epoch_events_at_epoch_start(default_timeline):
    epochs = [event for event in default_timeline.events() if event.kind == "epoch"]
    assert [event.index for event in epochs] == list(range(default_timeline.epochs))
    for event in epochs:
        assert event.t == default_timeline.epoch_start(event.epoch)


def test_stage_events_at_stage_start(default_timeline):
    kinds = {"gibberish": "gibberish", "partial": "partial", "aligned": "aligned",
             "wave": "backprop", "region_on": "forward"}
    for event in default_timeline.events():
        if event.kind in kinds:
            start = default_timeline.stage_start(event.epoch, kinds[event.kind])
            assert event.t == start, event
            assert default_timeline.locate(event.t).stage == kinds[event.kind], event


def test_region_events_name_region(default_scene, default_timeline):
    for event in default_timeline.events():
        if event.kind in ("region_on", "region_off"):
            assert event.index == default_scene.examples[event.epoch].region, event
