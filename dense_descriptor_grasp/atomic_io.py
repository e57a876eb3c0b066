"""Atomic file writes: nothing half-written is ever left under the final name.

Every writer in the package (datasets, checkpoints, reference files, reports, PNGs) goes through
:func:`atomic_write`: the content goes to a temporary file in the destination folder, which then replaces the
destination with ``os.replace`` (atomic on POSIX). On any error the temporary file is removed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["TEMP_PREFIX", "atomic_write", "atomic_write_bytes", "atomic_write_text"]

# Temporary files are named TEMP_PREFIX + final name + random part + ".tmp"; an interrupted process can leave
# one behind, and folders that are resumed (datasets) delete files with this prefix.
TEMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write: Callable[[BinaryIO], None], fsync: bool = False) -> Path:
    """Call ``write(f)`` on a binary temporary file beside ``path``, then move it onto ``path``.

    Args:
        path: destination; its folder is created when missing.
        write: fills the open binary file.
        fsync: flush the data to disk before the rename (checkpoints: survive a power cut, not only a crash).
    Returns:
        ``path`` as a :class:`~pathlib.Path`. The file gets the usual permissions (``0666 & ~umask``), not
        ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
