"""OpenGL side: shader loading, GL resources and the passes that draw a frame state.

``context`` creates the OpenGL context, ``shaders`` loads GLSL files,
``glyphs`` builds the text atlas (no OpenGL), ``batches`` turns a frame state
into instance arrays, and ``renderer`` runs the scene, bloom and composite
passes. ``splat`` draws dense clouds on software rasterisers, ``yuv`` picks
the recorder's readback format, and ``overlay`` draws the preview's HUD.
"""
