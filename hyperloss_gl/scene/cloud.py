"""The regional cloud of weight vectors: fixed per-vector data and the camera.

Each vector has a scattered start (random position and direction) and an
ordered target (a tidy disc of points whose directions agree with the
region's concept direction). Training moves a region from one to the other;
``order`` in 0..1 is how far it has moved. The camera math is plain NumPy so that the
scene can find where a vector lands on screen without OpenGL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hyperloss_gl.scene.description import Scene
from hyperloss_gl.scene.layout import CLOUD

FOV_Y_DEG = 30.0
CAMERA_DISTANCE = 4.6
SWAY_YAW = 0.28
"""Amplitude of the camera's side-to-side sway, in radians."""
SWAY_PITCH = 0.10
SWAY_PERIOD_S = (9.0, 13.0)
"""Periods of the yaw and pitch sway in seconds; unequal so the path never repeats."""


@dataclass(frozen=True)
class CloudModel:
    """Per-vector data that never changes over the video. Arrays have one row per vector."""

    region: np.ndarray         # (n,) int32
    scatter: np.ndarray        # (n, 3) float32: start positions
    ordered: np.ndarray        # (n, 3) float32: positions after full training
    scatter_dir: np.ndarray    # (n, 3) float32: unit start directions
    ordered_dir: np.ndarray    # (n, 3) float32: unit directions after full training
    phase: np.ndarray          # (n, 3) float32: jitter phases in radians
    base_color: np.ndarray     # (n, 3) float32: linear RGB of the region
    region_centers: np.ndarray  # (r, 3) float32
    region_radii: np.ndarray   # (r,) float32
    offsets: np.ndarray        # (r + 1,) int: region i owns rows offsets[i]:offsets[i + 1]
    move: np.ndarray           # (n, 3) float32: ordered - scatter
    turn: np.ndarray           # (n, 3) float32: ordered_dir - scatter_dir


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def build_cloud(scene: Scene) -> CloudModel:
    """Place every vector of the scene, seeded by ``scene.seed``."""
    rng = np.random.default_rng([scene.seed, 0xC10D])
    parts = {key: [] for key in ("region", "scatter", "ordered", "sdir", "odir", "color")}
    centers, radii = [], []
    for index, region in enumerate(scene.regions):
        n = region.vectors
        center = np.array([region.position[0], region.position[1], 0.0], np.float32)
        radius = region.radius
        centers.append(center)
        radii.append(radius)
        scatter = center + rng.normal(0.0, radius * 0.5, (n, 3)) * np.array([1.0, 1.0, 0.8])
        # Ordered: a sunflower disc tilted a little towards the camera.
        k = np.arange(n) + 0.5
        r = radius * 0.78 * np.sqrt(k / max(n, 1))
        angle = k * math.pi * (3.0 - math.sqrt(5.0))
        ordered = center + np.stack([r * np.cos(angle), r * np.sin(angle) * 0.9,
                                     0.12 * r * np.sin(angle * 0.5)], axis=1)
        concept = _unit(np.array([math.cos(index * 2.4 + 0.6), 0.9 + 0.3 * math.sin(index),
                                  0.35 * math.cos(index * 1.3)]))
        parts["region"].append(np.full(n, index, np.int32))
        parts["scatter"].append(scatter)
        parts["ordered"].append(ordered)
        parts["sdir"].append(_unit(rng.normal(size=(n, 3))))
        parts["odir"].append(_unit(concept + rng.normal(0.0, 0.06, (n, 3))))
        parts["color"].append(np.tile(np.array(region.color, np.float32), (n, 1)))
    count = scene.vector_count

    def stack(key, shape):
        arrays = [a for a in parts[key] if len(a)]
        return np.concatenate(arrays).astype(np.float32) if arrays else np.zeros(shape, np.float32)

    scatter, ordered = stack("scatter", (0, 3)), stack("ordered", (0, 3))
    scatter_dir, ordered_dir = stack("sdir", (0, 3)), stack("odir", (0, 3))
    return CloudModel(
        region=(np.concatenate(parts["region"]) if count else np.zeros(0, np.int32)),
        scatter=scatter, ordered=ordered, scatter_dir=scatter_dir, ordered_dir=ordered_dir,
        phase=rng.uniform(0.0, 2.0 * math.pi, (count, 3)).astype(np.float32),
        base_color=stack("color", (0, 3)),
        region_centers=np.array(centers, np.float32).reshape(-1, 3),
        region_radii=np.array(radii, np.float32),
        offsets=np.concatenate([[0], np.cumsum([r.vectors for r in scene.regions])]),
        move=ordered - scatter, turn=ordered_dir - scatter_dir)


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """Return an OpenGL perspective matrix (row-major NumPy, column vectors)."""
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2.0)
    m = np.zeros((4, 4), np.float32)
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def camera_view(t: float) -> np.ndarray:
    """Return the view matrix of the swaying camera at time ``t`` (row-major, column vectors)."""
    yaw = SWAY_YAW * math.sin(2.0 * math.pi * t / SWAY_PERIOD_S[0])
    pitch = SWAY_PITCH * math.sin(2.0 * math.pi * t / SWAY_PERIOD_S[1] + 1.0)
    eye = CAMERA_DISTANCE * np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch),
                                      math.cos(yaw) * math.cos(pitch)])
    forward = _unit(-eye)
    side = _unit(np.cross(forward, [0.0, 1.0, 0.0]))
    up = np.cross(side, forward)
    view = np.identity(4, np.float32)
    view[0, :3], view[1, :3], view[2, :3] = side, up, -forward
    view[:3, 3] = -view[:3, :3] @ eye
    return view


def camera_projection() -> np.ndarray:
    """Return the projection matrix for the cloud's band."""
    return perspective(FOV_Y_DEG, CLOUD.w / CLOUD.h, 0.5, 20.0)


def project(points: np.ndarray, view_projection: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project cloud points to design pixels inside the cloud band.

    Returns the (n, 2) pixel positions and the (n,) clip-space ``w`` (the
    distance along the view axis), which sizes the sprites.
    """
    rows = view_projection[[0, 1, 3]].astype(points.dtype)
    # One product gives x, y and w. The right operand is made contiguous because
    # NumPy took 40 times longer with a transposed view for 100,000 points.
    clip = points @ np.ascontiguousarray(rows[:, :3].T)
    clip += rows[:, 3]
    w = clip[:, 2]
    x = CLOUD.x + (clip[:, 0] / w * 0.5 + 0.5) * CLOUD.w
    y = CLOUD.y + (0.5 - clip[:, 1] / w * 0.5) * CLOUD.h
    return np.stack([x, y], axis=1), w
