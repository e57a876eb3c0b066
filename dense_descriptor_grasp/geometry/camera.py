"""Pinhole camera model and depth decoding (REP 118: depth is distance along the optical axis).

Conventions: pixels are ``(u, v) = (column, row)``; ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``;
depth in metres with 0 meaning "no depth". Every function is vectorised over leading batch dimensions
and accepts numpy arrays or torch tensors (numpy in, numpy out).
"""
from __future__ import annotations

import numpy as np
import torch

from ._backend import numpy_compatible

__all__ = [
    "project",
    "backproject",
    "backproject_depth_image",
    "pixel_grid",
    "decode_depth",
    "valid_depth",
    "check_intrinsics",
    "scale_intrinsics",
    "resize_depth_nearest",
    "surface_normals",
]


def _intrinsics(K: torch.Tensor, extra_dims: int):
    """fx, fy, cx, cy of ``K (*B, 3, 3)``, each shaped ``(*B, 1 x extra_dims)`` to broadcast over points."""
    index = (...,) + (None,) * extra_dims
    return K[..., 0, 0][index], K[..., 1, 1][index], K[..., 0, 2][index], K[..., 1, 2][index]


@numpy_compatible
def project(points, K):
    """Project camera-frame points to pixels.

    Args:
        points: ``(*B, N, 3)`` points in the camera optical frame (z forward).
        K: ``(*B, 3, 3)`` or ``(3, 3)`` intrinsics.
    Returns:
        ``(uv (*B, N, 2), z (*B, N))``; ``uv`` is undefined (inf/nan) where ``z <= 0``.
    """
    K = K.to(points.dtype)
    fx, fy, cx, cy = _intrinsics(K, 1)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    u = fx * x / z + cx
    v = fy * y / z + cy
    return torch.stack([u, v], dim=-1), z


@numpy_compatible
def backproject(uv, depth, K):
    """Back-project pixels with depth to camera-frame points: ``x = (u - cx) z / fx``, ``y = (v - cy) z / fy``.

    Args:
        uv: ``(*B, N, 2)`` pixel coordinates (u = column, v = row).
        depth: ``(*B, N)`` depth in metres along the optical axis.
        K: ``(*B, 3, 3)`` or ``(3, 3)`` intrinsics.
    Returns:
        ``(*B, N, 3)`` points in the camera optical frame.
    """
    K = K.to(uv.dtype)
    depth = depth.to(uv.dtype)
    fx, fy, cx, cy = _intrinsics(K, 1)
    x = (uv[..., 0] - cx) * depth / fx
    y = (uv[..., 1] - cy) * depth / fy
    return torch.stack([x, y, depth], dim=-1)


