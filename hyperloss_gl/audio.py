"""The sound track: effects synthesized from the scheduler's events, a drone that follows
the loss, an optional music bed, and playback in the preview.

Every sound is made here with NumPy, so recording needs no audio files and no tools
beyond the FFmpeg that muxes the result. The track is 48 kHz stereo. Its sample ``n``
plays at ``t = n / SAMPLE_RATE``. A sound for an event at time ``t`` starts on the first
sample at or after ``t``, the rule :func:`hyperloss_gl.record.frame_range` applies to
frames. At 60 fps, frame ``n`` therefore starts on sample ``800 * n``.

Each sample is a function of the scene, the look and its absolute index. Notes are
synthesized whole from their event alone, the drone's phase is integrated over the
whole video on a fixed grid, and the limiter is memoryless. The mix is computed in
blocks that start at multiples of ``BLOCK_SAMPLES``, so a range is computed with the
same arrays as the whole track and equals the matching slice of it bit for bit.

The music is in D major. Region hums are tones of a D major 9 chord, chip pops climb
the D major pentatonic scale, and the drone steps down that scale from D4 to D3 as the
loss falls.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from hyperloss_gl import log
from hyperloss_gl.atomic import open_temporary_beside
from hyperloss_gl.errors import HyperlossError, UsageError
from hyperloss_gl.look import SOUND_NAMES, Look
from hyperloss_gl.scene import Event, Scene, Timeline, layout

SAMPLE_RATE = 48_000
CHANNELS = 2
BLOCK_SAMPLES = 16_384
"""Samples per synthesis block; blocks start at multiples of this absolute index."""

LIMIT_THRESHOLD = 0.5
"""Level (-6 dBFS) above which the limiter starts to bend the mix down."""
LIMIT_CEILING = 10.0 ** (-1.0 / 20.0)
"""Level (-1 dBFS) that the limiter's output approaches and never exceeds."""

D4_HZ = 440.0 * 2.0 ** (-7 / 12)
"""Reference pitch of the key, D4 in equal temperament with A4 = 440 Hz (293.66 Hz)."""

CHIP_STEPS = (12, 14, 16, 19, 21, 24, 26, 28)
"""Chip pops in semitones above D4: the D major pentatonic scale from D5, chip by chip."""
HUM_STEPS = (0, 4, 7, 11, 14)
"""Region hums in semitones above D4: D, F#, A, C#, E, the tones of D major 9."""
CHORD_STEPS = (-12, -5, 4, 11, 14)
"""Outro chord in semitones above D4: D3, A3, F#4, C#5, E5 (D major 9, open voicing)."""
DRONE_STEPS = (-12, -10, -8, -5, -3, 0)
"""Pitches the drone rests on, in semitones above D4: D3 E3 F#3 A3 B3 D4."""

STEREO_WIDTH = 0.8
"""Pan of a sound at the left or right edge of the frame; 1.0 would be one speaker only."""
DUCK_ATTACK_S = 0.03
"""The music starts to duck this long before an effect, so the effect lands on a lowered bed."""
DUCK_RELEASE_S = 0.3
MUSIC_FADE_OUT_S = 2.0
"""The music bed fades out over the last seconds of the recording."""
MUSIC_EDGE_FADE_S = 0.01
"""Fade at the start of the music and where a short file ends, so that neither clicks."""

DUCK_HOLD_S = {"tick": 0.15, "chip": 0.2, "ping": 0.5}
"""Seconds that a short effect keeps the music ducked; a sweep or the chord ducks it throughout."""

TICK_S, CHIP_S, PING_S, CLICK_S = 0.15, 0.3, 1.4, 0.04
"""Lengths of the fixed-length sounds in seconds."""
HUM_RELEASE_S = 0.35
"""A hum fades out over this time after its region turns off."""
SWEEP_TAIL_S = 0.3
"""A sweep rings on for this time after the backprop stage ends."""

_SAMPLE_EPSILON = 1e-6
"""Tolerance in samples, so that a time on a sample despite float rounding maps to that sample."""


# ---------------------------------------------------------------------------
# Time and sample index


def first_sample_at(t: float) -> int:
    """Return the first sample at or after time ``t``: where a sound scheduled at ``t`` starts."""
    return max(0, math.ceil(t * SAMPLE_RATE - _SAMPLE_EPSILON))


