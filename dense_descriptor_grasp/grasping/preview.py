"""A stable rgb8 picture of a D-dimensional descriptor image (ROS-free).

Choice: a *fixed random projection seeded by D* (not a per-frame PCA, whose sign and order flip
between frames, and not a PCA stored per model, which would need an extra file beside every
checkpoint). The 3 x D projection has orthonormal rows drawn from ``numpy.random.default_rng(SEED + D)``,
so the same descriptor always gets the same colour, in every frame, process and machine. Each pixel's
descriptor is L2-normalised before projection (the preview does not depend on the descriptor scale),
and a projection ``p`` in [-1, 1] is shown as ``0.5 + 0.5 * gain * p`` clipped to [0, 1]. The default
gain ``sqrt(D / 3)`` spreads random unit vectors over the colour range (their projections have
standard deviation ``1 / sqrt(D)``).
"""
from __future__ import annotations

import numpy as np

SEED = 20240607


def preview_projection(descriptor_dim: int) -> np.ndarray:
    """(3, D) float32 projection with orthonormal rows (for D < 3 the first D rows of the identity, padded)."""
    d = int(descriptor_dim)
    if d < 1:
        raise ValueError(f"descriptor_dim must be >= 1, got {descriptor_dim}")
    if d < 3:
        P = np.zeros((3, d), dtype=np.float64)
        P[:d, :d] = np.eye(d)
        return P.astype(np.float32)
    rng = np.random.default_rng(SEED + d)
    q, r = np.linalg.qr(rng.standard_normal((d, 3)))
    q = q * np.sign(np.diag(r))[None, :]  # unique QR: deterministic signs
    return q.T.astype(np.float32)


def descriptor_preview(descriptors, gain: float | None = None) -> np.ndarray:
    """(D, H, W) descriptors -> (H, W, 3) uint8 RGB with the fixed projection of :func:`preview_projection`."""
    if hasattr(descriptors, "detach"):
        descriptors = descriptors.detach().cpu().numpy()
    desc = np.asarray(descriptors, dtype=np.float32)
    if desc.ndim != 3:
        raise ValueError(f"descriptors must be (D, H, W), got shape {desc.shape}")
    d, h, w = desc.shape
    flat = desc.reshape(d, -1)
    # einsum, not BLAS matmul: for a 3xD by DxN product OpenBLAS threads cost 10-25x more on a busy 2-core machine
    proj = np.einsum("cd,dn->cn", preview_projection(d), flat)             # (3, H*W)
    norms = np.sqrt(np.einsum("dn,dn->n", flat, flat))                   # per-pixel length
    g = np.sqrt(max(d, 3) / 3.0) if gain is None else float(gain)
    # 255 * (0.5 + 0.5 g p / |x|) + 0.5, clipped; NaN (zero or non-finite descriptors) -> 0
    scale = (127.5 * g) / np.maximum(norms, 1e-12)
    rgb = proj * scale[None, :]
    rgb += 128.0
    np.clip(rgb, 0.0, 255.0, out=rgb)
    rgb = np.nan_to_num(rgb, nan=0.0, copy=False)
    return np.ascontiguousarray(rgb.astype(np.uint8).T).reshape(h, w, 3)
