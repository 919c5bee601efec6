"""Hyperloss: an OpenGL renderer of "Training a Language Model" for vertical video.

The package splits into layers that only talk through the frame state:

- ``scene`` (pure Python and NumPy) loads and validates a scene description and
  turns it and a time ``t`` in seconds into a :class:`~hyperloss_gl.scene.FrameState`.
- ``render`` (OpenGL through moderngl) draws a frame state into a framebuffer:
  scene pass, bloom, composite.
- ``record`` and ``preview`` are drivers. They only choose ``t`` and decide where
  the pixels go: an FFmpeg pipe or a window.
- ``cli`` parses options and configures logging; no other module does.
"""

import logging

__version__ = "0.1.0"

log = logging.getLogger("hyperloss_gl")
