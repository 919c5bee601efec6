"""The live preview: a window that plays the scene, scrubs it and reloads shaders and look.

:class:`PreviewApp` owns everything but the window: the renderer at the
preview size, the playback state, the file watcher and the overlay. It draws
into any framebuffer, so tests drive it with moderngl-window's headless window
and the command line with a pyglet window (:func:`run_preview`).

The frame comes from the same :class:`~hyperloss_gl.scene.Animator` and
:class:`~hyperloss_gl.render.renderer.Renderer` as a recording: frame ``n``
shows ``t = n / fps``. The overlay (HUD, timeline bar, guides, help, errors) is
drawn only into the window's framebuffer, after the renderer's output.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import moderngl

from hyperloss_gl import hud, log, resources
from hyperloss_gl.errors import HyperlossError
from hyperloss_gl.look import Look, load_look
from hyperloss_gl.playback import Playback, SoundSync, epoch_start_frames, first_frame_at
from hyperloss_gl.record import FrameSource, RenderOptions, shutter_times, write_png
from hyperloss_gl.render.glyphs import GlyphAtlas
from hyperloss_gl.render.overlay import OverlayPainter
from hyperloss_gl.render.renderer import Renderer
from hyperloss_gl.render.shaders import ShaderError
from hyperloss_gl.scene import Animator, Scene
from hyperloss_gl.watch import FileWatcher

DEFAULT_PREVIEW_SCALE = 0.5
CAPTURE_DIR = Path("capture")
NOTICE_S = 3.0
"""Seconds that a short message, such as the path of a saved still, stays in the HUD."""
SCRUB_TOLERANCE = 10.0
"""Extra pixels above the timeline bar, at ``ui`` 1.0, where a mouse press starts scrubbing."""


def preview_size(options: RenderOptions, scale: float) -> tuple[int, int]:
    """Return the size the preview renders at: the video size times ``scale``."""
    return max(int(round(options.width * scale)), 1), max(int(round(options.height * scale)), 1)


def load_sound(scene: Scene, look: Look):
    """Return the preview's sound player, or None when ``hyperloss_gl.audio`` is unavailable."""
    try:
        from hyperloss_gl.audio import PreviewSound
    except ImportError as error:
        log.info("preview without sound: %s", error)
        return None
    try:
        return PreviewSound(scene, look)
    except (HyperlossError, OSError) as error:
        log.warning("preview without sound: the audio output failed to open: %s", error)
        return None


