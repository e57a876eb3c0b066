"""Atomic file writes: nothing half-written is ever left under the final name.

Every writer in the package (datasets, checkpoints, reference files, reports, PNGs) goes through
:func:`atomic_write`: the content goes to a temporary file in the destination folder, which then replaces the
destination with ``os.replace`` (atomic on POSIX). On any error the temporary file is removed; one left by a
killed writer is removed by the next write of the same destination.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["TEMP_PREFIX", "atomic_write", "atomic_write_bytes", "atomic_write_text", "remove_stale_temporaries"]

# Temporary files are named TEMP_PREFIX + final name + "." + writer pid + "." + random part + ".tmp". A killed
# process leaves its one behind (a checkpoint's is hundreds of MB): the next write of the same target removes
# those whose writer is gone (remove_stale_temporaries). Folders that are resumed (datasets) also delete files
# with this prefix.
TEMP_PREFIX = ".tmp-"
# temporaries of older versions had no pid: removed when untouched for this long (a live writer keeps writing)
LEGACY_TEMP_AGE_S = 600.0


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, another user's
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """Delete the temporaries of ``path`` left by writers that no longer run; returns the removed paths.

    A temporary whose writer pid is alive is kept (another thread or process may be writing the same target
    right now); one without a pid (older versions) only when unmodified for ``LEGACY_TEMP_AGE_S``. Errors
    (a file vanishing meanwhile, permissions) are ignored: cleaning never fails a write.
    """
    path = Path(path)
    name = re.escape(TEMP_PREFIX + path.name)
    with_pid = re.compile(rf"^{name}\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
    legacy = re.compile(rf"^{name}\.[A-Za-z0-9_]+\.tmp$")
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(TEMP_PREFIX + path.name + ".")]
    except OSError:
        return removed
    now = time.time()
    for candidate in candidates:
        try:
            match = with_pid.match(candidate.name)
            if match:
                stale = not _pid_alive(int(match.group(1)))
            elif legacy.match(candidate.name):
                stale = now - candidate.stat().st_mtime > LEGACY_TEMP_AGE_S
            else:
                continue
            if stale:
                candidate.unlink()
                removed.append(candidate)
        except OSError:
            continue
    return removed


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
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=str(path.parent))
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


# ---------------------------------------------------------------------------------------------- JSON and figures
# The one JSON writer and the one figure writer of the package (reports, states, manifests, camera files, plots).
__all__ += ["json_safe", "dumps_json_rows", "atomic_write_json", "atomic_save_figure"]


def json_safe(obj):
    """``obj`` for strict JSON: NaN / inf -> None, numpy scalars -> Python numbers, arrays and tuples -> lists,
    dict keys -> str (recursively; anything else is returned as it is)."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    return obj


def _is_flat(value) -> bool:
    return isinstance(value, list) and all(isinstance(x, (int, float, str, bool)) or x is None for x in value)


def dumps_json_rows(obj, indent: int = 0) -> str:
    """Deterministic, readable JSON: sorted keys, one-space indent, one matrix row (or flat list) per line."""
    import json

    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps_json_rows(obj[k], indent + 1)}" for k in sorted(obj)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and not _is_flat(obj):
        return "[\n" + ",\n".join(inner + dumps_json_rows(x, indent + 1) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def atomic_write_json(path, obj, *, indent: int | None = 2, strict: bool = False, rows: bool = False) -> Path:
    """Write ``obj`` as JSON with a trailing newline, atomically; returns ``path`` as a Path.

    Args:
        indent: ``json.dumps`` indentation (ignored with ``rows``).
        strict: strict JSON: :func:`json_safe` first (NaN / inf -> null, numpy -> Python), and refuse anything
            else JSON cannot hold (reports).
        rows: the deterministic layout of :func:`dumps_json_rows` (sorted keys, a matrix row per line; the dataset
            format's manifests and camera files).
    """
    import json

    if strict:
        obj = json_safe(obj)
    text = dumps_json_rows(obj) if rows else json.dumps(obj, indent=indent, allow_nan=not strict)
    return atomic_write_text(path, text + "\n")


def atomic_save_figure(fig, path, dpi: int = 110, bbox_inches: str | None = "tight") -> Path:
    """Save a matplotlib figure as PNG at ``path`` atomically (rendered in memory first); returns the Path."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches=bbox_inches)
    return atomic_write_bytes(path, buf.getvalue())
