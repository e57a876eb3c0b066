import os

import pytest

from dense_descriptor_grasp.atomic_io import atomic_write, atomic_write_bytes, atomic_write_text


def test_writes_content_with_usual_permissions(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert path.read_text() == "hello"
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write_bytes(tmp_path / "a.bin", b"old")

    def broken(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


KILLED_WRITER = """
import sys, time
from dense_descriptor_grasp.atomic_io import atomic_write

def write(f):
    f.write(b"x" * 100000)
    f.flush()
    print("writing", flush=True)
    time.sleep(60)

atomic_write(sys.argv[1], write)
"""


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    """Issue 12, item 8: a kill during a (checkpoint) write left a .tmp-last.pt.*.tmp that nothing removed."""
    import signal
    import subprocess
    import sys

    target = tmp_path / "last.pt"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        assert len(temporaries(tmp_path)) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert len(temporaries(tmp_path)) == 1 and not target.exists()       # what a kill leaves behind
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and temporaries(tmp_path) == []


def test_live_and_foreign_temporaries_are_kept(tmp_path):
    import time

    from dense_descriptor_grasp.atomic_io import LEGACY_TEMP_AGE_S

    mine = tmp_path / f".tmp-last.pt.{os.getpid()}.abcd1234.tmp"       # a writer of this process (another thread)
    other_target = tmp_path / ".tmp-best.pt.999999999.abcd1234.tmp"    # another file's temporary
    fresh_legacy = tmp_path / ".tmp-last.pt.abcd1234.tmp"              # pid-less (older version), recent
    old_legacy = tmp_path / ".tmp-last.pt.zzzz9999.tmp"                # pid-less, untouched for long
    for p in (mine, other_target, fresh_legacy, old_legacy):
        p.write_bytes(b"partial")
    old = time.time() - LEGACY_TEMP_AGE_S - 10
    os.utime(old_legacy, (old, old))
    atomic_write_bytes(tmp_path / "last.pt", b"ok")
    assert temporaries(tmp_path) == sorted([mine.name, other_target.name, fresh_legacy.name])
