"""Reference frames: key moments rendered on llvmpipe and compared with committed PNGs.

After an intended change to the picture, regenerate the references with

    HYPERLOSS_UPDATE_REFERENCES=1 python -m pytest tests/test_reference_frames.py

and look at every new PNG before committing it. A failing comparison writes
the rendered frame and an amplified difference image to tests/output/.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperloss_gl.look import load_look
from hyperloss_gl.record import FrameSource, RenderOptions

WIDTH, HEIGHT = 216, 384
REFERENCE_DIR = Path(__file__).parent / "reference"
OUTPUT_DIR = Path(__file__).parent / "output"
UPDATE = os.environ.get("HYPERLOSS_UPDATE_REFERENCES") == "1"
MAX_LEVEL_DIFFERENCE = 3
MAX_MEAN_DIFFERENCE = 0.5


def moment(epoch: int | None, stage: str | None, progress: float, t: float | None = None):
    return {"epoch": epoch, "stage": stage, "progress": progress, "t": t}


MOMENTS = {
    "intro-title": moment(None, None, 0.0, t=0.6),
    "intro-tracer": moment(None, None, 0.0, t=1.45),
    "epoch01-tokens": moment(0, "tokens", 0.7),
    "epoch01-gibberish": moment(0, "gibberish", 0.5),
    "epoch01-wave": moment(0, "backprop", 0.45),
    "epoch05-partial": moment(4, "partial", 0.5),
    "epoch08-tracer": moment(7, "tracer", 0.5),
    "epoch10-aligned": moment(9, "aligned", 0.9),
    "outro": moment(None, None, 0.0, t=35.0),
}


@pytest.fixture(scope="module")
def source(gl_context, default_scene):
    with gl_context:  # another test's recording may have left its own context current
        return FrameSource(default_scene, load_look(), RenderOptions(WIDTH, HEIGHT, 60),
                           ctx=gl_context)


def moment_time(source, spec) -> float:
    if spec["t"] is not None:
        return spec["t"]
    timeline = source.animator.timeline
    start = timeline.stage_start(spec["epoch"], spec["stage"])
    return start + spec["progress"] * source.animator.scene.timing[spec["stage"]]


def save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


@pytest.mark.parametrize("name", sorted(MOMENTS))
def test_reference_frame(gl, source, name):
    rendered = source.still(moment_time(source, MOMENTS[name]))[..., :3]
    reference_path = REFERENCE_DIR / f"{name}.png"
    if UPDATE:
        save(reference_path, rendered)
        pytest.skip(f"wrote {reference_path}")
    assert reference_path.exists(), (
        f"missing reference {reference_path}; set HYPERLOSS_UPDATE_REFERENCES=1 to create it")
    with Image.open(reference_path) as image:
        reference = np.asarray(image.convert("RGB"))
    difference = np.abs(rendered.astype(np.int16) - reference.astype(np.int16))
    if difference.max() > MAX_LEVEL_DIFFERENCE or difference.mean() > MAX_MEAN_DIFFERENCE:
        save(OUTPUT_DIR / f"{name}-rendered.png", rendered)
        save(OUTPUT_DIR / f"{name}-diff.png", np.clip(difference * 16, 0, 255).astype(np.uint8))
    assert difference.max() <= MAX_LEVEL_DIFFERENCE, (
        f"{name}: a pixel differs by {difference.max()} levels; see {OUTPUT_DIR}")
    assert difference.mean() <= MAX_MEAN_DIFFERENCE, (
        f"{name}: mean difference {difference.mean():.2f} levels; see {OUTPUT_DIR}")
