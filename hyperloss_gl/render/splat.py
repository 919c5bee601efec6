"""Splat a dense cloud into an image on the CPU, for software rasterisers.

llvmpipe spends about a microsecond on every point or quad it sets up, so
100,000 vectors cost about 90 ms as GL primitives. Projecting them with NumPy
and adding each one's light bilinearly into its four nearest pixels costs a
few milliseconds, and one textured quad then draws the result.
"""

from __future__ import annotations

import math

import numpy as np

from hyperloss_gl.scene import cloud as cloud_math
from hyperloss_gl.scene import layout
from hyperloss_gl.scene.state import CloudState


class CloudSplatter:
    """Accumulates vector light into an RGB image covering the cloud band."""

    def __init__(self, scale: float):
        self.scale = scale
        self.width = max(int(math.ceil(layout.CLOUD.w * scale)) + 2, 2)
        self.height = max(int(math.ceil(layout.CLOUD.h * scale)) + 2, 2)

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """Extent of the image in design pixels: x, y, width, height."""
        return (layout.CLOUD.x - 1 / self.scale, layout.CLOUD.y - 1 / self.scale,
                self.width / self.scale, self.height / self.scale)

    def splat(self, cloud: CloudState, gain: float) -> np.ndarray:
        """Return the (height, width, 3) float32 light image of ``cloud``'s vectors."""
        view_projection = cloud.projection @ cloud.view
        screen, w = cloud_math.project(cloud.positions, view_projection)
        depth = cloud_math.CAMERA_DISTANCE / np.maximum(w, 0.1)
        light = cloud.colors * (cloud.brightness * gain
                                * np.clip(depth * depth, 0.35, 1.4))[:, None]
        x = (screen[:, 0] - layout.CLOUD.x) * self.scale + 0.5
        y = (screen[:, 1] - layout.CLOUD.y) * self.scale + 0.5
        x0 = np.floor(x)
        y0 = np.floor(y)
        fx = (x - x0).astype(np.float32)
        fy = (y - y0).astype(np.float32)
        ix = x0.astype(np.int64)
        iy = y0.astype(np.int64)
        corners = []
        weights = []
        for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                               (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            cx, cy = ix + dx, iy + dy
            inside = (cx >= 0) & (cx < self.width) & (cy >= 0) & (cy < self.height)
            corners.append((cy * self.width + cx)[inside])
            weights.append(weight[inside, None] * light[inside])
        index = np.concatenate(corners)
        weighted = np.concatenate(weights)
        size = self.height * self.width
        image = np.empty((size, 3), np.float32)
        for channel in range(3):
            image[:, channel] = np.bincount(index, weights=weighted[:, channel], minlength=size)
        return image.reshape(self.height, self.width, 3)
