"""Lets the geometry functions take numpy arrays or torch tensors alike.

The maths is written once, in torch (so it is differentiable and batched); numpy inputs are converted to
float64 tensors on the way in and back to numpy on the way out.
"""
from __future__ import annotations

import functools

import numpy as np
import torch


def numpy_compatible(fn):
    """Decorator: if any positional/keyword argument is an ndarray, run ``fn`` in torch float64, return numpy."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        uses_numpy = any(isinstance(a, np.ndarray) for a in args) or any(
            isinstance(v, np.ndarray) for v in kwargs.values()
        )
        if not uses_numpy:
            return fn(*args, **kwargs)
        convert = lambda a: torch.from_numpy(np.array(a, dtype=np.float64)) if isinstance(a, np.ndarray) else a
        out = fn(*[convert(a) for a in args], **{k: convert(v) for k, v in kwargs.items()})
        return _to_numpy(out)

    return wrapper


def _to_numpy(out):
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    return out


def as_tensor(x, like: torch.Tensor | None = None) -> torch.Tensor:
    """Tensor of ``x`` with the dtype/device of ``like`` (float32 when no reference is given)."""
    if isinstance(x, torch.Tensor):
        return x if like is None else x.to(dtype=like.dtype, device=like.device)
    if like is None:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32)
    return torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)
