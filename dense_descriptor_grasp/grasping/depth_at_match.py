"""Robust depth at a (sub-pixel) match and its back-projection to a 3D point (ROS-free).

Depth follows the package convention: ``(H, W)`` float32 metres along the optical axis, 0 = no depth.
The depth at a match is the median of the valid values in a ``window x window`` patch around the
rounded pixel (the depth_image_proc habit); a match whose patch has too few valid values is rejected.

Foreground snapping (:func:`snap_to_foreground`, optional): a part on the object's outline (the top of a head,
a handle's rim) is often matched a pixel or two outside the silhouette, because descriptors are upsampled from a
coarse grid; its median depth is then the table's or the wall's, tens of centimetres behind the object. The
neighbourhood of the match is split into depth-connected surfaces (a depth step separates them, a curved surface
does not); a match on a surface that lies behind another one within ``r`` pixels moves to the nearest pixel of the
front surface (the object stands in front of its support), and the median depth counts only the surface the
match ends on.
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

    uv: np.ndarray                     # (2,) the pixel to use: the input uv, or the nearest front-surface pixel
    moved_px: float                    # how far uv moved (0.0 when not moved)
    patch_surface: np.ndarray | None = None   # (h, w) bool over the searched square; None = all valid depth counts
    patch_origin: tuple = (0, 0)       # (row, column) of the square's top-left pixel
    image_shape: tuple = (0, 0)        # (H, W)

    def mask_for(self, rows: slice, cols: slice) -> np.ndarray | None:
        """The surface over the image window ``depth[rows, cols]`` (False outside the searched square); None when
        no surface was chosen."""
        if self.patch_surface is None:
            return None
        out = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
        r0, c0 = self.patch_origin
        ph, pw = self.patch_surface.shape
        r_lo, r_hi = max(rows.start, r0), min(rows.stop, r0 + ph)
        c_lo, c_hi = max(cols.start, c0), min(cols.stop, c0 + pw)
        if r_lo < r_hi and c_lo < c_hi:
            out[r_lo - rows.start:r_hi - rows.start, c_lo - cols.start:c_hi - cols.start] = \
                self.patch_surface[r_lo - r0:r_hi - r0, c_lo - c0:c_hi - c0]
        return out

    @property
    def surface(self) -> np.ndarray | None:
        """(H, W) bool: the surface whose depth counts at :attr:`uv`; None = all valid depth."""
        return self.mask_for(slice(0, self.image_shape[0]), slice(0, self.image_shape[1]))


def depth_surfaces(patch: np.ndarray, good: np.ndarray, jump: float) -> np.ndarray:
    """Label the depth-connected surfaces of a patch.

    patch: (h, w) metres; good: (h, w) bool, valid depth. Two 4-neighbours belong to one surface when both are
    valid and their depths differ by at most ``jump`` metres, so a curved or tilted surface stays one surface and a
    depth step (an object in front of a table) separates two. Returns (h, w) int labels 0..n-1, -1 where invalid.
    """
    h, w = patch.shape
    labels = np.full((h, w), -1, dtype=np.int64)
    n = 0
    for start in zip(*np.nonzero(good)):
        if labels[start] >= 0:
            continue
        labels[start] = n
        stack = [start]
        while stack:
            r, c = stack.pop()
            z = patch[r, c]
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < h and 0 <= cc < w and labels[rr, cc] < 0 and good[rr, cc] \
                        and abs(patch[rr, cc] - z) <= jump:
                    labels[rr, cc] = n
                    stack.append((rr, cc))
        n += 1
    return labels


def snap_to_foreground(depth: np.ndarray, uv, radius: int, discontinuity: float = 0.02, min_depth: float = 0.0,
                       max_depth: float = float("inf"), margin: int = 2) -> ForegroundSnap:
    """Keep a match on the surface in front: move ``uv`` off a surface that lies behind a nearby depth step.

    depth: (H, W) metres, 0 = invalid; uv: (2,) (u, v). The valid depth in the square of half-size
    ``radius + margin`` around the rounded ``uv`` is split into depth-connected surfaces (:func:`depth_surfaces`,
    neighbours differing by more than ``discontinuity`` metres are apart). When a surface whose median depth is
    nearer than that of ``uv``'s surface by more than ``discontinuity`` has a pixel within ``radius`` (square) of
    ``uv``, ``uv`` moves to the nearest such pixel. The returned :attr:`ForegroundSnap.surface` is the surface
    ``uv`` ends on (restricted to the square), so the median depth at an edge pixel ignores the table behind it.
    Unchanged, with ``surface=None``, when ``radius`` is 0, ``uv`` is outside the image or has no valid depth, or
    the square holds a single surface.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(2)
    unchanged = ForegroundSnap(uv, 0.0, None)
    if radius < 0 or margin < 0:
        raise ValueError(f"foreground snap radius and margin must be >= 0 pixels, got {radius}, {margin}")
    if discontinuity <= 0:
        raise ValueError(f"depth discontinuity must be > 0 metres, got {discontinuity}")
    depth = np.asarray(depth)
    h, w = depth.shape
    if radius == 0 or not (np.all(np.isfinite(uv)) and -0.5 <= uv[0] < w - 0.5 and -0.5 <= uv[1] < h - 0.5):
        return unchanged
    rows, cols = window_slices(uv, (h, w), 2 * (radius + margin) + 1)
    patch = depth[rows, cols]
    good = valid_depth(patch, min_depth, max_depth)
    r0, c0 = int(round(uv[1])) - rows.start, int(round(uv[0])) - cols.start
    if not good[r0, c0]:
        return unchanged
    if good.all() and np.abs(np.diff(patch, axis=0)).max(initial=0.0) <= discontinuity \
            and np.abs(np.diff(patch, axis=1)).max(initial=0.0) <= discontinuity:
        return unchanged                                            # one smooth surface: no search needed
    labels = depth_surfaces(patch, good, discontinuity)
    if labels.max() == 0:
        return unchanged
    own = labels[r0, c0]
    medians = {k: float(np.median(patch[labels == k])) for k in range(labels.max() + 1)}
    front = [k for k, m in medians.items() if m < medians[own] - discontinuity]
    target = own
    moved = 0.0
    new_uv = uv
    if front:
        vv, uu = np.nonzero(np.isin(labels, front) & (np.abs(np.arange(patch.shape[0])[:, None] - r0) <= radius)
                            & (np.abs(np.arange(patch.shape[1])[None, :] - c0) <= radius))
        if len(vv):
            d2 = (uu + cols.start - uv[0]) ** 2 + (vv + rows.start - uv[1]) ** 2
            k = int(np.argmin(d2))
            target = labels[vv[k], uu[k]]
            new_uv = np.array([float(uu[k] + cols.start), float(vv[k] + rows.start)])
            moved = float(np.sqrt(d2[k]))
    return ForegroundSnap(new_uv, moved, labels == target, (rows.start, cols.start), (h, w))


