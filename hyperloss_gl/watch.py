"""Detect edits to the files that the live preview reloads, by polling.

Polling file metadata a few times a second needs no extra dependency and works
the same on every platform and file system, network mounts included. A file
counts as changed only when its content hash differs from the last one seen,
so an editor's autosave that rewrites the same text triggers no reload. A
change is reported once the file's metadata has stayed the same for
``settle_s``, so the write, rename and touch of one editor save make one reload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

POLL_INTERVAL_S = 0.25
"""Seconds between two looks at the files' metadata."""
SETTLE_S = 0.2
"""Seconds a file's metadata must stay unchanged before its content is hashed."""

_MISSING = None


def _stat_key(path: Path):
    try:
        stat = path.stat()
    except FileNotFoundError:
        return _MISSING
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _content_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


class FileWatcher:
    """Poller of a set of files that reports those whose content changed since the last report.

    :meth:`poll` takes the current time from the caller, in seconds of any
    monotonic clock, so tests can drive it without waiting.
    """

    def __init__(self, paths: Iterable[Path] = (), poll_interval_s: float = POLL_INTERVAL_S,
                 settle_s: float = SETTLE_S):
        self.poll_interval_s = poll_interval_s
        self.settle_s = settle_s
        self._stats: dict[Path, object] = {}
        self._hashes: dict[Path, str | None] = {}
        self._changed_at: dict[Path, float] = {}
        self._last_poll = -float("inf")
        self.watch(paths)

    @property
    def paths(self) -> set[Path]:
        return set(self._stats)

    def watch(self, paths: Iterable[Path]) -> None:
        """Add files to the watched set, taking their current content as the baseline."""
        for path in paths:
            path = Path(path).resolve()
            if path in self._stats:
                continue
            self._stats[path] = _stat_key(path)
            self._hashes[path] = _content_hash(path)

    def accept(self, paths: Iterable[Path]) -> None:
        """Take the files' current content as the baseline, for example after a forced reload."""
        for path in paths:
            path = Path(path).resolve()
            self._stats[path] = _stat_key(path)
            self._hashes[path] = _content_hash(path)
            self._changed_at.pop(path, None)

    def poll(self, now: float) -> list[Path]:
        """Return the watched files whose content changed and settled, sorted by path.

        Looks at the files at most once per ``poll_interval_s``. Calls in
        between return an empty list at the cost of one comparison.
        """
        if now - self._last_poll < self.poll_interval_s:
            return []
        self._last_poll = now
        changed = []
        for path, previous in self._stats.items():
            current = _stat_key(path)
            if current != previous:
                self._stats[path] = current
                self._changed_at[path] = now
                continue
            seen = self._changed_at.get(path)
            if seen is None or now - seen < self.settle_s:
                continue
            del self._changed_at[path]
            digest = _content_hash(path)
            if digest != self._hashes[path]:
                self._hashes[path] = digest
                changed.append(path)
        return sorted(changed)

