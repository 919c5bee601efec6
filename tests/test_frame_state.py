"""The frame state: ``Animator.state_at`` as a pure function of time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import scene_dict

from hyperloss_gl.scene import STAGES, Animator, load_scene
from hyperloss_gl.scene import layout
from hyperloss_gl.scene.garble import garble_mask
from hyperloss_gl.scene.state import WAVE_REACH


def assert_same(a, b, path: str = "state") -> None:
    """Assert that two frame states (or parts of them) are equal, field by field."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for field in dataclasses.fields(a):
            assert_same(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype, path
        assert a.shape == b.shape, path
        assert np.array_equal(a, b), path
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def stage_time(animator: Animator, epoch: int, stage: str, progress: float) -> float:
    timeline = animator.timeline
    start = timeline.stage_start(epoch, stage)
    return start + progress * (timeline.stage_end(epoch, stage) - start)


def garbled_share(output) -> float:
    """Return the share of the non-space characters of an output row that are garbled."""
    letters = np.array([not ch.isspace() for ch in output.text], bool)
    return float(output.garbled[letters].mean())


# No hidden state


def probe_times(animator: Animator) -> list[float]:
    times = [0.2, animator.timeline.duration - 0.3]
    for epoch in (0, 4, 9):
        times += [stage_time(animator, epoch, stage, 0.37) for stage in STAGES]
    return times


def test_state_repeatable(default_animator):
    for t in probe_times(default_animator):
        first = default_animator.state_at(t)
        assert_same(first, default_animator.state_at(t), f"t={t}")


def test_state_same_after_other_times(default_animator):
    times = probe_times(default_animator)
    before = [default_animator.state_at(t) for t in times]
    for t in np.linspace(0.0, default_animator.timeline.duration, 97):
        default_animator.state_at(float(t))
    for t, state in zip(times, before):
        assert_same(state, default_animator.state_at(t), f"t={t}")


def test_state_seek_backwards(default_scene):
    played = Animator(default_scene)
    for n in range(0, played.timeline.frame_count(60), 7):
        played.state_at(n / 60)
    fresh = Animator(default_scene)
    for t in reversed(probe_times(fresh)):
        assert_same(fresh.state_at(t), played.state_at(t), f"t={t}")


def test_state_independent_of_animator(default_scene):
    first, second = Animator(default_scene), Animator(default_scene)
    t = stage_time(first, 2, "gibberish", 0.5)
    assert_same(first.state_at(t), second.state_at(t))


def test_state_clamps_time(default_animator):
    assert_same(default_animator.state_at(-3.0), default_animator.state_at(0.0))
    end = default_animator.timeline.duration
    assert default_animator.state_at(end + 5.0).t == end


# Output row


def test_output_final_at_aligned_end(default_scene, default_animator):
    for epoch, example in enumerate(default_scene.examples):
        state = default_animator.state_at(default_animator.timeline.stage_end(epoch, "aligned"))
        assert state.output.text == example.output, epoch
        assert not state.output.garbled.any(), epoch


def test_output_garbled_before_aligned(default_scene, default_animator):
    for epoch, example in enumerate(default_scene.examples):
        for stage in ("gibberish", "partial"):
            output = default_animator.state_at(stage_time(default_animator, epoch, stage,
                                                          0.5)).output
            assert output.garbled.any(), (epoch, stage)
            assert output.text != example.output, (epoch, stage)


def test_output_keeps_length_and_spaces(default_scene, default_animator):
    for epoch, example in enumerate(default_scene.examples):
        output = default_animator.state_at(stage_time(default_animator, epoch, "gibberish",
                                                      0.5)).output
        assert len(output.text) == len(example.output), epoch
        spaces = [i for i, ch in enumerate(example.output) if ch == " "]
        assert all(output.text[i] == " " for i in spaces), epoch


def test_partial_garbles_fewer_overall(default_scene, default_animator):
    # Summed over epochs only: the partial mask is drawn apart from the gibberish mask, so a
    # short output can have as many garbled characters in both (epoch 10 of the default scene).
    totals = {"gibberish": 0, "partial": 0}
    for epoch in range(default_scene.epochs):
        for stage in totals:
            output = default_animator.state_at(stage_time(default_animator, epoch, stage,
                                                          0.5)).output
            totals[stage] += int(output.garbled.sum())
    assert totals["partial"] < totals["gibberish"]


def test_output_empty_before_gibberish(default_animator):
    for stage in ("tokens", "forward"):
        output = default_animator.state_at(stage_time(default_animator, 3, stage, 0.5)).output
        assert output.text == "", stage


def test_gibberish_epoch1_worse_than_epoch10(default_animator):
    first = default_animator.state_at(stage_time(default_animator, 0, "gibberish", 0.5))
    last = default_animator.state_at(stage_time(default_animator, 9, "gibberish", 0.5))
    assert garbled_share(first.output) > garbled_share(last.output)


def test_garble_mask_follows_severity():
    text = "the quick brown fox jumps over the lazy dog " * 20
    for stage in ("gibberish", "partial"):
        for seed in range(5):
            high = garble_mask(text, stage, 1.0, seed, 0).sum()
            low = garble_mask(text, stage, 0.125, seed, 0).sum()
            assert high > low, (stage, seed)


def test_garble_mask_partial_keeps_word():
    text = "every word here"
    for seed in range(50):
        mask = garble_mask(text, "partial", 1.0, seed, 0)
        assert not mask[[i for i, ch in enumerate(text) if ch != " "]].all(), seed


# Chips


def visible_chips(state) -> list[str]:
    """Return the texts of the chips drawn at all (alpha above 0)."""
    return [chip.text for chip in state.chips if chip.alpha > 0.0]


def test_chips_appear_one_by_one(default_scene, default_animator):
    for epoch, example in enumerate(default_scene.examples):
        times = default_animator.timeline.chip_times(epoch)
        for i, start in enumerate(times):
            visible = visible_chips(default_animator.state_at(start + 1e-3))
            assert visible == list(example.tokens[:i + 1]), (epoch, i)


def test_chips_none_before_first(default_animator):
    first = default_animator.timeline.chip_times(0)[0]
    assert visible_chips(default_animator.state_at(first - 1e-3)) == []


def test_chip_count_nondecreasing(default_animator):
    start = default_animator.timeline.stage_start(5, "tokens")
    end = default_animator.timeline.stage_start(5, "backprop")
    counts = [len(visible_chips(default_animator.state_at(float(t))))
              for t in np.linspace(start, end, 60)]
    assert counts == sorted(counts)
    assert counts[-1] == len(default_animator.scene.examples[5].tokens)


def test_chip_pop_settles(default_animator):
    t = default_animator.timeline.stage_end(2, "tokens") + 0.3
    for chip in default_animator.state_at(t).chips:
        assert chip.scale == pytest.approx(1.0)
        assert chip.alpha == pytest.approx(1.0)


# Regions


def test_activation_only_active_region(default_scene, default_animator):
    for epoch, example in enumerate(default_scene.examples):
        for stage in STAGES[STAGES.index("forward"):]:
            activation = default_animator.state_at(stage_time(default_animator, epoch, stage,
                                                              0.5)).cloud.activation
            assert activation[example.region] > 0.0, (epoch, stage)
            others = np.delete(activation, example.region)
            assert np.all(others == 0.0), (epoch, stage)


def test_activation_zero_before_forward(default_scene, default_animator):
    for epoch in range(default_scene.epochs):
        for stage in ("tick", "tokens"):
            activation = default_animator.state_at(stage_time(default_animator, epoch, stage,
                                                              0.5)).cloud.activation
            assert np.all(activation == 0.0), (epoch, stage)


def test_activation_zero_in_intro_outro(default_animator):
    assert np.all(default_animator.state_at(0.5).cloud.activation == 0.0)
    outro = default_animator.timeline.outro_start + 0.5
    assert np.all(default_animator.state_at(outro).cloud.activation == 0.0)


def test_order_rises_during_backprop(default_scene, default_animator):
    for epoch, example in enumerate(default_scene.examples):
        orders = [default_animator.state_at(stage_time(default_animator, epoch, "backprop", p))
                  .cloud.order[example.region] for p in (0.0, 0.5, 1.0)]
        assert orders[0] < orders[1], epoch
        assert orders[1] < orders[2], epoch


def test_order_first_training_gains_most(default_scene, default_animator):
    # Only a region's first training: order saturates, so a later training of a region can
    # move it less than the side effect moves a region never trained (epoch 9, default scene).
    trained = set()
    for epoch, example in enumerate(default_scene.examples):
        if example.region in trained:
            continue
        trained.add(example.region)
        start = default_animator.state_at(stage_time(default_animator, epoch, "backprop", 0.0))
        end = default_animator.state_at(stage_time(default_animator, epoch, "backprop", 1.0))
        gain = end.cloud.order - start.cloud.order
        assert gain.argmax() == example.region, epoch


def test_order_steady_outside_backprop(default_animator):
    for stage in ("tick", "forward", "aligned", "tracer"):
        early = default_animator.state_at(stage_time(default_animator, 4, stage, 0.1))
        late = default_animator.state_at(stage_time(default_animator, 4, stage, 0.9))
        assert np.array_equal(early.cloud.order, late.cloud.order), stage


def test_order_zero_in_intro(default_animator):
    assert np.all(default_animator.state_at(0.5).cloud.order == 0.0)


def test_vectors_approach_ordered(default_scene, default_animator):
    model = default_animator.cloud
    region = default_scene.examples[0].region
    rows = model.region == region
    distances = []
    for p in (0.0, 1.0):
        positions = default_animator.state_at(stage_time(default_animator, 0, "backprop", p))
        offset = positions.cloud.positions[rows] - model.ordered[rows]
        distances.append(float(np.linalg.norm(offset, axis=1).mean()))
    assert distances[1] < distances[0]


def test_cloud_arrays_one_row_per_vector(default_scene, default_animator):
    cloud = default_animator.state_at(10.0).cloud
    count = default_scene.vector_count
    assert cloud.positions.shape == (count, 3)
    assert cloud.directions.shape == (count, 3)
    assert cloud.colors.shape == (count, 3)
    assert cloud.brightness.shape == (count,)
    assert cloud.region_screen.shape == (len(default_scene.regions), 3)


# Loss panel


def test_curve_ends_at_tracer(default_animator):
    for t in np.linspace(0.0, default_animator.timeline.duration, 41):
        loss = default_animator.state_at(float(t)).loss
        assert tuple(loss.curve[-1]) == pytest.approx(loss.tracer), t


def test_curve_follows_loss_points(default_animator):
    t = stage_time(default_animator, 6, "tracer", 0.5)
    loss = default_animator.state_at(t).loss
    whole = int(loss.step)
    assert np.array_equal(loss.curve[:-1], default_animator.loss_points[:whole + 1])


def test_curve_complete_in_outro(default_scene, default_animator):
    loss = default_animator.state_at(default_animator.timeline.duration).loss
    assert loss.step == len(default_scene.loss) - 1
    assert len(loss.curve) >= len(default_scene.loss)


def test_loss_value_at_epoch_end(default_scene, default_animator):
    for k in range(1, default_scene.epochs + 1):
        end = default_animator.timeline.stage_end(k - 1, "tracer")
        loss = default_animator.state_at(end).loss
        assert loss.step == pytest.approx(3 * k, abs=1e-9), k
        assert loss.value == pytest.approx(default_scene.loss[3 * k], abs=1e-9), k


def test_loss_value_at_start(default_scene, default_animator):
    assert default_animator.state_at(0.0).loss.value == default_scene.loss[0]


def test_tracer_inside_loss_plot(default_animator):
    for t in np.linspace(0.0, default_animator.timeline.duration, 41):
        x, y = default_animator.state_at(float(t)).loss.tracer
        assert layout.LOSS_PLOT.x <= x <= layout.LOSS_PLOT.right, t
        assert layout.LOSS_PLOT.y <= y <= layout.LOSS_PLOT.bottom, t


# Backprop wave


def test_wave_radius_grows(default_scene, default_animator):
    for epoch in range(default_scene.epochs):
        radii = [default_animator.state_at(stage_time(default_animator, epoch, "backprop", p))
                 .wave.radius for p in np.linspace(0.02, 0.98, 12)]
        assert all(a < b for a, b in zip(radii, radii[1:])), epoch


def test_wave_absent_outside_backprop(default_animator):
    for stage in ("aligned", "tracer"):
        wave = default_animator.state_at(stage_time(default_animator, 2, stage, 0.5)).wave
        assert wave.radius == 0.0, stage
        assert wave.strength == 0.0, stage


def test_wave_from_output_row_through_cloud(default_animator):
    wave = default_animator.state_at(stage_time(default_animator, 0, "backprop", 0.999)).wave
    x, y = wave.center
    assert layout.OUTPUT_ROW.y <= y <= layout.OUTPUT_ROW.bottom
    assert y - wave.radius < layout.CLOUD.y
    assert wave.radius == pytest.approx(WAVE_REACH, rel=1e-3)


def test_wave_color_of_region(default_scene, default_animator):
    wave = default_animator.state_at(stage_time(default_animator, 3, "backprop", 0.5)).wave
    region = default_scene.regions[default_scene.examples[3].region]
    assert wave.color == region.color


# Counter


def test_counter_text_per_epoch(default_animator):
    for epoch in range(10):
        state = default_animator.state_at(stage_time(default_animator, epoch, "tokens", 0.5))
        assert state.counter_text == f"Epoch {epoch + 1}/10"


def test_counter_hidden_in_intro(default_animator):
    assert default_animator.state_at(0.5).counter_alpha == 0.0


# Unusual scenes


def test_state_region_without_vectors(write_scene):
    data = scene_dict()
    data["regions"][0]["vectors"] = 0
    animator = Animator(load_scene(write_scene(data)))
    t = stage_time(animator, 0, "backprop", 0.5)
    state = animator.state_at(t)
    assert state.cloud.positions.shape == (10, 3)
    assert state.cloud.activation[0] > 0.0


def test_state_no_vectors_at_all(write_scene):
    data = scene_dict(vectors=0)
    animator = Animator(load_scene(write_scene(data)))
    state = animator.state_at(stage_time(animator, 1, "backprop", 0.5))
    assert state.cloud.positions.shape == (0, 3)
    assert state.wave.radius > 0.0


def test_state_one_step_per_epoch(write_scene):
    scene = load_scene(write_scene(scene_dict(examples=3, steps_per_epoch=1)))
    animator = Animator(scene)
    for k in range(1, 4):
        loss = animator.state_at(animator.timeline.stage_end(k - 1, "tracer")).loss
        assert loss.value == pytest.approx(scene.loss[k]), k
