"""Build a signed distance field (SDF) glyph atlas and lay out text on it.

FreeType (freetype-py) renders the glyph SDFs, HarfBuzz (uharfbuzz) shapes the text and NumPy
builds the quad arrays. The module imports no OpenGL, so it runs and tests without a GPU. The
renderer uploads :attr:`GlyphAtlas.pixels` as a one-channel texture whenever
:attr:`GlyphAtlas.version` changes and draws one instanced quad per row of :attr:`TextRun.quads`.

SDF convention
--------------
Each texel contains the value of FreeType's SDF renderer (``FT_RENDER_MODE_SDF``, FreeType 2.13):
``clamp(128 + 128 * d / spread_px, 0, 255)``, where ``d`` is the signed distance to the outline
in atlas texels, positive inside. So :data:`EDGE_VALUE` (128, or 128 / 255 = 0.50196 after
normalisation to 0..1) is the outline, brighter is inside, 0 is ``spread_px`` texels or more
outside, and one texel of distance is ``128 / spread_px`` levels. A glyph drawn at ``size_px``
shows one atlas texel as ``size_px / em_px`` pixels.

Coordinates
-----------
Layout works in pixels with y pointing down and the pen origin at (0, 0) on the baseline. In the
atlas, row 0 of ``pixels`` is v = 0, so a texture uploaded from ``pixels`` unchanged samples
correctly with the ``uvs`` as given.

Kerning
-------
Inter's OTF files keep their kerning in the GPOS table, which ``FT_Get_Kerning`` does not read
(it returns 0 for "AV" with freetype-py 2.5.1 and FreeType 2.13.2). HarfBuzz applies GPOS, so it
shapes every line. Ligatures and contextual alternates are off, so every glyph maps back to the
characters of its HarfBuzz cluster.
"""

from __future__ import annotations

import ctypes
import math
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import freetype
import numpy as np
import uharfbuzz as hb
from freetype import raw as freetype_raw

from hyperloss_gl import log
from hyperloss_gl.errors import HyperlossError, UsageError

EDGE_VALUE = 128
"""Atlas texel value on a glyph outline. Inside is brighter, outside darker."""

PRINTABLE_ASCII = "".join(chr(code) for code in range(0x20, 0x7F))
"""Characters that every atlas renders at construction."""

TAB_WIDTH_SPACES = 4
"""Advance of a tab character, in spaces."""

ELLIPSIS = "\u2026"
"""Character that :meth:`GlyphAtlas.fit` appends to a truncated last line."""

SHRINK_FACTOR = 0.95
"""Ratio between consecutive text sizes that :meth:`GlyphAtlas.fit` tries."""

PADDING_TEXELS = 2
"""Empty texels between atlas cells and around the atlas border."""

CACHE_ENTRIES = 1024
"""Maximum entries of each per-atlas LRU cache (shaped text, text runs and text blocks)."""

SDF_SPREAD_RANGE = (2, 32)
"""Spread values in texels that FreeType's SDF renderer accepts (FreeType 2.13)."""

_LAID_OUT_AS_SPACE = "\t\n\r\v\f\x85\u2028\u2029"
_SPACE_TRANSLATION = str.maketrans({char: " " for char in _LAID_OUT_AS_SPACE})
_BREAK_SPACES = " \t"
_FORCED_BREAK = re.compile("\r\n|[\n\r\u2028\u2029]")
_SHAPING_FEATURES = {"kern": True, "liga": False, "clig": False, "dlig": False, "calt": False}
_FREETYPE_LOAD_FLAGS = freetype.FT_LOAD_DEFAULT | freetype.FT_LOAD_NO_HINTING


class AtlasFullError(HyperlossError):
    """A glyph atlas has no free space for a new glyph."""


