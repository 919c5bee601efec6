"""OpenGL side: shader loading, GL resources and the passes that draw a frame state.

``context`` creates the OpenGL context, ``shaders`` loads GLSL files,
``glyphs`` builds the text atlas (no OpenGL), ``batches`` turns a frame state
into instance arrays, and ``renderer`` runs the scene, bloom and composite
passes.
"""