class PreviewApp:
    """Playback, rendering, live reload and overlay of the preview, for any framebuffer.

    ``look_path`` is the look file to watch and reload (None: the shipped
    default). ``sound`` is an object with ``play(t)``, ``stop()`` and
    ``close()``, or None.
    """

    def __init__(self, ctx: moderngl.Context, scene: Scene, look: Look, options: RenderOptions,
                 look_path: Path | None = None, preview_scale: float = DEFAULT_PREVIEW_SCALE,
                 sound=None, capture_dir: Path = CAPTURE_DIR):
        self.ctx = ctx
        self.scene = scene
        self.look = look
        self.options = options
        self.look_path = Path(look_path) if look_path is not None else resources.DEFAULT_LOOK
        self.shader_dir = Path(options.shader_dir or resources.shader_dir())
        self.capture_dir = Path(capture_dir)
        self.animator = Animator(scene)
        self.timeline = self.animator.timeline
        self.render_size = preview_size(options, preview_scale)
        self.renderer = Renderer(ctx, scene, look, *self.render_size, self.shader_dir)
        self.still_source: FrameSource | None = None
        """Full-size renderer for the S key, on this context, made at the first still."""
        self._still_shaders_stale = False
        self.painter = OverlayPainter(ctx, GlyphAtlas(resources.font_path("SemiBold")))

        timeline = self.timeline
        # --from sets the first frame shown and, with --to, the loop range: the
        # frames that ``hyperloss --record --from --to`` would record.
        self.playback = Playback(options.fps, timeline.frame_count(options.fps),
                                 epoch_start_frames(timeline, options.fps),
                                 first_frame_at(options.start, options.fps))
        if options.end is not None:
            self.playback.loop_in = self.playback.frame
            last = min(first_frame_at(options.end, options.fps) - 1, self.playback.last_frame)
            self.playback.loop_out = max(last, self.playback.frame)
        self.sound = None
        self.sound_sync: SoundSync | None = None
        self.set_sound(sound)

        self.watcher = FileWatcher([*self.renderer.shaders.files, self.look_path])
        self.shader_error: str | None = None
        self.look_error: str | None = None
        self.render_error: str | None = None

        self.show_hud = True
        self.show_guides = False
        self.show_help = False
        self.scrubbing = False
        self._resume_after_scrub = False
        self.quit_requested = False
        self._notice: tuple[str, float] | None = None
        self._screenshot_requested = False
        self.layout: hud.OverlayLayout | None = None

        self.meter = hud.FrameRateMeter()
        self._now: float | None = None
        self._rendered_key = None
        self._generation = 0
        self.playing_frames = 0
        self.playing_seconds = 0.0
        self._warned_slow = False

    def set_sound(self, sound) -> None:
        """Use ``sound`` (``play(t)``, ``stop()``, ``close()``) from now on, or silence for None."""
        self.sound = sound
        self.sound_sync = SoundSync(sound) if sound is not None else None

    # Time ----------------------------------------------------------------------

    def update(self, now: float) -> None:
        """Advance playback to wall-clock time ``now`` (seconds) and reload changed files."""
        step = 0.0 if self._now is None else now - self._now
        self._now = now
        if self.playback.playing and not self.scrubbing:
            self.playback.advance(step)
            self.playing_seconds += min(step, 1.0)
        changed = self.watcher.poll(now)
        if changed:
            self._reload_changed(changed)
        if self.sound_sync is not None:
            self.sound_sync.update(self.playback, self.scrubbing)

    def _notify(self, text: str) -> None:
        self._notice = (text, (self._now or 0.0) + NOTICE_S)

    @property
    def notice(self) -> str | None:
        """The short message on screen now, or None."""
        if self._notice is None or (self._now or 0.0) > self._notice[1]:
            return None
        return self._notice[0]

    # Keys and mouse ------------------------------------------------------------

    def key(self, name: str, shift: bool = False) -> str | None:
        """Handle a key by its binding name (see :data:`hyperloss_gl.playback.KEY_BINDINGS`)."""
        action = self.playback.press(name, shift)
        if self.playback.notice:
            self._notify(self.playback.notice)
        handlers = {
            "toggle_hud": self._toggle_hud,
            "toggle_guides": self._toggle_guides,
            "toggle_help": self._toggle_help,
            "save_still": self._save_still_for_key,
            "save_window": self._request_screenshot,
            "reload": lambda: self.reload("R pressed", forced=True),
            "quit": self.request_quit,
        }
        handler = handlers.get(action)
        if handler is not None:
            handler()
        return action

    def _toggle_hud(self) -> None:
        self.show_hud = not self.show_hud

    def _toggle_guides(self) -> None:
        self.show_guides = not self.show_guides

    def _toggle_help(self) -> None:
        self.show_help = not self.show_help

    def _request_screenshot(self) -> None:
        self._screenshot_requested = True

    def request_quit(self) -> None:
        self.quit_requested = True

    def mouse_press(self, x: float, y: float) -> None:
        """Start scrubbing when the press, in framebuffer pixels, is on the timeline bar."""
        if self.layout is None or not self.show_hud:
            return
        bar, ui = self.layout.bar, self.layout.ui
        if not (bar.x <= x <= bar.right and bar.y - SCRUB_TOLERANCE * ui <= y <= bar.bottom):
            return
        self.scrubbing = True
        self._resume_after_scrub = self.playback.playing
        self.playback.pause()
        self.playback.seek_fraction(hud.fraction_at(x, bar, ui))

    def mouse_drag(self, x: float, y: float) -> None:
        """Move the playhead with the mouse while scrubbing, in framebuffer pixels."""
        if self.scrubbing and self.layout is not None:
            self.playback.seek_fraction(hud.fraction_at(x, self.layout.bar, self.layout.ui))

    def mouse_release(self, x: float, y: float) -> None:
        """End scrubbing, and resume playback if it was playing when scrubbing started."""
        if not self.scrubbing:
            return
        self.mouse_drag(x, y)
        self.scrubbing = False
        if self._resume_after_scrub:
            self.playback.play()

    # Reloading -----------------------------------------------------------------

    def _reload_changed(self, changed: list[Path]) -> None:
        look_file = self.look_path.resolve()
        shader_files = [path for path in changed if path != look_file]
        names = ", ".join(path.name for path in changed)
        self.reload(f"{names} changed", shaders=bool(shader_files), look=look_file in changed)

    def reload(self, reason: str, shaders: bool = True, look: bool = True,
               forced: bool = False) -> None:
        """Recompile the shaders and/or reread the look file, keeping the playback state.

        A failure keeps the last good programs or values in use and shows the
        message in the window until the next successful reload. ``forced``
        (the R key) also takes every watched file's content as reloaded, so
        that a save still settling does not reload a second time.
        """
        if shaders:
            self._reload_shaders(reason)
        if look:
            self._reload_look(reason)
        self.watcher.watch(self.renderer.shaders.files)
        if forced:
            self.watcher.accept(self.watcher.paths)

    def _reload_shaders(self, reason: str) -> None:
        log.info("reloading shaders from %s: %s", self.shader_dir, reason)
        try:
            self.renderer.reload_shaders()
        except ShaderError as error:
            self.shader_error = str(error)
            log.error("shader reload failed, the last good shaders keep drawing:\n%s", error)
            return
        self.shader_error = None
        self._still_shaders_stale = True
        self._generation += 1
        self._notify("shaders reloaded")

    def _reload_look(self, reason: str) -> None:
        log.info("reloading look file %s: %s", self.look_path, reason)
        try:
            look = load_look(self.look_path)
        except HyperlossError as error:
            self.look_error = str(error)
            log.error("look reload failed, the last good values stay in use:\n%s", error)
            return
        self.look = look
        self.look_error = None
        self.renderer.set_look(look)
        if self.still_source is not None:
            self.still_source.renderer.set_look(look)
        self._generation += 1
        self._notify("look reloaded")

    # Stills and screenshots ------------------------------------------------------

    def save_still(self) -> Path:
        """Write the current frame at the video's full size into the capture folder.

        The pixels are those of ``hyperloss --still T`` for the logged ``T``,
        drawn with the shaders and look that the preview uses now.
        """
        frame, t = self.playback.frame, self.playback.time
        pixels = self._full_size_source().still(t)
        path = self.capture_dir / f"still-{t:07.3f}s-frame{frame:05d}.png"
        write_png(path, pixels)
        log.info("saved frame %d, which 'hyperloss --still %r' renders too", frame, t)
        self._notify(f"saved {path}")
        return path

    def _save_still_for_key(self) -> None:
        try:
            self.save_still()
        except ShaderError as error:
            log.error("still not saved: the shaders on disk fail to compile:\n%s", error)
            self._notify("still not saved: the shaders fail to compile")
        except OSError as error:
            log.error("still not saved: %s", error)
            self._notify(f"still not saved: {error}")

    def _full_size_source(self) -> FrameSource:
        # The recorder's own frame source (motion blur included) on the window's
        # context, so that a still equals ``hyperloss --still``.
        if self.still_source is None:
            self.still_source = FrameSource(self.scene, self.look, self.options, ctx=self.ctx)
            self._still_shaders_stale = False
        elif self._still_shaders_stale:
            self.still_source.renderer.reload_shaders()
            self._still_shaders_stale = False
        return self.still_source

    def _save_screenshot(self, target: moderngl.Framebuffer, size: tuple[int, int]) -> Path:
        from PIL import Image, PngImagePlugin

        data = target.read(viewport=(0, 0, *size), components=3)
        image = Image.frombytes("RGB", size, data).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        info = PngImagePlugin.PngInfo()
        rect = self.layout.image
        info.add_text("hyperloss:frame", str(self.playback.frame))
        info.add_text("hyperloss:time", repr(self.playback.time))
        info.add_text("hyperloss:image_rect", f"{rect.x:g},{rect.y:g},{rect.w:g},{rect.h:g}")
        info.add_text("hyperloss:hud", "shown" if self.show_hud else "hidden")
        path = _unused_path(self.capture_dir / f"window-frame{self.playback.frame:05d}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        # A plain file name, not mkstemp, so that the umask sets the permissions.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            image.save(temporary, format="PNG", pnginfo=info)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        log.info("saved a screenshot of the window at frame %d: %s", self.playback.frame, path)
        self._notify(f"saved {path}")
        return path

    # Drawing -------------------------------------------------------------------

    def draw(self, target: moderngl.Framebuffer, size: tuple[int, int],
             pixel_ratio: float = 1.0) -> None:
        """Draw the frame and the overlay into ``target`` of ``size`` framebuffer pixels."""
        if self._now is not None:
            self.meter.tick(self._now)
            if self.playback.playing:
                self.playing_frames += 1
        # Motion blur multiplies the cost of a frame, so playback shows sharp
        # frames and a paused preview the recorder's blurred one.
        blur = 1 if self.playback.playing else self.options.motion_blur
        key = (self.playback.frame, self._generation, blur)
        if key != self._rendered_key:
            self._render_frame(blur)
            self._rendered_key = key
        self.layout = layout = hud.overlay_layout(size, self.render_size, pixel_ratio)
        target.use()
        self.ctx.viewport = (0, 0, *size)
        self.ctx.clear(*hud.LETTERBOX, 1.0, viewport=(0, 0, *size))
        self.painter.blit(target, size, self.renderer.output_texture, layout.image)
        self._draw_overlay(layout)
        self.painter.flush(target, size)
        if self._screenshot_requested:
            self._screenshot_requested = False
            try:
                self._save_screenshot(target, size)
            except OSError as error:
                log.error("window screenshot not saved: %s", error)
                self._notify(f"screenshot not saved: {error}")
        self._warn_if_slow()

    def _render_frame(self, blur: int) -> None:
        t = self.playback.time
        try:
            if blur > 1:
                times = shutter_times(t, self.playback.fps, blur)
                self.renderer.render_blurred([self.animator.state_at(x) for x in times])
            else:
                self.renderer.render(self.animator.state_at(t))
        except KeyError as error:
            # moderngl raises KeyError for a uniform that the program lacks, and
            # GLSL compilers drop every uniform that no output depends on.
            message = (f"drawing failed: the renderer sets uniform {error}, which the compiled "
                       "shaders lack because no output uses it. Use it in the shader again")
            if message != self.render_error:
                log.error("%s", message)
            self.render_error = message
            return
        self.render_error = None

    def _draw_overlay(self, layout: hud.OverlayLayout) -> None:
        painter, image, ui = self.painter, layout.image, layout.ui
        if self.show_guides:
            hud.draw_guides(painter, image, ui)
        top = image.y + 8 * ui
        if self.show_hud:
            lines = hud.status_lines(self.playback, self.timeline, self.meter, self.render_size,
                                     self.options.motion_blur)
            if self.show_guides:
                lines.append(("safe-zone guides on", hud.MUTED))
            top = hud.draw_panel_lines(painter, ui, image.x + 8 * ui, top, image.w - 16 * ui,
                                       lines) + 6 * ui
            hud.draw_timeline(painter, ui, layout.bar, self.playback)
        errors = []
        if self.shader_error:
            errors.append(("Shader error: the last good shaders keep drawing", self.shader_error))
        if self.render_error:
            errors.append(("Render error: the window shows the last frame drawn",
                           self.render_error))
        if self.look_error:
            errors.append(("Look file error: the last good values stay in use", self.look_error))
        if errors:
            hud.draw_errors(painter, image, ui, errors, top)
        notice = self.notice
        if notice and self.show_hud:
            hud.draw_notice(painter, image, ui, notice, layout.bar.y - 8 * ui)
        if self.show_help:
            hud.draw_help(painter, image, ui)

    def _warn_if_slow(self) -> None:
        if self._warned_slow or not hud.is_slow(self.meter, self.playback.fps,
                                                self.playback.playing):
            return
        self._warned_slow = True
        log.warning("the preview draws %.0f frames per second at %dx%d, below the video's %d, "
                    "so playback skips frames. A smaller --preview-scale draws faster",
                    self.meter.rate, *self.render_size, self.playback.fps)

    # Closing -------------------------------------------------------------------

    def close(self) -> None:
        """Stop and close the sound and log the frame rate reached while playing."""
        if self.sound_sync is not None:
            self.sound_sync.stop()
        if self.sound is not None:
            self.sound.close()
        if self.playing_seconds > 0:
            log.info("preview drew %d frames in %.1f s of playback (%.1f frames per second) "
                     "at %dx%d", self.playing_frames, self.playing_seconds,
                     self.playing_frames / self.playing_seconds, *self.render_size)


def _unused_path(path: Path) -> Path:
    """Return ``path``, or ``path`` with ``-2``, ``-3`` ... before the suffix if it exists."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


# The window --------------------------------------------------------------------


NO_WINDOW_HELP = ("Record without a window with --record (or write one frame with --still), "
                  "or run the preview under a virtual display: xvfb-run hyperloss")


def open_window(title: str, video_size: tuple[int, int]):
    """Open a resizable moderngl-window window sized to fit the screen.

    Raises HyperlossError with what to do instead when no window can open.
    """
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                  or os.environ.get("WAYLAND_DISPLAY")):
        raise HyperlossError(f"cannot open the preview window: DISPLAY is not set. "
                             f"{NO_WINDOW_HELP}")
    import moderngl_window

    try:
        window_class = moderngl_window.get_local_window_cls("pyglet")
        size = hud.window_size_for(video_size, _screen_size(window_class))
        window = window_class(title=title, size=size, resizable=True, vsync=True,
                              gl_version=(3, 3), aspect_ratio=None)
    # pyglet raises a different class per platform and failure (NoSuchDisplayException,
    # NoSuchConfigException, ContextException), and moderngl raises its Error for a GL
    # version below 3.3. All of them mean the same here: no window.
    except Exception as error:
        raise HyperlossError(f"cannot open the preview window ({type(error).__name__}: "
                             f"{error}). {NO_WINDOW_HELP}") from error
    log.info("preview window %dx%d, OpenGL %s on %s", *window.size,
             window.ctx.info["GL_VERSION"], window.ctx.info["GL_RENDERER"])
    return window


def _screen_size(window_class) -> tuple[int, int]:
    """Return the default screen's size, or 1920 x 1080 when the window library hides it."""
    if getattr(window_class, "name", "") != "pyglet":
        return (1920, 1080)
    import pyglet

    # pyglet 2.1 names the module ``display``. moderngl-window 3.1's pyglet backend
    # still uses the older name ``canvas``.
    module = getattr(pyglet, "display", None) or pyglet.canvas
    screen = module.get_display().get_default_screen()
    return screen.width, screen.height


def connect(window, app: PreviewApp) -> None:
    """Send the window's key, text and mouse events to ``app``."""
    keys = window.keys
    named = {keys.LEFT: "left", keys.RIGHT: "right", keys.HOME: "home", keys.END: "end",
             keys.ESCAPE: "escape", keys.TAB: "tab", keys.F12: "f12"}
    # Printable keys arrive as text, so ``[``, ``?`` and ``=`` follow the keyboard
    # layout. pyglet sends Space as " " and both Enter keys as "\r".
    text_names = {" ": "space", "\r": "enter", "\n": "enter"}
    window.exit_key = None

    def on_key(key, action, modifiers):
        if action == keys.ACTION_PRESS and key in named:
            app.key(named[key], shift=bool(modifiers.shift))

    def on_text(char: str):
        name = text_names.get(char, char)
        if name in text_names.values() or (len(name) == 1 and name.isprintable()):
            app.key(name)

    def to_buffer(x, y):
        ratio = window.pixel_ratio
        return x * ratio, y * ratio

    def on_press(x, y, button):
        if button == 1:
            app.mouse_press(*to_buffer(x, y))

    def on_drag(x, y, dx, dy):
        app.mouse_drag(*to_buffer(x, y))

    def on_release(x, y, button):
        if button == 1:
            app.mouse_release(*to_buffer(x, y))

    # moderngl-window's pyglet backend replaces pyglet's own close handler, so
    # without this the window manager's close button would do nothing.
    window.close_func = app.request_quit
    window.key_event_func = on_key
    window.unicode_char_entered_func = on_text
    window.mouse_press_event_func = on_press
    window.mouse_drag_event_func = on_drag
    window.mouse_release_event_func = on_release


def run_loop(window, app: PreviewApp, clock=time.perf_counter) -> None:
    """Update, draw and present frames until the window closes or a key sets quit_requested.

    The loop draws at most the video's frame rate, so a paused preview leaves
    the CPU idle when vsync does not block (as under Xvfb).
    """
    period = 1.0 / app.playback.fps
    while not (window.is_closing or app.quit_requested):
        started = clock()
        app.update(started)
        app.draw(window.fbo, window.buffer_size, window.pixel_ratio)
        window.swap_buffers()
        spare = period - (clock() - started)
        if spare > 0:
            time.sleep(spare)


def run_preview(scene: Scene, look: Look, options: RenderOptions, args) -> int:
    """Open the preview window for the command line, run it until it closes and return 0."""
    scale = getattr(args, "preview_scale", None) or DEFAULT_PREVIEW_SCALE
    window = open_window(f"Hyperloss preview: {scene.title}", (options.width, options.height))
    app = None
    try:
        app = PreviewApp(window.ctx, scene, look, options, look_path=args.look,
                         preview_scale=scale)
        # Connected before the sound loads, because loading pyglet.media may
        # dispatch window events, and keys sent to the dummy handlers are lost.
        connect(window, app)
        app.set_sound(load_sound(scene, look))
        log.info("preview renders at %dx%d, press H for the keys", *app.render_size)
        app.playback.play()
        run_loop(window, app)
    finally:
        if app is not None:
            app.close()
        window.close()
    return 0
