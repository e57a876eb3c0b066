"""What makes a training run reproducible and traceable: seeding, the RNG states a ``--resume`` restores, and the
git commit of the code that trained a checkpoint.

The checkpoint format (``model/checkpoint.py``) stores the captured state as an opaque ``rng_state`` entry and the
commit in ``metadata``; the trainer (``training/train.py``) is the one caller of these functions.
"""
from __future__ import annotations

import os
import random
import subprocess
from typing import Optional

import numpy as np
import torch

__all__ = ["seed_everything", "capture_rng_state", "restore_rng_state", "git_commit"]


def seed_everything(seed: int) -> None:
    """Seed torch, numpy's global generator and Python's ``random`` (a fresh run)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def capture_rng_state() -> dict:
    """torch / numpy / python RNG states in a ``weights_only``-safe form (tensors, lists, ints, strings)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [int(py_state[0]), [int(x) for x in py_state[1]], py_state[2]],
    }


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def git_commit(cwd: Optional[str] = None) -> Optional[str]:
    """The current git commit hash of ``cwd`` (default: this package's folder), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