@dataclass(frozen=True, eq=False)
class TextRun:
    """One line of text laid out with its pen origin at (0, 0) on the baseline, y pointing down.

    All arrays are read-only because :meth:`GlyphAtlas.layout` returns cached runs.

    Attributes
    ----------
    text : str
        The laid-out text; ``char_index`` and ``pen_x`` index into it.
    quads : numpy.ndarray
        (n, 4) float32 ``x0, y0, x1, y1`` in pixels at ``size_px``, one row per drawn glyph.
        Each quad covers the glyph's whole SDF bitmap, so it extends about ``sdf_spread_px``
        beyond the outline on every side.
    uvs : numpy.ndarray
        (n, 4) float32 ``u0, v0, u1, v1`` normalised atlas coordinates of each quad's corners.
    char_index : numpy.ndarray
        (n,) int32 index into ``text`` of the character that each quad draws.
    pen_x : numpy.ndarray
        (len(text) + 1,) float32 pen x in pixels before each character, followed by
        ``advance``. Characters inside one HarfBuzz cluster share the cluster's pen x.
    advance : float
        Width of the whole line in pixels (sum of pen advances, kerning included).
    ascender : float
        Distance in pixels from the baseline up to the top of the line box.
    descender : float
        Distance in pixels from the baseline down to the bottom of the line box, positive, so the
        line box spans y from ``-ascender`` to ``descender``.
    line_height : float
        Baseline-to-baseline distance in pixels.
    size_px : float
        Font size in pixels per em.
    sdf_spread_px : float
        Distance in pixels at ``size_px`` over which the SDF falls from EDGE_VALUE to 0.
    """

    text: str
    quads: np.ndarray
    uvs: np.ndarray
    char_index: np.ndarray
    pen_x: np.ndarray
    advance: float
    ascender: float
    descender: float
    line_height: float
    size_px: float
    sdf_spread_px: float


@dataclass(frozen=True, eq=False)
class TextBlock:
    """Lines that :meth:`GlyphAtlas.fit` wrapped, and the size it chose.

    Attributes
    ----------
    lines : list of TextRun
        One run per line, each with its own pen origin at (0, 0).
    size_px : float
        Font size of every line.
    width : float
        Advance of the widest line in pixels.
    height : float
        ``len(lines) * line_height`` in pixels.
    line_starts : tuple of int
        Index into the text passed to ``fit()`` of each line's first character. Character ``i``
        of line ``k`` is character ``line_starts[k] + i`` of that text. A trailing ellipsis
        maps to the first character that truncation dropped.
    truncated : bool
        Whether the last line ends in an ellipsis that replaces dropped text.
    """

    lines: list[TextRun]
    size_px: float
    width: float
    height: float
    line_starts: tuple[int, ...] = ()
    truncated: bool = False

    @property
    def baselines(self) -> list[float]:
        """Y of each line's baseline in pixels, measured down from the top of the block."""
        return [run.ascender + index * run.line_height for index, run in enumerate(self.lines)]


@dataclass(frozen=True)
class _GlyphCell:
    """Place of one glyph's SDF bitmap in the atlas, in texels at em_px."""

    x: int
    y: int
    width: int
    height: int
    left: int
    top: int


@dataclass(frozen=True, eq=False)
class _PreparedText:
    """Shaped text with atlas cells, in font units and em_px texels, for any size."""

    text: str
    origins: np.ndarray  # (n, 4) float64 glyph origin x, y, x, y in font units, y down
    boxes: np.ndarray  # (n, 4) float64 bitmap x0, y0, x1, y1 in em_px texels from the origin
    uvs: np.ndarray
    char_index: np.ndarray
    pen_units: np.ndarray  # (len(text) + 1,) float64
    advance_units: int


