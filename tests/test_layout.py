"""Layout: text stays inside the safe zone and no two text lines overlap, at any moment."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import scene_dict
from hyperloss_gl.look import load_look
from hyperloss_gl.render.batches import BatchBuilder
from hyperloss_gl.render.glyphs import GlyphAtlas
from hyperloss_gl.render.renderer import FONT_WEIGHTS
from hyperloss_gl.resources import font_path
from hyperloss_gl.scene import Animator, layout, load_scene

STEP_S = 0.1


@pytest.fixture(scope="module")
def atlases():
    return {key: GlyphAtlas(font_path(weight)) for key, weight in FONT_WEIGHTS.items()}


def text_boxes(scene, atlases, t):
    animator = Animator(scene)
    builder = BatchBuilder(scene, load_look(), atlases)
    return builder.build(animator.state_at(t)).text_boxes


def overlaps(a, b, margin: float = 1.0) -> bool:
    return not (a[3] <= b[1] + margin or b[3] <= a[1] + margin or a[2] <= b[0] + margin
                or b[2] <= a[0] + margin)


def check_frames(scene, atlases):
    animator = Animator(scene)
    builder = BatchBuilder(scene, load_look(), atlases)
    problems = []
    for t in np.arange(0.0, animator.timeline.duration, STEP_S):
        batches = builder.build(animator.state_at(float(t)))
        boxes = batches.text_boxes
        chip_texts = {chip[0] for chip in batches.chip_boxes}
        for text, *box in boxes:
            if text in chip_texts:
                continue
            for chip, *chip_box in batches.chip_boxes:
                if overlaps(box, chip_box):
                    problems.append(f"t={t:.1f}: {text!r} overlaps the chip {chip!r}")
        for text, x0, y0, x1, y1 in boxes:
            if x0 < layout.SAFE.x - 1 or x1 > layout.SAFE.right + 1 or y0 < layout.SAFE.y - 1 \
                    or y1 > layout.SAFE.bottom + 1:
                problems.append(f"t={t:.1f}: {text!r} at {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} "
                                "leaves the safe zone")
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if overlaps(a[1:], b[1:]):
                    problems.append(f"t={t:.1f}: {a[0]!r} overlaps {b[0]!r}")
    return problems


def test_default_scene_text_fits(default_scene, atlases):
    problems = check_frames(default_scene, atlases)
    assert not problems, "\n".join(problems[:20])


def test_long_texts_wrap_or_shrink(write_scene, atlases):
    data = scene_dict(examples=2, regions=3)
    data["title"] = "Training a Surprisingly Large Language Model on Everything Ever Written"
    data["regions"][0]["name"] = "Extraordinarily Long Region Name"
    data["examples"][0]["region"] = "Extraordinarily Long Region Name"
    data["examples"][0]["input"] = ("Why do cats knock glasses off tables when their owners "
                                    "are watching them closely?")
    data["examples"][0]["output"] = ("Cats knock things over to get attention, to play, and "
                                     "because gravity experiments are fun for them.")
    scene = load_scene(write_scene(data))
    problems = check_frames(scene, atlases)
    assert not problems, "\n".join(problems[:20])


def test_text_boxes_cover_title(default_scene, atlases):
    boxes = text_boxes(default_scene, atlases, 2.0)
    titles = [box for box in boxes if box[0] == default_scene.title]
    assert len(titles) == 1
    _, x0, y0, x1, y1 = titles[0]
    assert y0 < layout.TITLE_BASELINE < y1 + 20
    assert x1 - x0 > 500
