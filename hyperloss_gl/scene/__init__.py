"""The story of the video as a pure function of time; no OpenGL here.

``description`` loads and validates a scene file, ``timeline`` lays its
epochs and stages out on the time axis, ``cloud`` places the weight vectors
and the camera, and ``state`` combines them into the :class:`FrameState` that
the renderer draws.
"""

from hyperloss_gl.scene.description import STAGES, Scene, load_scene
from hyperloss_gl.scene.state import Animator, FrameState
from hyperloss_gl.scene.timeline import Event, Timeline

__all__ = ["STAGES", "Animator", "Event", "FrameState", "Scene", "Timeline", "load_scene"]