def frame_start_sample(frame: int, fps: int) -> int:
    """Return the first sample of video frame ``frame`` (shown at ``frame / fps``)."""
    return -(-frame * SAMPLE_RATE // fps)


def sample_range(frames: range, fps: int) -> tuple[int, int]:
    """Return the samples ``[start, end)`` that play while the given frames are shown."""
    return frame_start_sample(frames.start, fps), frame_start_sample(frames.stop, fps)


# ---------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class SoundSettings:
    """Gains of the mix, read from the look file's ``[sound]`` section.

    ``volumes`` maps each name of :data:`SOUND_NAMES` to its linear gain, which is 0.0
    for a sound switched off. A sound at gain 1.0 peaks at full scale before the master
    gain and the limiter.
    """

    master: float
    music: float
    duck_db: float
    volumes: dict[str, float]

    @classmethod
    def from_look(cls, look: Look) -> SoundSettings:
        sound = look.sound
        volumes = {name: float(sound[name]["volume"]) if sound[name]["on"] else 0.0
                   for name in SOUND_NAMES}
        return cls(float(sound["master"]), float(sound["music"]), float(sound["duck_db"]),
                   volumes)


# ---------------------------------------------------------------------------
# Building blocks of the sounds


def _times(length: int) -> np.ndarray:
    return np.arange(length) / SAMPLE_RATE


def _ramp(x: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp: 0 for x <= 0, 1 for x >= 1, smooth in between."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _edges(length: int, attack_s: float, release_s: float) -> np.ndarray:
    """Return an envelope that rises over ``attack_s`` and falls to 0 in the last ``release_s``."""
    n = np.arange(length)
    attack = max(attack_s * SAMPLE_RATE, 1.0)
    release = max(release_s * SAMPLE_RATE, 1.0)
    return _ramp(n / attack) * _ramp((length - n) / release)


def _sine(freq: float | np.ndarray, t: np.ndarray, phase: float = 0.0) -> np.ndarray:
    return np.sin(2.0 * np.pi * freq * t + phase)


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """Place a mono signal at ``pan`` (-1 left, +1 right) with constant power."""
    angle = (float(np.clip(pan, -1.0, 1.0)) + 1.0) * np.pi / 4.0
    return np.column_stack([mono * math.cos(angle), mono * math.sin(angle)])


def _normalized(stereo: np.ndarray) -> np.ndarray:
    """Scale a sound so that its peak is 1.0, which makes a look file's volume its peak level."""
    peak = float(np.max(np.abs(stereo))) if stereo.size else 0.0
    return stereo / peak if peak > 0.0 else stereo


def _noise_bands(rng: np.random.Generator, length: int, centers_hz: tuple[float, ...],
                 octaves: float) -> list[np.ndarray]:
    """Filter one white noise into bands with Gaussian responses on the log-frequency axis.

    Returns one signal per centre frequency, each scaled to unit RMS.
    """
    white = np.fft.rfft(rng.standard_normal(length))
    freqs = np.maximum(np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE), 1.0)
    bands = []
    for center in centers_hz:
        band = np.fft.irfft(white * np.exp(-0.5 * (np.log2(freqs / center) / octaves) ** 2),
                            length)
        rms = float(np.sqrt(np.mean(band ** 2)))
        bands.append(band / rms if rms > 0.0 else band)
    return bands


def soft_limit(mix: np.ndarray) -> np.ndarray:
    """Bend samples above ``LIMIT_THRESHOLD`` smoothly towards ``LIMIT_CEILING`` (tanh knee).

    The curve is memoryless, so each output sample depends only on the same input
    sample, and its slope is 1 at the threshold, so quiet passages pass unchanged.
    """
    magnitude = np.abs(mix)
    over = magnitude > LIMIT_THRESHOLD
    if not over.any():
        return mix
    span = LIMIT_CEILING - LIMIT_THRESHOLD
    limited = mix.copy()
    limited[over] = np.sign(mix[over]) * (
        LIMIT_THRESHOLD + span * np.tanh((magnitude[over] - LIMIT_THRESHOLD) / span))
    return limited


def _screen_pan(x: float) -> float:
    """Return the pan of a point at design-pixel ``x`` of the 1080-pixel-wide frame."""
    return STEREO_WIDTH * float(np.clip(2.0 * x / layout.DESIGN_WIDTH - 1.0, -1.0, 1.0))


# ---------------------------------------------------------------------------
# The sounds, one function each. Each returns (length, 2) with peak 1.0.


def tick_sound() -> np.ndarray:
    """Synthesize the epoch tick: a wood-block knock on D6 over a short D4 body."""
    t = _times(int(TICK_S * SAMPLE_RATE))
    d6 = D4_HZ * 4.0
    wood = _sine(d6, t) * np.exp(-t / 0.02) + 0.3 * _sine(2.76 * d6, t) * np.exp(-t / 0.007)
    body = 0.6 * _sine(D4_HZ, t) * np.exp(-t / 0.035)
    return _normalized(_pan((wood + body) * _edges(len(t), 0.0015, 0.03), 0.0))


def chip_sound(step: int, pan: float) -> np.ndarray:
    """Synthesize a chip pop: a bubble that glides up onto its pentatonic note and decays fast."""
    freq = D4_HZ * 2.0 ** (step / 12.0)
    t = _times(int(CHIP_S * SAMPLE_RATE))
    glide = 0.012
    # Integral of freq * (1 - 0.3 * exp(-t / glide)): the pitch starts 30 % low and settles.
    phase = 2.0 * np.pi * freq * (t - 0.3 * glide * (1.0 - np.exp(-t / glide)))
    wave = np.sin(phase) + 0.15 * np.sin(2.0 * phase)
    envelope = np.exp(-t / 0.045) * _edges(len(t), 0.0015, 0.02)
    return _normalized(_pan(wave * envelope, pan))


def hum_sound(step: int, pan: float, hold_s: float) -> np.ndarray:
    """Synthesize a region hum: a soft chorused tone held for ``hold_s`` seconds, then released."""
    freq = D4_HZ * 2.0 ** (step / 12.0)
    attack, release = 0.15, HUM_RELEASE_S
    t = _times(int((hold_s + release) * SAMPLE_RATE))
    main = _sine(freq, t) + 0.3 * _sine(2.0 * freq, t)
    # A copy 6 cents sharp beats slowly against the main voice; panning the two apart
    # gives the hum width.
    detuned = 0.6 * _sine(freq * 2.0 ** (6 / 1200), t, 1.0)
    tremolo = 1.0 - 0.06 * (1.0 - np.cos(2.0 * np.pi * 3.0 * t))
    n = np.arange(len(t))
    envelope = (_ramp(n / (attack * SAMPLE_RATE))
                * _ramp((hold_s + release - t) / release) * tremolo)
    stereo = (_pan(main * envelope, pan - 0.2) + _pan(detuned * envelope, pan + 0.2))
    return _normalized(stereo)


def sweep_sound(duration_s: float, seed: tuple[int, ...]) -> np.ndarray:
    """Synthesize the backprop sweep: a tone rising from D4 to D6 inside a rising noise band.

    ``seed`` seeds the noise, so that the same sweep comes out every time it is synthesized.
    """
    rng = np.random.default_rng(seed)
    t = _times(int((duration_s + SWEEP_TAIL_S) * SAMPLE_RATE))
    ratio = 4.0
    # Phase of the exponential chirp f(t) = f0 * ratio ** (t / duration).
    phase = 2.0 * np.pi * D4_HZ * duration_s / math.log(ratio) * (ratio ** (t / duration_s) - 1.0)
    tone = np.sin(phase) + 0.25 * np.sin(2.0 * phase)
    # The noise is a mix of fixed bands whose weights follow a centre that rises with the
    # tone, which works like a band-pass filter that sweeps up.
    center = 600.0 * 8.0 ** np.minimum(t / duration_s, 1.2)
    band_centers = (400.0, 900.0, 2000.0, 4500.0)
    noise = np.zeros((len(t), 2))
    for channel in range(2):
        # Each channel filters its own noise, so the whoosh is wide in stereo.
        bands = _noise_bands(rng, len(t), band_centers, 0.35)
        for band_hz, band in zip(band_centers, bands):
            noise[:, channel] += np.exp(-0.5 * (np.log2(center / band_hz) / 0.6) ** 2) * band
    peak_at = 0.6 * duration_s
    swell = _ramp(t / peak_at) * np.exp(-np.maximum(t - peak_at, 0.0) / (0.25 * duration_s))
    envelope = swell * _edges(len(t), 0.005, 0.05)
    stereo = _pan(tone * envelope, 0.0) + 0.12 * noise * envelope[:, None]
    return _normalized(stereo)


def _bell(freq: float, t: np.ndarray) -> np.ndarray:
    partials = ((1.0, 1.0, 0.6), (2.0, 0.25, 0.3), (3.0, 0.08, 0.15), (4.2, 0.05, 0.05))
    active = t >= 0.0
    tone = np.zeros(len(t))
    for ratio, amplitude, decay in partials:
        tone += amplitude * _sine(ratio * freq, t) * np.exp(-np.maximum(t, 0.0) / decay)
    return tone * active * _ramp(t / 0.0015)


def ping_sound() -> np.ndarray:
    """Synthesize the aligned ping: a two-note chime, A5 then D6, a fourth up."""
    t = _times(int(PING_S * SAMPLE_RATE))
    edges = _edges(len(t), 0.0, 0.1)
    first = _pan(_bell(D4_HZ * 2.0 ** (19 / 12), t) * edges, -0.2)
    second = _pan(0.8 * _bell(D4_HZ * 4.0, t - 0.08) * edges, 0.2)
    return _normalized(first + second)


def click_sound(pan: float) -> np.ndarray:
    """Synthesize a step click: a tiny, quickly damped E6 with an E7 overtone."""
    t = _times(int(CLICK_S * SAMPLE_RATE))
    e6 = D4_HZ * 2.0 ** (26 / 12)
    wave = _sine(e6, t) * np.exp(-t / 0.006) + 0.4 * _sine(2.0 * e6, t) * np.exp(-t / 0.003)
    return _normalized(_pan(wave * _edges(len(t), 0.0005, 0.01), pan))


def chord_sound(duration_s: float) -> np.ndarray:
    """Synthesize the outro chord: D major 9, strummed upwards, fading out at ``duration_s``."""
    t = _times(int(duration_s * SAMPLE_RATE))
    stereo = np.zeros((len(t), 2))
    pans = np.linspace(-0.5, 0.5, len(CHORD_STEPS))
    for voice, (step, pan) in enumerate(zip(CHORD_STEPS, pans)):
        freq = D4_HZ * 2.0 ** (step / 12.0)
        delay = 0.04 * voice
        local = t - delay
        tone = np.zeros(len(t))
        for cents in (-3.0, 3.0):
            detuned = freq * 2.0 ** (cents / 1200.0)
            for harmonic, amplitude in ((1, 1.0), (2, 0.35), (3, 0.12), (4, 0.05)):
                tone += amplitude * _sine(harmonic * detuned, local, voice + harmonic)
        envelope = _ramp(local / 0.4) * np.exp(-np.maximum(local, 0.0) / 4.0)
        stereo += _pan(tone * envelope, pan)
    release = min(0.8, 0.4 * duration_s)
    return _normalized(stereo * _edges(len(t), 0.0, release)[:, None])


# ---------------------------------------------------------------------------
# The score: one note per sounding event


@dataclass(frozen=True)
class Note:
    """One synthesized sound placed on the track."""

    sound: str
    """Name from :data:`SOUND_NAMES`; its look-file volume scales the note."""
    start: int
    """Absolute sample where the note starts."""
    synthesize: Callable[[], np.ndarray]
    """Returns the note's samples, shape (length, 2), peak 1.0."""
    length: int
    duck_until: int | None
    """Absolute sample until which the note keeps the music bed ducked, or None for no ducking."""

    @property
    def end(self) -> int:
        return self.start + self.length


def _chip_pans(tokens: tuple[str, ...]) -> list[float]:
    """Return a pan per chip from its estimated centre in the input row.

    NOTE: chip widths are estimated from character counts, because the exact widths
    come from the font atlas in the renderer. The pans are close to, not equal to,
    where the chips are drawn.
    """
    char_width, padding, gap, label = 0.56 * layout.CHIP_TEXT_SIZE, 18.0, 12.0, 120.0
    row = layout.INPUT_ROW
    widths = [len(token) * char_width + 2.0 * padding for token in tokens]
    total = sum(widths) + gap * (len(widths) - 1)
    left = row.x + label
    shrink = min(1.0, (row.right - left) / total) if total > 0 else 1.0
    pans, x = [], left
    for width in widths:
        pans.append(_screen_pan(x + width * shrink / 2.0))
        x += (width + gap) * shrink
    return pans


def _note_for_event(event: Event, scene: Scene) -> Note | None:
    """Return the note that sounds for an event, or None for an event without its own sound.

    The intro, gibberish, partial and region_off events have none: the drone fades in
    over the intro, and a hum releases when its region turns off.
    """
    start = first_sample_at(event.t)

    def note(sound: str, synthesize: Callable[[], np.ndarray], length_s: float,
             duck_s: float | None) -> Note:
        length = int(length_s * SAMPLE_RATE)
        duck = None if duck_s is None else start + int(duck_s * SAMPLE_RATE)
        return Note(sound, start, synthesize, length, duck)

    kind = event.kind
    if kind == "epoch":
        return note("tick", tick_sound, TICK_S, DUCK_HOLD_S["tick"])
    if kind == "chip":
        tokens = scene.examples[event.epoch].tokens
        step = CHIP_STEPS[event.index % len(CHIP_STEPS)]
        pan = _chip_pans(tokens)[event.index]
        return note("chip", partial(chip_sound, step, pan), CHIP_S, DUCK_HOLD_S["chip"])
    if kind == "region_on":
        region = scene.regions[event.index]
        octave = 12 * ((event.index // len(HUM_STEPS)) % 2)
        step = HUM_STEPS[event.index % len(HUM_STEPS)] + octave
        pan = 0.6 * float(np.clip(region.position[0] / 1.6, -1.0, 1.0))
        return note("hum", partial(hum_sound, step, pan, event.duration),
                    event.duration + HUM_RELEASE_S, None)
    if kind == "wave":
        seed = (scene.seed, event.epoch)
        return note("sweep", partial(sweep_sound, event.duration, seed),
                    event.duration + SWEEP_TAIL_S, event.duration)
    if kind == "aligned":
        return note("ping", ping_sound, PING_S, DUCK_HOLD_S["ping"])
    if kind == "step":
        total = scene.epochs * scene.steps_per_epoch
        x, _ = layout.loss_point(event.index, 0.0, total, 1.0)
        return note("click", partial(click_sound, _screen_pan(x)), CLICK_S, None)
    if kind == "outro":
        return note("chord", partial(chord_sound, event.duration), event.duration,
                    event.duration)
    return None


# ---------------------------------------------------------------------------
# The drone


def _glide_to_steps(semitones: np.ndarray, steps: tuple[int, ...], points: int) -> np.ndarray:
    """Snap each pitch to the nearest of ``steps``, then smooth the jumps into glides.

    The smoothing is a Hann-weighted moving average over ``points`` grid points, so a
    jump between two notes becomes a glide of that length and the pitch otherwise rests
    exactly on a note.
    """
    scale = np.array(steps, dtype=np.float64)
    snapped = scale[np.argmin(np.abs(semitones[:, None] - scale[None, :]), axis=1)]
    kernel = np.hanning(points + 2)[1:-1]
    kernel /= kernel.sum()
    padded = np.pad(snapped, (points // 2, points - 1 - points // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def _cycle_grid(freqs: np.ndarray, grid: int) -> np.ndarray:
    """Return the phase in cycles modulo 1 at each grid point of a piecewise-linear frequency."""
    increments = grid * 0.5 * (freqs[:-1] + freqs[1:]) / SAMPLE_RATE
    cycles = np.concatenate([[0.0], np.cumsum(increments)])
    return cycles - np.floor(cycles)


class Drone:
    """A low tone whose pitch follows the loss at the tracer.

    The highest loss of the scene plays D4 and the lowest D3. The pitch rests on the D
    major pentatonic scale and glides between its notes. The frequency is sampled every
    ``GRID`` samples over the whole video and interpolated linearly, and the phase is its
    exact integral, so the phase of every sample is a pure function of its absolute index.
    """

    GRID = 240
    DETUNE = 2.0 ** (5 / 1200)
    GLIDE_S = 0.08
    """Length of the glide from one note of the drone to the next."""

    def __init__(self, scene: Scene, timeline: Timeline, length: int):
        grid_times = np.arange(length // self.GRID + 2) * (self.GRID / SAMPLE_RATE)
        steps = np.array([timeline.tracer_step(t) for t in grid_times])
        loss = np.interp(steps, np.arange(len(scene.loss)), scene.loss)
        low, high = min(scene.loss), max(scene.loss)
        level = (loss - low) / (high - low) if high > low else np.full(len(loss), 0.5)
        span = DRONE_STEPS[-1] - DRONE_STEPS[0]
        glide_points = int(self.GLIDE_S * SAMPLE_RATE / self.GRID)
        semitones = _glide_to_steps(DRONE_STEPS[0] + span * level, DRONE_STEPS, glide_points)
        self.level = level
        """0..1 per grid point: the loss between the scene's lowest and highest value."""
        self.freqs = D4_HZ * 2.0 ** (semitones / 12.0)
        self.cycles = _cycle_grid(self.freqs, self.GRID)
        self.detuned_cycles = _cycle_grid(self.freqs * self.DETUNE, self.GRID)
        self.fade_in_end = timeline.intro
        self.fade_out = (timeline.outro_start, timeline.duration)

    def _phase(self, cycles: np.ndarray, freqs: np.ndarray, n: np.ndarray) -> np.ndarray:
        k = n // self.GRID
        u = (n - k * self.GRID).astype(np.float64)
        slope = (freqs[k + 1] - freqs[k]) / (2.0 * self.GRID)
        return 2.0 * np.pi * (cycles[k] + (freqs[k] * u + slope * u * u) / SAMPLE_RATE)

    def render(self, start: int, end: int) -> np.ndarray:
        """Return samples ``[start, end)`` of the drone, shape (n, 2), peak at most 1."""
        n = np.arange(start, end)
        t = n / SAMPLE_RATE
        phase = self._phase(self.cycles, self.freqs, n)
        detuned = self._phase(self.detuned_cycles, self.freqs * self.DETUNE, n)
        level = np.interp(t, np.arange(len(self.level)) * (self.GRID / SAMPLE_RATE), self.level)
        # A high loss sounds brighter and rougher; a trained model sounds pure.
        main = (np.sin(phase) + 0.45 * np.sin(2.0 * phase)
                + (0.1 + 0.35 * level) * np.sin(3.0 * phase))
        second = 0.7 * np.sin(detuned)
        fade_start, fade_end = self.fade_out
        envelope = (_ramp(t / self.fade_in_end)
                    * _ramp((fade_end - t) / max(fade_end - fade_start, 1e-9))
                    * (1.0 - 0.075 * (1.0 - np.cos(2.0 * np.pi * 0.2 * t))))
        stereo = _pan(main * envelope, -0.25) + _pan(second * envelope, 0.25)
        return stereo / 2.0


# ---------------------------------------------------------------------------
# Music bed


def load_music(path: Path, samples: int) -> np.ndarray:
    """Decode an audio file with FFmpeg to at most ``samples`` 48 kHz stereo float samples.

    Any format that the FFmpeg binary of imageio-ffmpeg reads works. Raises UsageError
    when the file is missing, has no audio stream or fails to decode.
    """
    from hyperloss_gl.encode import ffmpeg_exe

    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"music file {path} not found; give the path of an audio file, or "
                         "leave --music out.")
    seconds = samples / SAMPLE_RATE
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
               "-map", "0:a:0", "-vn", "-ac", str(CHANNELS), "-ar", str(SAMPLE_RATE),
               "-t", f"{seconds:.6f}", "-f", "f32le", "pipe:1"]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                check=False)
    except OSError as error:
        raise HyperlossError(f"failed to run FFmpeg at {command[0]}: {error}. Reinstall "
                             "imageio-ffmpeg or set IMAGEIO_FFMPEG_EXE.") from error
    message = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0:
        raise UsageError(f"failed to decode music file {path}: {message or 'FFmpeg failed'}. "
                         "Give an audio file that FFmpeg reads, such as WAV, MP3, AAC or FLAC.")
    data = np.frombuffer(result.stdout, dtype=np.float32)
    data = data[:len(data) // CHANNELS * CHANNELS].reshape(-1, CHANNELS)[:samples]
    if not len(data):
        raise UsageError(f"music file {path} decodes to no samples; give an audio file with sound.")
    log.info("music bed %s: %.2f s under a %.2f s sound track", path, len(data) / SAMPLE_RATE,
             seconds)
    return data


class MusicBed:
    """A decoded music file laid under the effects from sample 0, faded out at the end."""

    def __init__(self, samples: np.ndarray, track_length: int):
        self.samples = samples
        edge = MUSIC_EDGE_FADE_S * SAMPLE_RATE
        n = np.arange(len(samples))
        gain = _ramp(n / edge)
        if len(samples) < track_length:
            gain = gain * _ramp((len(samples) - n) / edge)
        fade = min(MUSIC_FADE_OUT_S * SAMPLE_RATE, 0.5 * track_length)
        self.gain = gain * _ramp((track_length - n) / max(fade, 1.0))

    def render(self, start: int, end: int) -> np.ndarray:
        """Return samples ``[start, end)`` of the faded music, zeros past its end."""
        out = np.zeros((end - start, CHANNELS))
        stop = min(end, len(self.samples))
        if stop > start:
            out[:stop - start] = self.samples[start:stop] * self.gain[start:stop, None]
        return out


# ---------------------------------------------------------------------------
# The track


class SoundTrack:
    """The mixed sound track of one scene, computed block by block for any sample range.

    ``length`` is the number of samples of the whole video at ``fps``, so the track
    ends with the last frame.
    """

    def __init__(self, scene: Scene, settings: SoundSettings, *, fps: int | None = None,
                 music: Path | None = None):
        fps = fps or scene.fps
        self.scene = scene
        self.settings = settings
        self.timeline = Timeline(scene)
        self.length = frame_start_sample(self.timeline.frame_count(fps), fps)
        notes = [_note_for_event(event, scene) for event in self.timeline.events()]
        self.notes = [note for note in notes
                      if note is not None and settings.volumes[note.sound] > 0.0]
        self._starts = np.array([note.start for note in self.notes], dtype=np.int64)
        self._ends = np.array([note.end for note in self.notes], dtype=np.int64)
        self.drone = (Drone(scene, self.timeline, self.length)
                      if settings.volumes["drone"] > 0.0 else None)
        self.music = None
        if music is not None and settings.music > 0.0:
            self.music = MusicBed(load_music(music, self.length), self.length)
        ducking = [note for note in self.notes if note.duck_until is not None]
        self._duck_spans = np.array([(note.start, note.duck_until) for note in ducking],
                                    dtype=np.int64).reshape(-1, 2)
        self._note_cache: dict[int, np.ndarray] = {}
        self._block_cache: tuple[int, np.ndarray] | None = None
        # pyglet's worker thread renders for the preview, and a stopped player's last
        # request may overlap the next player's first, so the caches take a lock.
        self._cache_lock = threading.Lock()

    @property
    def duration(self) -> float:
        return self.length / SAMPLE_RATE

    def render(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Return samples ``[start, end)`` of the track, shape (n, 2), float32 in -1..1."""
        end = self.length if end is None else end
        if not 0 <= start <= end <= self.length:
            raise ValueError(f"sample range {start}..{end} is outside the track's 0..{self.length}")
        return np.concatenate(list(self.blocks(start, end)) or [np.zeros((0, CHANNELS),
                                                                         np.float32)])

    def blocks(self, start: int, end: int) -> Iterator[np.ndarray]:
        """Yield samples ``[start, end)`` of the track in pieces of at most ``BLOCK_SAMPLES``."""
        for block in range(start // BLOCK_SAMPLES, -(-end // BLOCK_SAMPLES)):
            block_start = block * BLOCK_SAMPLES
            samples = self._block(block)
            yield samples[max(start - block_start, 0):min(end - block_start, len(samples))]

    def _block(self, block: int) -> np.ndarray:
        # One cached block serves the preview, which requests a few thousand samples at a time.
        with self._cache_lock:
            if self._block_cache is not None and self._block_cache[0] == block:
                return self._block_cache[1]
            start = block * BLOCK_SAMPLES
            end = min(start + BLOCK_SAMPLES, self.length)
            samples = self._mix(start, end)
            self._block_cache = (block, samples)
            return samples

    def _mix(self, start: int, end: int) -> np.ndarray:
        settings = self.settings
        mix = np.zeros((end - start, CHANNELS))
        overlapping = np.nonzero((self._starts < end) & (self._ends > start))[0]
        for index in overlapping:
            note = self.notes[index]
            samples = self._note_cache.get(index)
            if samples is None:
                samples = note.synthesize()[:note.length]
                self._note_cache[index] = samples
            first, last = max(start, note.start), min(end, note.start + len(samples))
            if last > first:
                mix[first - start:last - start] += (settings.volumes[note.sound]
                                                    * samples[first - note.start:last - note.start])
        # Keep only the notes that the next block can still reach.
        self._note_cache = {index: samples for index, samples in self._note_cache.items()
                            if self.notes[index].end > end}
        if self.drone is not None:
            mix += settings.volumes["drone"] * self.drone.render(start, end)
        if self.music is not None:
            duck = 10.0 ** (-settings.duck_db * self._duck_amount(start, end) / 20.0)
            mix += settings.music * self.music.render(start, end) * duck[:, None]
        return soft_limit(settings.master * mix).astype(np.float32)

    def _duck_amount(self, start: int, end: int) -> np.ndarray:
        """Return 0..1 per sample: how far the music is ducked under the effects."""
        attack = DUCK_ATTACK_S * SAMPLE_RATE
        release = DUCK_RELEASE_S * SAMPLE_RATE
        n = np.arange(start, end)
        amount = np.zeros(len(n))
        spans = self._duck_spans
        near = (spans[:, 0] - attack < end) & (spans[:, 1] + release > start)
        for span_start, span_end in spans[near]:
            rise = _ramp((n - (span_start - attack)) / attack)
            fall = _ramp((span_end + release - n) / release)
            amount = np.maximum(amount, np.minimum(rise, fall))
        return amount


def track_for(scene: Scene, look: Look, fps: int | None = None,
              music: Path | None = None) -> SoundTrack:
    """Return the sound track of a scene with the look file's sound settings."""
    return SoundTrack(scene, SoundSettings.from_look(look), fps=fps, music=music)


# ---------------------------------------------------------------------------
# WAV output


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Convert float samples in -1..1 to 16-bit integers, rounding to nearest."""
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def _wav_header(frames: int, float_samples: bool) -> bytes:
    sample_bytes = 4 if float_samples else 2
    block_align = CHANNELS * sample_bytes
    data_bytes = frames * block_align
    if float_samples:
        # WAVE_FORMAT_IEEE_FLOAT needs the extended fmt chunk and a fact chunk.
        fmt = struct.pack("<HHIIHHH", 3, CHANNELS, SAMPLE_RATE, SAMPLE_RATE * block_align,
                          block_align, 32, 0)
        extra = b"fact" + struct.pack("<II", 4, frames)
    else:
        fmt = struct.pack("<HHIIHH", 1, CHANNELS, SAMPLE_RATE, SAMPLE_RATE * block_align,
                          block_align, 16)
        extra = b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", data_bytes)
    # The RIFF size counts everything after itself: this header's body and the samples.
    return b"RIFF" + struct.pack("<I", len(body) + data_bytes) + body


def write_wav(path: Path, track: SoundTrack, start: int, end: int, *,
              float_samples: bool = False) -> Path:
    """Write samples ``[start, end)`` of the track to a WAV file, atomically.

    The samples go to a hidden temporary file beside ``path``, which is renamed onto
    ``path`` once complete. ``float_samples`` writes 32-bit float instead of 16-bit PCM.
    """
    path = Path(path)
    if path.suffix.lower() != ".wav":
        raise UsageError(f"sound track output {path} must end in .wav; give a name like "
                         "track.wav.")
    frames = end - start
    header = _wav_header(frames, float_samples)
    if len(header) + frames * CHANNELS * (4 if float_samples else 2) >= 2 ** 32:
        raise UsageError(f"the sound track of {frames / SAMPLE_RATE:.0f} s is too long for one "
                         "WAV file (4 GiB); record a shorter range with --from and --to.")
    temporary, handle = open_temporary_beside(path)
    temporary = str(temporary)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(header)
            for block in track.blocks(start, end):
                data = block.astype("<f4") if float_samples else to_int16(block)
                file.write(data.tobytes())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise HyperlossError(f"failed to write the sound track to {path}: "
                             f"{error.strerror or error}. Free disk space or choose another "
                             f"output path; {path} is unchanged.") from error
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def record_sound(scene: Scene, look: Look, out_path: Path, fps: int, frames: range,
                 music: Path | None = None) -> Path:
    """Write the sound track of a frame range to a 16-bit WAV file for editing elsewhere."""
    track = track_for(scene, look, fps, music)
    start, end = sample_range(frames, fps)
    write_wav(out_path, track, start, end)
    log.info("wrote the sound track %s: %.2f s from %.2f s, %d Hz stereo 16-bit", out_path,
             (end - start) / SAMPLE_RATE, start / SAMPLE_RATE, SAMPLE_RATE)
    return Path(out_path)


@contextlib.contextmanager
def temporary_track_file(scene: Scene, look: Look, out_path: Path, fps: int, frames: range,
                         *, enabled: bool = True,
                         music: Path | None = None) -> Iterator[Path | None]:
    """Write the frame range's track to a hidden float WAV beside ``out_path`` for muxing.

    Yields its path, or None when ``enabled`` is false, and removes the file on exit.
    """
    if not enabled:
        yield None
        return
    out_path = Path(out_path)
    wav = out_path.with_name(f".{out_path.stem}.sound-{os.getpid()}.wav")
    track = track_for(scene, look, fps, music)
    start, end = sample_range(frames, fps)
    try:
        try:
            write_wav(wav, track, start, end, float_samples=True)
        except UsageError:
            raise
        except HyperlossError as error:
            # write_wav's message names the hidden WAV, not the file the user asked for.
            reason = getattr(error.__cause__, "strerror", None) or error
            raise HyperlossError(f"failed to write the sound track of {out_path} to the "
                                 f"temporary file {wav.name}: {reason}. Free disk space or "
                                 f"choose another output path; {out_path} is unchanged.") from None
        yield wav
    finally:
        # Checked first: on a read-only file system unlink() fails even for a missing file.
        if wav.exists():
            wav.unlink()


# ---------------------------------------------------------------------------
# Preview playback

_no_device_logged = False


def _log_no_device(reason: str) -> None:
    """Log once per process that the preview is silent, then only at debug level."""
    global _no_device_logged
    if _no_device_logged:
        log.debug("preview sound off: %s", reason)
        return
    _no_device_logged = True
    log.info("no sound device (%s); the preview plays without sound", reason)


def _open_pyglet_media():
    """Return ``pyglet.media`` when it has a real audio driver, else None after one log line."""
    try:
        # "from pyglet import media" would return pyglet's lazy module proxy, which
        # defers the import and its errors to the first attribute access.
        import pyglet.media as media  # noqa: PLR0402
    except ImportError as error:
        _log_no_device(f"pyglet is not installed: {error}")
        return None
    except Exception as error:  # noqa: BLE001
        # pyglet.media imports pyglet.gl, which raises a platform-specific error, such
        # as NoSuchDisplayException on X11 without a display.
        _log_no_device(f"pyglet.media failed to load: {type(error).__name__}: {error}")
        return None
    driver = media.get_audio_driver()
    if driver is None or type(driver).__module__.startswith("pyglet.media.drivers.silent"):
        _log_no_device("pyglet found only its silent driver")
        return None
    return media


def _track_source(media, track: SoundTrack, start: int):
    """Return a pyglet streaming source that plays the track from sample ``start``, 16-bit."""
    from pyglet.media.codecs import AudioData, AudioFormat

    class TrackSource(media.StreamingSource):
        def __init__(self):
            self.audio_format = AudioFormat(channels=CHANNELS, sample_size=16,
                                            sample_rate=SAMPLE_RATE)
            self.video_format = None
            self._duration = (track.length - start) / SAMPLE_RATE
            self._position = start

        def is_precise(self) -> bool:
            return True

        def seek(self, timestamp: float) -> None:
            self._position = min(start + first_sample_at(max(timestamp, 0.0)), track.length)

        def get_audio_data(self, num_bytes: int, compensation_time: float = 0.0):
            end = min(self._position + num_bytes // (2 * CHANNELS), track.length)
            if end <= self._position:
                return None
            data = to_int16(track.render(self._position, end)).tobytes()
            self._position = end
            return AudioData(data, len(data))

    return TrackSource()


class PreviewSound:
    """Player of the sound track for the preview window.

    The window calls :meth:`play` with the current time when it starts playing forwards
    at 1x, and :meth:`stop` when it pauses, scrubs, seeks or changes speed. Playback
    uses pyglet.media, which moderngl-window installs. Without a sound device, a
    display for pyglet, or pyglet itself, every call does nothing and the constructor
    logs one line.
    """

    def __init__(self, scene: Scene, look: Look, music: Path | None = None):
        self.track = track_for(scene, look, music=music)
        self._media = _open_pyglet_media()
        self._player = None

    @property
    def available(self) -> bool:
        """Whether a sound device plays the track."""
        return self._media is not None

    def play(self, t: float) -> None:
        """Start playback of the track from time ``t`` in seconds, stopping any playback first."""
        self.stop()
        if self._media is None:
            return
        start = first_sample_at(max(float(t), 0.0))
        if start >= self.track.length:
            return
        player = self._media.Player()
        player.queue(_track_source(self._media, self.track, start))
        player.play()
        self._player = player

    def stop(self) -> None:
        """Stop playback; calling it while silent does nothing."""
        if self._player is not None:
            self._player.pause()
            self._player.delete()
            self._player = None

    def close(self) -> None:
        """Stop playback and release the player; later calls do nothing."""
        self.stop()
        self._media = None


__all__ = [
    "SAMPLE_RATE",
    "PreviewSound",
    "SoundSettings",
    "SoundTrack",
    "first_sample_at",
    "load_music",
    "record_sound",
    "sample_range",
    "soft_limit",
    "temporary_track_file",
    "track_for",
    "write_wav",
]
