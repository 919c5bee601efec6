"""Write output files under a temporary name beside their final path."""

from __future__ import annotations

import os
from pathlib import Path

from hyperloss_gl.errors import UsageError


def open_temporary_beside(path: Path) -> tuple[Path, int]:
    """Create ``.STEM.partial-PID.SUFFIX`` beside ``path`` and return it with an open descriptor.

    The file is created with mode 0o666 so the umask sets its permissions, as
    for any new file (``mkstemp`` would leave it readable by its owner only).
    The caller writes, then renames it onto ``path`` with ``os.replace``.
    """
    temporary = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as error:
        raise UsageError(f"folder {path.parent} is not writable ({error.strerror or error}); "
                         "choose another output path or fix its permissions.") from None
    return temporary, handle