def pixel_grid(height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """``(H, W, 2)`` grid of pixel coordinates ``(u, v)`` = (column, row)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device),
        torch.arange(width, dtype=dtype, device=device),
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


@numpy_compatible
def backproject_depth_image(depth, K):
    """Back-project every pixel of a depth image.

    Args:
        depth: ``(*B, H, W)`` metres (0 = invalid; those pixels give points with z = 0).
        K: ``(*B, 3, 3)`` or ``(3, 3)`` intrinsics.
    Returns:
        ``(*B, H, W, 3)`` points in the camera optical frame.
    """
    height, width = depth.shape[-2:]
    grid = pixel_grid(height, width, dtype=depth.dtype, device=depth.device)
    K = K.to(depth.dtype)
    fx, fy, cx, cy = _intrinsics(K, 2)
    x = (grid[..., 0] - cx) * depth / fx
    y = (grid[..., 1] - cy) * depth / fy
    return torch.stack([x, y, depth], dim=-1)


def decode_depth(raw: np.ndarray, encoding: str, depth_scale: float | None = None) -> np.ndarray:
    """Decode a raw depth image to float32 metres with 0 = "no depth".

    Args:
        raw: ``(H, W)`` array as carried by the message or file.
        encoding: ``"16UC1"``/``"mono16"`` (millimetres, or ``depth_scale`` metres per unit when given, 0 is
            invalid) or ``"32FC1"`` (metres; 0, NaN and inf are invalid; negative values are invalid too).
        depth_scale: metres per unit for integer depth; default 0.001 (millimetres).
    Returns:
        ``(H, W)`` float32 metres.
    Raises:
        ValueError: unknown encoding, or an array whose dtype/shape does not fit the encoding.
    """
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise ValueError(f"depth image must be 2-D (H, W), got shape {raw.shape} for encoding {encoding!r}")
    if encoding in ("16UC1", "mono16"):
        if raw.dtype != np.uint16:
            raise ValueError(f"depth encoding {encoding!r} expects uint16 data, got {raw.dtype}")
        scale = 0.001 if depth_scale is None else float(depth_scale)
        if not scale > 0:
            raise ValueError(f"depth_scale must be > 0 metres per unit, got {depth_scale}")
        return raw.astype(np.float32) * np.float32(scale)
    if encoding == "32FC1":
        if raw.dtype not in (np.float32, np.float64):
            raise ValueError(f"depth encoding '32FC1' expects float data, got {raw.dtype}")
        depth = raw.astype(np.float32, copy=True)
        depth[~np.isfinite(depth) | (depth < 0)] = 0.0
        return depth
    raise ValueError(f"unsupported depth encoding {encoding!r}: expected '16UC1' (millimetres) or '32FC1' (metres)")


def valid_depth(depth, min_depth: float = 0.0, max_depth: float = float("inf")):
    """Boolean mask of usable depth: finite, ``> min_depth`` (so 0 is invalid) and ``<= max_depth``.

    Works on numpy arrays and torch tensors of any shape.
    """
    if isinstance(depth, torch.Tensor):
        return torch.isfinite(depth) & (depth > min_depth) & (depth <= max_depth)
    depth = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > min_depth) & (depth <= max_depth)


def check_intrinsics(K, source: str = "K") -> np.ndarray:
    """Validate a 3x3 intrinsics matrix and return it as float64 numpy.

    Raises:
        ValueError: naming ``source`` when the shape is not 3x3, a focal length is not positive (``fx == 0``
            means an uncalibrated camera) or a value is not finite.
    """
    K = np.asarray(K.detach().cpu() if isinstance(K, torch.Tensor) else K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"{source}: intrinsics must be 3x3, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{source}: intrinsics contain non-finite values: {K.tolist()}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"{source}: focal lengths must be positive (fx={K[0, 0]}, fy={K[1, 1]}); an all-zero K means the camera is uncalibrated"
        )
    return K


def scale_intrinsics(K: np.ndarray, from_size, to_size) -> np.ndarray:
    """``(3, 3)`` K for an image resized from ``(H, W)`` to ``(H', W')`` (pixel centres at integer coordinates)."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    K2 = np.array(K, dtype=np.float64, copy=True)
    K2[0, 0] *= sx
    K2[1, 1] *= sy
    K2[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K2[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K2


def resize_depth_nearest(depth: np.ndarray, size) -> np.ndarray:
    """``(H, W)`` depth -> ``(H', W')`` by the nearest source pixel (never mixes valid and invalid depth)."""
    h, w = depth.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(int), w - 1)
    return depth[rows[:, None], cols[None, :]]


@numpy_compatible
def surface_normals(depth, K, max_relative_step: float = 0.05):
    """Unit surface normals of a depth image, in the camera optical frame, facing the camera (``n_z <= 0``).

    Central differences of the back-projected points along image rows and columns, crossed. A pixel gets the
    zero vector when its depth or a neighbour's is missing (0 / non-finite), at the image border, or when the two
    neighbours' depths differ by more than ``max_relative_step`` times its own (a depth edge, where no surface
    is measured).

    Args:
        depth: ``(*B, H, W)`` metres, 0 = missing.
        K: ``(*B, 3, 3)`` or ``(3, 3)`` intrinsics.
    Returns:
        ``(*B, H, W, 3)`` unit normals or zeros.
    """
    z = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))
    P = backproject_depth_image(z, K)
    valid = z > 0
    du = torch.zeros_like(P)
    dv = torch.zeros_like(P)
    du[..., :, 1:-1, :] = P[..., :, 2:, :] - P[..., :, :-2, :]
    dv[..., 1:-1, :, :] = P[..., 2:, :, :] - P[..., :-2, :, :]
    ok = torch.zeros_like(valid)
    step = float(max_relative_step)
    ok_u = valid[..., :, 2:] & valid[..., :, :-2] & ((z[..., :, 2:] - z[..., :, :-2]).abs() <= step * z[..., :, 1:-1])
    ok_v = valid[..., 2:, :] & valid[..., :-2, :] & ((z[..., 2:, :] - z[..., :-2, :]).abs() <= step * z[..., 1:-1, :])
    ok[..., 1:-1, 1:-1] = ok_u[..., 1:-1, :] & ok_v[..., :, 1:-1] & valid[..., 1:-1, 1:-1]
    n = torch.cross(du, dv, dim=-1)
    n = torch.where(n[..., 2:3] > 0, -n, n)  # face the camera (which looks along +z)
    norm = n.norm(dim=-1, keepdim=True)
    ok = ok & (norm[..., 0] > 0)
    n = n / norm.clamp_min(1e-12)
    return torch.where(ok[..., None], n, torch.zeros_like(n))
