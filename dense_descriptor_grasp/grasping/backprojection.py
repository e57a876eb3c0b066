"""Robust depth at a (sub-pixel) match and its back-projection to a 3D point (ROS-free).

Depth follows the package convention: ``(H, W)`` float32 metres along the optical axis, 0 = no depth.
The depth at a match is the median of the valid values in a ``window x window`` patch around the
rounded pixel (the depth_image_proc habit); a match whose patch has too few valid values is rejected.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dense_descriptor_grasp.geometry.camera import backproject, check_intrinsics, valid_depth


@dataclass(frozen=True)
class DepthSample:
    """Robust depth around one pixel."""

    depth: float       # metres, 0.0 when not ok
    n_valid: int       # valid depth pixels in the window
    n_total: int       # pixels in the window (inside the image)
    spread: float      # median absolute deviation of the valid values, metres
    reason: str        # "" when ok

    @property
    def ok(self) -> bool:
        return not self.reason


def window_slices(uv, shape, window: int):
    """Row/column slices of a ``window x window`` patch centred on the rounded ``uv`` (clipped to the image)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"depth window must be an odd size >= 1 pixels, got {window}")
    h, w = shape
    u, v = int(round(float(uv[0]))), int(round(float(uv[1])))
    r = window // 2
    return slice(max(v - r, 0), min(v + r + 1, h)), slice(max(u - r, 0), min(u + r + 1, w))


def robust_depth_at(depth: np.ndarray, uv, window: int = 5, min_depth: float = 0.0,
                    max_depth: float = float("inf"), min_valid_fraction: float = 0.3) -> DepthSample:
    """Median of the valid depth values in a window around ``uv`` (u, v).

    depth: (H, W) metres, 0 = invalid. Values outside ``(min_depth, max_depth]`` are invalid too.
    Rejected (``reason`` set) when ``uv`` lies outside the image or fewer than ``min_valid_fraction`` of
    the window's pixels carry valid depth.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    h, w = depth.shape
    u, v = float(uv[0]), float(uv[1])
    if not (np.isfinite(u) and np.isfinite(v)) or not (-0.5 <= u < w - 0.5 and -0.5 <= v < h - 0.5):
        return DepthSample(0.0, 0, 0, 0.0, f"pixel ({u:.1f}, {v:.1f}) outside the {w}x{h} depth image")
    rows, cols = window_slices((u, v), (h, w), window)
    patch = depth[rows, cols]
    good = valid_depth(patch, min_depth, max_depth)
    n_valid, n_total = int(good.sum()), int(patch.size)
    if n_valid == 0 or n_valid < min_valid_fraction * n_total:
        return DepthSample(0.0, n_valid, n_total, 0.0,
                           f"only {n_valid}/{n_total} valid depth pixels in a {window}x{window} window at "
                           f"({u:.1f}, {v:.1f}) (depth range ({min_depth:g}, {max_depth:g}] m)")
    values = patch[good].astype(np.float64)
    z = float(np.median(values))
    spread = float(np.median(np.abs(values - z)))
    return DepthSample(z, n_valid, n_total, spread, "")


def backproject_point(uv, z: float, K) -> np.ndarray:
    """Camera-frame 3D point (3,) of pixel ``uv`` at depth ``z`` metres with intrinsics ``K`` (3, 3)."""
    K = check_intrinsics(K)
    pts = backproject(np.asarray(uv, dtype=np.float64).reshape(1, 2), np.array([float(z)]), K)
    return np.asarray(pts, dtype=np.float64).reshape(3)


def point_at_match(depth: np.ndarray, K, uv, window: int = 5, min_depth: float = 0.0,
                   max_depth: float = float("inf"), min_valid_fraction: float = 0.3):
    """3D point (3,) at a match with robust depth, or ``(None, DepthSample)`` with the reason when rejected.

    Returns ``(point or None, DepthSample)``.
    """
    sample = robust_depth_at(depth, uv, window, min_depth, max_depth, min_valid_fraction)
    if not sample.ok:
        return None, sample
    return backproject_point(uv, sample.depth, K), sample
