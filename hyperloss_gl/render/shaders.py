"""Load GLSL programs from files, resolving ``#include`` and keeping line numbers right.

Every source file gets a number, and ``#line`` directives tell the compiler
which file and line each part came from. :func:`explain_compile_error` maps
the compiler's ``SOURCE:LINE`` back to ``file.glsl:LINE``, so an error names
the file the user edits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import moderngl

from hyperloss_gl import log
from hyperloss_gl.errors import HyperlossError

INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$')
# Mesa writes "0:12(5): error: ...", NVIDIA "0(12) : error ...".
COMPILER_LOCATION = re.compile(r"\b(\d+)[:(](\d+)\)?(?:\((\d+)\))?")

PROGRAMS = {
    "shapes": ("shapes.vert", "shapes.frag"),
    "lines": ("lines.vert", "lines.frag"),
    "points": ("points.vert", "points.frag"),
    "dust": ("dust.vert", "dust.frag"),
    "splat": ("splat.vert", "splat.frag"),
    "text": ("text.vert", "text.frag"),
    "bloom_down": ("fullscreen.vert", "bloom_down.frag"),
    "bloom_up": ("fullscreen.vert", "bloom_up.frag"),
    "composite": ("fullscreen.vert", "composite.frag"),
    "composite_yuv": ("fullscreen.vert", "composite_yuv.frag"),
    "accumulate": ("fullscreen.vert", "accumulate.frag"),
}
"""Every program the renderer uses: name to (vertex, fragment) file names."""


class ShaderError(HyperlossError):
    """A shader file that is missing or fails to compile or link."""


@dataclass
class Source:
    """One stage's GLSL text with the files it was built from."""

    text: str
    files: list[Path] = field(default_factory=list)
    """Files by source-string number, as used in ``#line`` directives."""


def expand(path: Path, files: list[Path] | None = None, stack: tuple[Path, ...] = ()) -> Source:
    """Read ``path`` and inline its ``#include "name"`` lines, relative to its folder."""
    files = files if files is not None else []
    if path in stack:
        chain = " -> ".join(p.name for p in (*stack, path))
        raise ShaderError(f"shader include cycle: {chain}; remove one of the #include lines.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        where = f" (included from {stack[-1]})" if stack else ""
        raise ShaderError(f"shader file not found: {path}{where}. Check --shaders, or copy "
                          "the shipped shaders folder again.") from None
    if path not in files:
        files.append(path)
    number = files.index(path)
    out = []
    for i, line in enumerate(lines, start=1):
        match = INCLUDE.match(line)
        if match:
            included = expand(path.parent / match.group(1), files, (*stack, path))
            out.append(included.text)
            out.append(f"#line {i + 1} {number}")
        elif line.lstrip().startswith("#version"):
            out.append(line)
            out.append(f"#line {i + 1} {number}")
        else:
            out.append(line)
    # An included file needs its own "#line 1 N" too, or the compiler goes on counting
    # the lines of the file that includes it.
    if not (lines and lines[0].lstrip().startswith("#version")):
        out.insert(0, f"#line 1 {number}")
    return Source("\n".join(out) + "\n", files)


def explain_compile_error(message: str, files: list[Path]) -> str:
    """Rewrite the compiler's ``SOURCE:LINE(COLUMN)`` locations as ``file:LINE:COLUMN``."""

    def rename(match: re.Match) -> str:
        number, line = int(match.group(1)), match.group(2)
        if number >= len(files):
            return match.group(0)
        column = f":{match.group(3)}" if match.group(3) else ""
        return f"{files[number].name}:{line}{column}"

    lines = [COMPILER_LOCATION.sub(rename, line, count=1) for line in message.splitlines()]
    return "\n".join(line for line in lines if line.strip())


class ShaderLibrary:
    """Compiles the named programs from one folder and remembers what they read."""

    def __init__(self, ctx: moderngl.Context, folder: Path):
        self.ctx = ctx
        self.folder = Path(folder)
        self.programs: dict[str, moderngl.Program] = {}
        self.files: set[Path] = set()

    def compile(self, name: str) -> moderngl.Program:
        """Compile and link one program; raise ``ShaderError`` with file and line on failure."""
        vertex_name, fragment_name = PROGRAMS[name]
        vertex = expand(self.folder / vertex_name)
        fragment = expand(self.folder / fragment_name)
        self.files.update(vertex.files + fragment.files)
        try:
            program = self.ctx.program(vertex_shader=vertex.text, fragment_shader=fragment.text)
        except moderngl.Error as error:
            text = str(error)
            files = fragment.files if "fragment_shader" in text else vertex.files
            detail = explain_compile_error(text, files)
            raise ShaderError(f"shader program '{name}' failed to build:\n{detail}") from None
        return program

    def compile_all(self) -> dict[str, moderngl.Program]:
        """Compile every program; all must succeed before any replaces the current set."""
        programs = {}
        try:
            for name in PROGRAMS:
                programs[name] = self.compile(name)
        except ShaderError:
            for program in programs.values():
                program.release()
            raise
        for old in self.programs.values():
            old.release()
        self.programs = programs
        log.debug("compiled %d shader programs from %s", len(programs), self.folder)
        return programs

    def fingerprint(self) -> str:
        """Return a hash of every shader file's content, to detect real edits."""
        digest = hashlib.sha256()
        for path in sorted(self.folder.glob("*")):
            if path.suffix in (".glsl", ".vert", ".frag"):
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()