class _LRUCache:
    """Mapping that drops its least recently used entry beyond ``max_entries``."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()

    def get(self, key):
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class _ShelfPacker:
    """Shelf packer: each glyph goes on the lowest shelf tall enough with room left in its row.

    A new shelf opens, as tall as the glyph, below the last one when no shelf has room.
    """

    def __init__(self, size: int, padding: int):
        self.size = size
        self.padding = padding
        self._shelves: list[list[int]] = []  # [y, height, next free x]
        self._next_y = padding

    def place(self, width: int, height: int) -> tuple[int, int] | None:
        """Reserve a ``width`` x ``height`` rectangle and return its (x, y), or None if full."""
        if width + 2 * self.padding > self.size:
            return None
        shelf = self._find_shelf(width, height) or self._open_shelf(height)
        if shelf is None:
            return None
        x = shelf[2]
        shelf[2] += width + self.padding
        return x, shelf[0]

    def _find_shelf(self, width: int, height: int) -> list[int] | None:
        fitting = [
            shelf
            for shelf in self._shelves
            if height <= shelf[1] and shelf[2] + width + self.padding <= self.size
        ]
        return min(fitting, key=lambda shelf: shelf[1], default=None)

    def _open_shelf(self, height: int) -> list[int] | None:
        if self._next_y + height + self.padding > self.size:
            return None
        shelf = [self._next_y, height, self.padding]
        self._shelves.append(shelf)
        self._next_y += height + self.padding
        return shelf


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _set_sdf_spread(spread_px: int) -> None:
    # freetype-py renders every Face through one global FT_Library, and "spread" is a property
    # of that library's "sdf" module, so each atlas sets its own spread before it renders.
    value = ctypes.c_int(spread_px)
    error = freetype_raw.FT_Property_Set(
        freetype.get_handle(), b"sdf", b"spread", ctypes.byref(value)
    )
    if error:
        raise freetype.FT_Exception(error)


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _split_paragraphs(text: str) -> list[tuple[int, int]]:
    """Return the (start, end) span of each paragraph between forced line breaks."""
    spans = []
    start = 0
    for match in _FORCED_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _find_words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Return the (start, end) span of each word in a span, words being split at spaces and tabs."""
    words = []
    word_start = None
    for index in range(start, end):
        if text[index] in _BREAK_SPACES:
            if word_start is not None:
                words.append((word_start, index))
            word_start = None
        elif word_start is None:
            word_start = index
    if word_start is not None:
        words.append((word_start, end))
    return words


def _packing_order(item) -> tuple[int, int]:
    # Tallest first packs shelves tighter, and the glyph id breaks ties deterministically.
    glyph_id, sdf = item
    height = 0 if sdf is None else sdf[0].shape[0]
    return -height, glyph_id


def _shrink_sizes(size_px: float, min_size_px: float):
    """Yield ``size_px``, then sizes smaller by SHRINK_FACTOR each, ending at ``min_size_px``."""
    size = size_px
    while size > min_size_px:
        yield size
        size *= SHRINK_FACTOR
    yield min_size_px


