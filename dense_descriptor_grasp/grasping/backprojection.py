"""Robust depth at a (sub-pixel) match and its back-projection to a 3D point (ROS-free).

Depth follows the package convention: ``(H, W)`` float32 metres along the optical axis, 0 = no depth.
The depth at a match is the median of the valid values in a ``window x window`` patch around the
rounded pixel (the depth_image_proc habit); a match whose patch has too few valid values is rejected.

Foreground snapping (:func:`snap_to_foreground`, optional): a part on the object's outline (the top of a head,
a handle's rim) is often matched a pixel or two outside the silhouette, because descriptors are upsampled from a
coarse grid; its median depth is then the table's or the wall's, tens of centimetres behind the object. When the
``(2 r + 1)``-pixel neighbourhood of the match spans a depth discontinuity, the match is moved to the nearest
pixel of the near surface (the object stands in front of its support) and its depth is the median over that
surface only.
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


@dataclass(frozen=True)
class ForegroundSnap:
    """Result of :func:`snap_to_foreground`."""

    uv: np.ndarray        # (2,) the pixel to use: the input uv, or the nearest near-surface pixel
    moved_px: float       # how far uv moved (0.0 when not snapped)
    band: tuple           # (near, far) metres: valid depth of the near surface; (0, inf) when no discontinuity


def snap_to_foreground(depth: np.ndarray, uv, radius: int, discontinuity: float = 0.02, min_depth: float = 0.0,
                       max_depth: float = float("inf")) -> ForegroundSnap:
    """Move ``uv`` onto the near side of a depth discontinuity within ``radius`` pixels.

    depth: (H, W) metres, 0 = invalid; uv: (2,) (u, v). ``near`` is the 5th percentile of the valid depth in the
    ``(2 radius + 1)`` square around the rounded ``uv``; pixels within ``discontinuity`` metres of it form the near
    surface. When the window holds no valid depth beyond that band (no discontinuity), or ``radius`` is 0, ``uv``
    is returned unchanged with the band ``(0, inf)``. Otherwise ``uv`` moves to the nearest near-surface pixel
    (unchanged if the rounded ``uv`` already is one) and ``band = (min_depth, near + discontinuity)``.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(2)
    unchanged = ForegroundSnap(uv, 0.0, (0.0, float("inf")))
    if radius < 0:
        raise ValueError(f"foreground snap radius must be >= 0 pixels, got {radius}")
    if discontinuity <= 0:
        raise ValueError(f"depth discontinuity must be > 0 metres, got {discontinuity}")
    depth = np.asarray(depth)
    h, w = depth.shape
    if radius == 0 or not (np.all(np.isfinite(uv)) and -0.5 <= uv[0] < w - 0.5 and -0.5 <= uv[1] < h - 0.5):
        return unchanged
    rows, cols = window_slices(uv, (h, w), 2 * radius + 1)
    patch = depth[rows, cols]
    good = valid_depth(patch, min_depth, max_depth)
    if not good.any():
        return unchanged
    near = float(np.percentile(patch[good], 5))
    far_limit = near + discontinuity
    surface = good & (patch <= far_limit)
    if not (good & ~surface).any():
        return unchanged
    band = (float(min_depth), far_limit)
    u0, v0 = int(round(uv[0])), int(round(uv[1]))
    if surface[v0 - rows.start, u0 - cols.start]:
        return ForegroundSnap(uv, 0.0, band)
    vs, us = np.nonzero(surface)
    us, vs = us + cols.start, vs + rows.start
    d2 = (us - uv[0]) ** 2 + (vs - uv[1]) ** 2
    k = int(np.argmin(d2))
    return ForegroundSnap(np.array([float(us[k]), float(vs[k])]), float(np.sqrt(d2[k])), band)


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
                   max_depth: float = float("inf"), min_valid_fraction: float = 0.3, snap_radius: int = 0,
                   discontinuity: float = 0.02):
    """3D point (3,) at a match with robust depth, or ``(None, DepthSample)`` with the reason when rejected.

    With ``snap_radius > 0`` the match is first moved onto the near side of a depth discontinuity
    (:func:`snap_to_foreground`) and only depth of that surface counts; the returned point is back-projected from
    the snapped pixel. Returns ``(point or None, DepthSample)``; :func:`point_and_pixel_at_match` also returns the
    pixel used.
    """
    point, sample, _ = point_and_pixel_at_match(depth, K, uv, window, min_depth, max_depth, min_valid_fraction,
                                                snap_radius, discontinuity)
    return point, sample


def point_and_pixel_at_match(depth: np.ndarray, K, uv, window: int = 5, min_depth: float = 0.0,
                             max_depth: float = float("inf"), min_valid_fraction: float = 0.3, snap_radius: int = 0,
                             discontinuity: float = 0.02):
    """:func:`point_at_match` plus the (2,) pixel the point was back-projected from (snapped or not)."""
    snap = snap_to_foreground(depth, uv, snap_radius, discontinuity, min_depth, max_depth)
    sample = robust_depth_at(depth, snap.uv, window, min_depth, min(max_depth, snap.band[1]), min_valid_fraction)
    if not sample.ok:
        return None, sample, snap.uv
    return backproject_point(snap.uv, sample.depth, K), sample, snap.uv