def near_depth_edge(depth: np.ndarray, uv, radius: int = 2, discontinuity: float = 0.02) -> bool:
    """Whether ``uv`` lies within ``radius`` pixels (square) of the outline of the surface it is on.

    depth: (H, W) metres, 0 = invalid; uv: (2,) (u, v). True when a pixel of the
    square is farther than ``uv``'s depth by more than ``discontinuity`` metres or has no depth: ``uv`` sits next to
    the object's silhouette (the table or the wall behind it). False for a pixel without depth or outside the image
    (nothing to judge).
    Descriptors of such pixels mix the part with what lies behind it and match other stretches of the outline
    (README, "Why the beak tip fails"), so ``make_reference`` warns about them.
    """
    if radius < 0 or discontinuity <= 0:
        raise ValueError(f"near_depth_edge: radius must be >= 0 px and discontinuity > 0 m, got {radius}, "
                         f"{discontinuity}")
    depth = np.asarray(depth)
    if not (np.all(np.isfinite(uv)) and -0.5 <= uv[0] < depth.shape[1] - 0.5 and -0.5 <= uv[1] < depth.shape[0] - 0.5):
        return False
    u, v = int(round(float(uv[0]))), int(round(float(uv[1])))
    z = float(depth[v, u])
    if not (np.isfinite(z) and z > 0):
        return False
    rows, cols = window_slices(uv, depth.shape, 2 * radius + 1)
    patch = depth[rows, cols]
    behind = ~np.isfinite(patch) | (patch <= 0) | (patch > z + discontinuity)
    return bool(behind.any())


def window_slices(uv, shape, window: int):
    """Row/column slices of a ``window x window`` patch centred on the rounded ``uv`` (clipped to the image)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"depth window must be an odd size >= 1 pixels, got {window}")
    h, w = shape
    u, v = int(round(float(uv[0]))), int(round(float(uv[1])))
    r = window // 2
    return slice(max(v - r, 0), min(v + r + 1, h)), slice(max(u - r, 0), min(u + r + 1, w))


def robust_depth_at(depth: np.ndarray, uv, window: int = 5, min_depth: float = 0.0,
                    max_depth: float = float("inf"), min_valid_fraction: float = 0.3,
                    surface: ForegroundSnap | None = None) -> DepthSample:
    """Median of the valid depth values in a window around ``uv`` (u, v).

    depth: (H, W) metres, 0 = invalid. Values outside ``(min_depth, max_depth]`` are invalid too, and so are pixels
    off ``surface``'s chosen surface when given (:func:`snap_to_foreground`).
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
    keep = surface.mask_for(rows, cols) if surface is not None else None
    if keep is not None:
        good &= keep
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
    snap = snap_to_foreground(depth, uv, snap_radius, discontinuity, min_depth, max_depth, margin=window // 2)
    sample = robust_depth_at(depth, snap.uv, window, min_depth, max_depth, min_valid_fraction, surface=snap)
    if not sample.ok:
        return None, sample, snap.uv
    return backproject_point(snap.uv, sample.depth, K), sample, snap.uv