class GlyphAtlas:
    """SDF atlas of one font face, grown on demand.

    The atlas renders printable ASCII and the replacement glyph at construction and every other
    glyph the first time a text uses it. When the ``size`` x ``size`` texture has no room for a
    new glyph, it raises :class:`AtlasFullError`. It never resizes the texture, so the ``uvs`` of
    runs handed out earlier stay valid.

    Parameters
    ----------
    font_path : str or pathlib.Path
        Font file that FreeType and HarfBuzz can read.
    em_px : int
        Size in pixels per em at which glyphs are rendered into the atlas.
    spread_px : int
        SDF spread in atlas texels, 2 to 32: the distance over which the SDF falls from
        EDGE_VALUE to 0 outside the outline (and rises to 255 inside).
    size : int
        Width and height of the atlas in texels.

    Attributes
    ----------
    pixels : numpy.ndarray
        (size, size) uint8 SDF texture, see the module documentation for the value convention.
    version : int
        Number of times glyphs were added; 1 after construction.
    replacement_glyph : int
        Glyph drawn for characters the font lacks: U+FFFD if the font maps it, else glyph 0,
        .notdef. The shipped Inter 3.019 has no U+FFFD, and its .notdef is a box of five
        horizontal bars.
    """

    def __init__(self, font_path, *, em_px: int = 64, spread_px: int = 8, size: int = 1024):
        self._check_arguments(font_path, em_px, spread_px, size)
        self.font_path = Path(font_path)
        self.em_px = em_px
        self.spread_px = spread_px
        self.size = size
        self.pixels = np.zeros((size, size), dtype=np.uint8)
        self.version = 0
        self._open_font()
        self._packer = _ShelfPacker(size, PADDING_TEXELS)
        self._cells: dict[int, _GlyphCell | None] = {}
        self._reported_missing: set[str] = set()
        self._deferred_missing: list[str] | None = None
        """Collects missing characters instead of logging them, for warn_missing_glyphs."""
        self._prepared_cache = _LRUCache(CACHE_ENTRIES)
        self._run_cache = _LRUCache(CACHE_ENTRIES)
        self._block_cache = _LRUCache(CACHE_ENTRIES)
        ascii_glyphs = {self._face.get_char_index(char) for char in PRINTABLE_ASCII}
        self._add_glyphs(ascii_glyphs | {self.replacement_glyph})

    @staticmethod
    def _check_arguments(font_path, em_px: int, spread_px: int, size: int) -> None:
        if not Path(font_path).is_file():
            raise FileNotFoundError(f"font file not found: {font_path}")
        if em_px < 1:
            raise ValueError(f"em_px must be at least 1, got {em_px}")
        low, high = SDF_SPREAD_RANGE
        if not low <= spread_px <= high:
            raise ValueError(f"spread_px must be from {low} to {high} texels, got {spread_px}")
        if size < 1:
            raise ValueError(f"size must be at least 1 texel, got {size}")

    def _open_font(self) -> None:
        self._face = freetype.Face(str(self.font_path))
        self._face.set_pixel_sizes(0, self.em_px)
        self._upem = self._face.units_per_EM
        self._hb_font = hb.Font(hb.Face(hb.Blob.from_file_path(str(self.font_path))))
        self.replacement_glyph = self._face.get_char_index(0xFFFD)
        self._ascender_units = self._face.ascender
        self._descender_units = -self._face.descender
        self._line_height_units = self._face.height

    # Layout --------------------------------------------------------------------------------

    def layout(self, text: str, size_px: float) -> TextRun:
        """Lay out one line of text at ``size_px`` pixels per em.

        Newlines and other line separators are laid out as spaces, and a tab advances by
        TAB_WIDTH_SPACES spaces. Whitespace draws no quad. Renders glyphs that are new to the
        atlas, which increments ``version``.

        Parameters
        ----------
        text : str
            The line to lay out.
        size_px : float
            Font size in pixels per em.

        Returns
        -------
        TextRun
            A cached, read-only run; equal arguments return the same object.

        Raises
        ------
        ValueError
            If ``size_px`` is not a positive finite number.
        AtlasFullError
            If a new glyph does not fit in the atlas.
        """
        _check_positive("size_px", size_px)
        key = (text, float(size_px))
        run = self._run_cache.get(key)
        if run is None:
            run = self._scale(self._prepare(text), float(size_px))
            self._run_cache.put(key, run)
        return run

    def _units_to_px(self, units: float, size_px: float) -> float:
        return units * size_px / self._upem

    def _scale(self, prepared: _PreparedText, size_px: float) -> TextRun:
        units_scale = size_px / self._upem
        texel_scale = size_px / self.em_px
        quads = prepared.origins * units_scale + prepared.boxes * texel_scale
        return TextRun(
            text=prepared.text,
            quads=_read_only(quads.astype(np.float32)),
            uvs=prepared.uvs,
            char_index=prepared.char_index,
            pen_x=_read_only((prepared.pen_units * units_scale).astype(np.float32)),
            advance=self._units_to_px(prepared.advance_units, size_px),
            ascender=self._units_to_px(self._ascender_units, size_px),
            descender=self._units_to_px(self._descender_units, size_px),
            line_height=self._units_to_px(self._line_height_units, size_px),
            size_px=size_px,
            sdf_spread_px=self.spread_px * texel_scale,
        )

    def _prepare(self, text: str) -> _PreparedText:
        prepared = self._prepared_cache.get(text)
        if prepared is None:
            prepared = self._prepare_uncached(text)
            self._prepared_cache.put(text, prepared)
        return prepared

    def _prepare_uncached(self, text: str) -> _PreparedText:
        glyph_ids, clusters, advances, offsets = self._shape(text)
        self._add_glyphs(set(glyph_ids.tolist()) - self._cells.keys())
        pen_before = np.cumsum(advances) - advances
        cells = [self._cells[glyph_id] for glyph_id in glyph_ids.tolist()]
        drawn = np.array([cell is not None for cell in cells], dtype=bool)
        origin_x = (pen_before + offsets[:, 0])[drawn]
        origin_y = -offsets[drawn, 1]
        drawn_cells = [cell for cell in cells if cell is not None]
        return _PreparedText(
            text=text,
            origins=np.stack([origin_x, origin_y, origin_x, origin_y], axis=1).astype(np.float64),
            boxes=self._cell_boxes(drawn_cells),
            uvs=_read_only(self._cell_uvs(drawn_cells)),
            char_index=_read_only(clusters[drawn].astype(np.int32)),
            pen_units=self._char_pen_units(len(text), clusters, pen_before, advances),
            advance_units=int(advances.sum()),
        )

    @staticmethod
    def _cell_boxes(cells: list[_GlyphCell]) -> np.ndarray:
        rows = [
            (cell.left, -cell.top, cell.left + cell.width, cell.height - cell.top) for cell in cells
        ]
        return np.array(rows, dtype=np.float64).reshape(len(cells), 4)

    def _cell_uvs(self, cells: list[_GlyphCell]) -> np.ndarray:
        rows = [(cell.x, cell.y, cell.x + cell.width, cell.y + cell.height) for cell in cells]
        return (np.array(rows, dtype=np.float64).reshape(len(cells), 4) / self.size).astype(
            np.float32
        )

    @staticmethod
    def _char_pen_units(
        length: int, clusters: np.ndarray, pen_before: np.ndarray, advances: np.ndarray
    ) -> np.ndarray:
        """Return the pen x in font units before each character, then the total advance."""
        pen = np.zeros(length + 1, dtype=np.float64)
        pen[length] = advances.sum()
        if length == 0 or len(clusters) == 0:
            return _read_only(pen)
        # Clusters rise monotonically in left-to-right text, so the cluster that contains
        # character i is the last one that starts at or before i.
        characters = np.arange(length)
        containing = clusters[np.searchsorted(clusters, characters, side="right") - 1]
        first_glyph = np.searchsorted(clusters, containing, side="left")
        pen[:length] = pen_before[first_glyph]
        return _read_only(pen)

    # Shaping -------------------------------------------------------------------------------

    def _shape(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shape text into glyph ids, clusters, x advances and (x, y) offsets in font units.

        Clusters are indices into ``text``. Glyphs of characters the font lacks are replaced
        with ``replacement_glyph``, and the missing characters are logged.
        """
        if not text:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, np.zeros((0, 2), dtype=np.int64)
        buffer = hb.Buffer()
        buffer.add_codepoints([ord(char) for char in text.translate(_SPACE_TRANSLATION)])
        buffer.guess_segment_properties()
        # NOTE: text is not reordered for bidirectional scripts, so right-to-left text is drawn
        # in logical order.
        buffer.direction = "ltr"
        hb.shape(self._hb_font, buffer, _SHAPING_FEATURES)
        glyph_ids = np.array([info.codepoint for info in buffer.glyph_infos], dtype=np.int64)
        clusters = np.array([info.cluster for info in buffer.glyph_infos], dtype=np.int64)
        positions = buffer.glyph_positions
        advances = np.array([position.x_advance for position in positions], dtype=np.int64)
        offsets = np.array(
            [(position.x_offset, position.y_offset) for position in positions], dtype=np.int64
        ).reshape(len(positions), 2)
        self._widen_tabs(text, clusters, advances)
        self._replace_missing(text, glyph_ids, clusters, advances)
        return glyph_ids, clusters, advances, offsets

    @staticmethod
    def _widen_tabs(text: str, clusters: np.ndarray, advances: np.ndarray) -> None:
        for glyph, cluster in enumerate(clusters.tolist()):
            if text[cluster] == "\t":
                advances[glyph] *= TAB_WIDTH_SPACES

    def _replace_missing(
        self, text: str, glyph_ids: np.ndarray, clusters: np.ndarray, advances: np.ndarray
    ) -> None:
        missing_glyphs = np.flatnonzero(glyph_ids == 0)
        if len(missing_glyphs) == 0:
            return
        cluster_ends = [*clusters.tolist(), len(text)]
        missing_chars = []
        for glyph in missing_glyphs.tolist():
            start = cluster_ends[glyph]
            end = min(end for end in cluster_ends if end > start)
            missing_chars += self._chars_without_glyph(text[start:end])
        self._warn_missing(missing_chars)
        if self.replacement_glyph:
            glyph_ids[missing_glyphs] = self.replacement_glyph
            advances[missing_glyphs] = self._hb_font.get_glyph_h_advance(self.replacement_glyph)

    def _chars_without_glyph(self, cluster_text: str) -> list[str]:
        chars = [char for char in cluster_text if not self._face.get_char_index(char)]
        return chars or [cluster_text[0]]

    def _warn_missing(self, chars: list[str]) -> None:
        new_chars = [char for char in dict.fromkeys(chars) if char not in self._reported_missing]
        if not new_chars:
            return
        self._reported_missing.update(new_chars)
        if self._deferred_missing is not None:
            self._deferred_missing += new_chars
            return
        names = ", ".join(f"{char!r} (U+{ord(char):04X})" for char in new_chars)
        replacement = "U+FFFD" if self.replacement_glyph else ".notdef"
        log.warning(
            "font %s has no glyph for %s; drawing the replacement glyph %s",
            self.font_path.name,
            names,
            replacement,
        )

    # Atlas ---------------------------------------------------------------------------------

    def _add_glyphs(self, glyph_ids: set[int]) -> None:
        """Render glyphs into the atlas and increment ``version`` once if any were added.

        Raises
        ------
        AtlasFullError
            If a glyph does not fit. The glyphs placed before it stay in the atlas.
        """
        if not glyph_ids:
            return
        _set_sdf_spread(self.spread_px)
        rendered = [(glyph_id, self._render_sdf(glyph_id)) for glyph_id in sorted(glyph_ids)]
        rendered.sort(key=_packing_order)
        added = 0
        try:
            for glyph_id, sdf in rendered:
                self._cells[glyph_id] = None if sdf is None else self._place(glyph_id, *sdf)
                added += 1
        finally:
            if added:
                self.version += 1

    def _render_sdf(self, glyph_id: int) -> tuple[np.ndarray, int, int] | None:
        """Render a glyph's SDF bitmap and return it with its left and top in texels.

        Returns None for a glyph without an outline, such as a space.
        """
        self._face.load_glyph(glyph_id, _FREETYPE_LOAD_FLAGS)
        slot = self._face.glyph
        if slot.outline.n_points == 0:
            return None
        slot.render(freetype.FT_RENDER_MODE_SDF)
        bitmap = slot.bitmap
        if bitmap.width == 0 or bitmap.rows == 0:
            return None
        rows = np.array(bitmap.buffer, dtype=np.uint8).reshape(bitmap.rows, bitmap.pitch)
        return rows[:, : bitmap.width], slot.bitmap_left, slot.bitmap_top

    def _place(self, glyph_id: int, sdf: np.ndarray, left: int, top: int) -> _GlyphCell:
        height, width = sdf.shape
        position = self._packer.place(width, height)
        if position is None:
            raise AtlasFullError(
                f"glyph atlas of {self.font_path.name} is full ({self.size}x{self.size} texels, "
                f"{len(self._cells)} glyphs); glyph {glyph_id} of {width}x{height} texels does "
                "not fit. Create the GlyphAtlas with a larger size or a smaller em_px."
            )
        x, y = position
        self.pixels[y : y + height, x : x + width] = sdf
        return _GlyphCell(x=x, y=y, width=width, height=height, left=left, top=top)

    # Fitting -------------------------------------------------------------------------------

    def fit(
        self,
        text: str,
        size_px: float,
        max_width: float,
        *,
        max_lines: int = 2,
        min_size_px: float | None = None,
    ) -> TextBlock:
        """Wrap and shrink text to fit ``max_lines`` lines of at most ``max_width`` pixels.

        The steps, in order, stop at the first that fits:

        1. Wrap at spaces and tabs at ``size_px``.
        2. Wrap at spaces and tabs at sizes smaller by SHRINK_FACTOR each, down to
           ``min_size_px``.
        3. At ``min_size_px``, also break words wider than ``max_width`` between characters.
           A broken word starts a new line.
        4. Keep the first ``max_lines`` lines and shorten the last one, character by character,
           until it fits with an ellipsis appended.

        Forced line breaks (``\\n``, ``\\r\\n``, ``\\r``, U+2028, U+2029) always start a new line
        and count toward ``max_lines``. Spaces at the start and end of a line are dropped.
        Empty text gives a block with no lines.

        NOTE: when ``max_width`` is narrower than a single character or the ellipsis at
        ``min_size_px``, lines can be wider than ``max_width``, and a warning is logged.

        Parameters
        ----------
        text : str
            Text to fit.
        size_px : float
            Preferred font size in pixels per em.
        max_width : float
            Maximum line advance in pixels.
        max_lines : int
            Maximum number of lines, at least 1.
        min_size_px : float, optional
            Smallest font size to try; defaults to ``size_px / 2``.

        Returns
        -------
        TextBlock
            A cached block; equal arguments return the same object.
        """
        min_size_px = size_px / 2 if min_size_px is None else min_size_px
        self._check_fit_arguments(size_px, max_width, max_lines, min_size_px)
        key = (text, float(size_px), float(max_width), max_lines, float(min_size_px))
        block = self._block_cache.get(key)
        if block is None:
            block = self._fit_uncached(text, size_px, max_width, max_lines, min_size_px)
            self._block_cache.put(key, block)
        return block

    @staticmethod
    def _check_fit_arguments(size_px, max_width, max_lines, min_size_px) -> None:
        _check_positive("size_px", size_px)
        _check_positive("max_width", max_width)
        _check_positive("min_size_px", min_size_px)
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, got {max_lines}")
        if min_size_px > size_px:
            raise ValueError(f"min_size_px ({min_size_px}) must not exceed size_px ({size_px})")

    def _fit_uncached(self, text, size_px, max_width, max_lines, min_size_px) -> TextBlock:
        if not text:
            return TextBlock(lines=[], size_px=size_px, width=0.0, height=0.0)
        for size in _shrink_sizes(size_px, min_size_px):
            spans = self._wrap(text, size, max_width, break_words=False)
            if len(spans) <= max_lines and self._all_fit(text, spans, size, max_width):
                return self._make_block(text, spans, size)
        spans = self._wrap(text, min_size_px, max_width, break_words=True)
        if len(spans) <= max_lines and self._all_fit(text, spans, min_size_px, max_width):
            return self._make_block(text, spans, min_size_px)
        return self._truncate(text, spans[:max_lines], min_size_px, max_width)

    def _fits(self, line: str, size_px: float, max_width: float) -> bool:
        return self._units_to_px(self._prepare(line).advance_units, size_px) <= max_width

    def _all_fit(self, text: str, spans, size_px: float, max_width: float) -> bool:
        return all(self._fits(text[start:end], size_px, max_width) for start, end in spans)

    def _wrap(self, text: str, size_px: float, max_width: float, *, break_words: bool):
        """Return the (start, end) span of each line after greedy wrapping at spaces."""
        lines = []
        for paragraph_start, paragraph_end in _split_paragraphs(text):
            words = _find_words(text, paragraph_start, paragraph_end)
            if break_words:
                words = self._break_words(text, words, size_px, max_width)
            paragraph_lines = self._wrap_words(text, words, size_px, max_width)
            if not paragraph_lines:
                paragraph_lines = [(paragraph_start, paragraph_start)]
            lines += paragraph_lines
        return lines

    def _wrap_words(self, text: str, words, size_px: float, max_width: float):
        lines = []
        line_start = line_end = None
        for word_start, word_end in words:
            if line_start is None:
                line_start, line_end = word_start, word_end
            elif self._fits(text[line_start:word_end], size_px, max_width):
                line_end = word_end
            else:
                lines.append((line_start, line_end))
                line_start, line_end = word_start, word_end
        if line_start is not None:
            lines.append((line_start, line_end))
        return lines

    def _break_words(self, text: str, words, size_px: float, max_width: float):
        pieces = []
        for word in words:
            pieces += self._break_word(text, word, size_px, max_width)
        return pieces

    def _break_word(self, text: str, word, size_px: float, max_width: float):
        """Split a word wider than ``max_width`` into the longest pieces that fit."""
        start, end = word
        if self._fits(text[start:end], size_px, max_width):
            return [word]
        pieces = []
        while start < end:
            piece_end = start + 1
            while piece_end < end and self._fits(text[start : piece_end + 1], size_px, max_width):
                piece_end += 1
            # Keep combining marks with their base character.
            while start + 1 < piece_end < end and unicodedata.combining(text[piece_end]):
                piece_end -= 1
            pieces.append((start, piece_end))
            start = piece_end
        return pieces

    def _truncate(self, text: str, spans, size_px: float, max_width: float) -> TextBlock:
        start, end = spans[-1]
        last_line = self._shorten_with_ellipsis(text[start:end], size_px, max_width)
        block = self._make_block(text, spans[:-1], size_px, extra_line=(last_line, start))
        if block.width > max_width:
            preview = text if len(text) <= 40 else text[:40] + ELLIPSIS
            log.warning(
                "text %r does not fit in max_width %.1f px at min_size_px %.1f because a single "
                "character or the ellipsis is wider, so lines exceed max_width",
                preview,
                max_width,
                size_px,
            )
        return block

    def _shorten_with_ellipsis(self, line: str, size_px: float, max_width: float) -> str:
        """Return the longest start of ``line`` that fits with ELLIPSIS appended."""
        for cut in range(len(line), -1, -1):
            candidate = line[:cut].rstrip(_BREAK_SPACES) + ELLIPSIS
            if self._fits(candidate, size_px, max_width):
                return candidate
        return ELLIPSIS

    def _make_block(self, text: str, spans, size_px: float, *, extra_line=None) -> TextBlock:
        lines = [self.layout(text[start:end], size_px) for start, end in spans]
        starts = [start for start, _ in spans]
        if extra_line is not None:
            lines.append(self.layout(extra_line[0], size_px))
            starts.append(extra_line[1])
        line_height = self._units_to_px(self._line_height_units, size_px)
        return TextBlock(
            lines=lines,
            size_px=size_px,
            width=max((run.advance for run in lines), default=0.0),
            height=len(lines) * line_height,
            line_starts=tuple(starts),
            truncated=extra_line is not None,
        )


def preload_glyphs(texts_by_atlas: dict[GlyphAtlas, list[str]]) -> list[str]:
    """Lay out each atlas's texts before the first frame and warn once about missing glyphs.

    Logs one warning that names every character the fonts lack, and the atlases then
    skip their own warning for those characters. Returns the characters, each once.
    Raises UsageError when the texts need more glyphs than an atlas holds.
    """
    missing: list[str] = []
    for atlas, texts in texts_by_atlas.items():
        atlas._deferred_missing = []
        try:
            for text in texts:
                atlas.layout(text, atlas.em_px)
        except AtlasFullError:
            raise UsageError(
                f"the scene's texts use more different characters than the glyph atlas of "
                f"{atlas.font_path.name} holds ({len(atlas._cells)} glyphs in "
                f"{atlas.size}x{atlas.size} texels); use fewer different characters, for "
                "example fewer scripts or accented letters.") from None
        finally:
            missing += atlas._deferred_missing
            atlas._deferred_missing = None
    missing = list(dict.fromkeys(missing))
    if not missing:
        return []
    for atlas in texts_by_atlas:
        atlas._reported_missing.update(missing)
    names = ", ".join(f"{char!r} (U+{ord(char):04X})" for char in missing)
    replacement = "U+FFFD" if next(iter(texts_by_atlas)).replacement_glyph else ".notdef (a box)"
    fonts = ", ".join(dict.fromkeys(atlas.font_path.name for atlas in texts_by_atlas))
    log.warning("the fonts %s have no glyph for %s; these characters are drawn as the "
                "replacement glyph %s", fonts, names, replacement)
    return missing
