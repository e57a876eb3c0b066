"""The object's mask without annotation: support plane (RANSAC), DBSCAN clusters above it, hole filling.

For one view (:func:`segment_object`):

1. Back-project the valid depth (``0 < z <= max_depth_m``) to camera-frame points (numpy, ``x = (u - cx) z / fx``).
2. Fit the support plane with open3d's RANSAC ``segment_plane`` (inlier distance ``plane_distance_m``), refine it
   by least squares on its inliers, and orient its normal towards the camera. Fewer than ``min_plane_fraction`` of
   the points on it: no plane (``ValueError`` naming the view).
3. Keep the points above the plane on the camera's side by more than a margin that grows with the sensor noise,
   ``max(height_margin_m, noise_sigmas * sigma(z))`` with ``sigma(z) = noise_a z^2`` (the default ``noise_a`` is the
   D435-like model of :mod:`.noise`), and below ``max_height_m``.
4. Cluster them with open3d's DBSCAN (``cluster_dbscan``; ``eps`` at least ``eps_pixels`` pixel footprints at the
   points' median depth so a small image still connects), then merge in the image: points within
   ``merge_touching_px`` pixels of each other are one object, and each DBSCAN cluster joins the image groups it
   spans. This keeps one object's parts together when they are far apart in 3-D (a duck's head seen in front of
   its body, behind a band of missing depth; a face seen at a grazing angle, whose points are centimetres apart);
   the price: objects that touch in the image become one (give ``merge_touching_px=0`` for DBSCAN alone). Groups
   smaller than ``min_cluster_points`` are dropped; none left: no object (``ValueError`` naming the view).
5. Choose the object's cluster: the one holding ``pick_pixel`` (or the nearest to it in the image) when given, else
   the one nearest the image centre (distance from the centre to its nearest pixel; 0 when it covers the centre).
6. Grow the cluster down to the plane: points above it by more than ``max(grow_margin_m, grow_sigmas *
   sigma(z))`` within ``eps`` of the cluster join it (the object's foot, cut by the margin of step 3).
7. Project back to a per-view mask (its own pixels) and fill holes (:func:`fill_holes`): a morphological closing
   (``close_px``), enclosed holes of mostly missing depth (a dark patch; holes showing measured background, like a
   mug's handle, stay), and a ``grow_invalid_px`` growth into the band of missing depth along the outline.

:func:`object_masks` runs it over a capture; with camera poses it follows one object through the views (the
object's centroid in the world, from the first view or ``pick_point_world``, gives each view's pick pixel).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .frames import Frame

__all__ = ["MaskConfig", "MaskResult", "segment_object", "object_masks", "backproject_frame", "fill_holes",
           "mask_iou"]


@dataclass(frozen=True)
class MaskConfig:
    """Parameters of :func:`segment_object` (metres unless stated)."""

    max_depth_m: float = 2.0           # farther points are ignored (far floor, walls)
    plane_distance_m: float = 0.008    # RANSAC inlier distance
    plane_iterations: int = 500        # RANSAC iterations
    min_plane_fraction: float = 0.2    # the plane must hold this share of the valid points
    noise_a: float = 0.01              # the sensor's depth noise sigma(z) = noise_a z^2 (capture/noise.py default)
    height_margin_m: float = 0.01      # cluster seeds: above the plane by more than max(this, noise_sigmas sigma)
    noise_sigmas: float = 4.0
    grow_margin_m: float = 0.003       # grown to points above by more than max(this, grow_sigmas sigma) ...
    grow_sigmas: float = 2.5
    max_height_m: float = 0.5          # ... and at most this
    cluster_eps_m: float = 0.01        # DBSCAN neighbourhood radius (at least eps_pixels pixel footprints)
    eps_pixels: float = 3.0
    cluster_min_points: int = 10       # DBSCAN core-point threshold
    merge_touching_px: int = 3         # clusters within this many pixels in the image are one object (0 = never)
    min_cluster_points: int = 50       # smaller clusters (after merging) are not objects
    close_px: int = 5                  # morphological closing kernel (pixels, odd; 0 = none)
    hole_invalid_fraction: float = 0.75  # fill enclosed holes where at least this share of pixels has no depth
    grow_invalid_px: int = 1           # grow the mask this far into pixels without depth (its outline's band)
    seed: int = 0                      # open3d's RANSAC random seed (reproducible masks)

    def __post_init__(self):
        for name in ("max_depth_m", "plane_distance_m", "cluster_eps_m", "max_height_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MaskConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not (0.0 <= self.min_plane_fraction <= 1.0):
            raise ValueError(f"MaskConfig.min_plane_fraction must be in [0, 1], got {self.min_plane_fraction}")
        if self.plane_iterations < 1 or self.cluster_min_points < 1 or self.min_cluster_points < 1:
            raise ValueError("MaskConfig: plane_iterations, cluster_min_points and min_cluster_points must be >= 1")
        if min(self.noise_a, self.height_margin_m, self.noise_sigmas, self.grow_margin_m, self.grow_sigmas,
               self.eps_pixels, self.close_px, self.grow_invalid_px) < 0:
            raise ValueError("MaskConfig: margins, sigmas, eps_pixels, close_px and grow_invalid_px must be >= 0")
        if not (0.0 <= self.hole_invalid_fraction <= 1.0):
            raise ValueError(f"MaskConfig.hole_invalid_fraction must be in [0, 1], got {self.hole_invalid_fraction}")
        if self.grow_margin_m > self.height_margin_m:
            raise ValueError(f"MaskConfig: grow_margin_m ({self.grow_margin_m}) must not exceed height_margin_m "
                             f"({self.height_margin_m})")


@dataclass
class MaskResult:
    """One view's object mask and how it was found.

    Attributes:
        name: the view's name.
        mask: (H, W) bool, the object's pixels.
        plane: (4,) ``(a, b, c, d)`` of the support plane in the camera frame, ``a x + b y + c z + d = 0`` with the
            unit normal ``(a, b, c)`` pointing to the camera side (``d > 0``).
        plane_fraction: share of the valid points on the plane.
        cluster_points: points in the chosen cluster (after growing).
        num_clusters: clusters of at least ``min_cluster_points`` above the plane.
        centroid: (3,) the chosen cluster's centroid in the camera frame (metres).
        pick_pixel: ``(u, v)`` the choice was made with (the image centre when none was given).
        cluster_sizes: point counts of every kept cluster, largest first.
    """

    name: str
    mask: np.ndarray
    plane: np.ndarray
    plane_fraction: float
    cluster_points: int
    num_clusters: int
    centroid: np.ndarray
    pick_pixel: tuple
    cluster_sizes: list = field(default_factory=list)


def backproject_frame(frame: Frame, max_depth: float = np.inf):
    """``(points (N, 3) float64 camera frame, v (N,), u (N,))`` of the pixels with ``0 < depth <= max_depth``."""
    v, u = np.nonzero((frame.depth > 0) & (frame.depth <= max_depth))
    z = frame.depth[v, u].astype(np.float64)
    K = frame.K
    x = (u - K[0, 2]) * z / K[0, 0]
    y = (v - K[1, 2]) * z / K[1, 1]
    return np.stack([x, y, z], axis=1), v, u


def fill_holes(mask: np.ndarray, close_px: int = 5, depth: np.ndarray | None = None,
               invalid_fraction: float = 0.5, grow_invalid_px: int = 0) -> np.ndarray:
    """Close and fill an object mask.

    Args:
        mask: (H, W) bool.
        close_px: elliptic closing kernel (pixels; <= 1: no closing); the image border does not glue.
        depth: (H, W) metres (0 = none) or ``None``. With it, an enclosed hole (a background component not touching
            the border) is filled when at least ``invalid_fraction`` of its pixels have no depth (missing depth
            inside the object: a dark patch, a stereo shadow on the object), and kept when it shows measured
            background (a mug's handle). Without it every enclosed hole is filled.
        invalid_fraction: see ``depth``.
        grow_invalid_px: then grow the mask by this many pixels into pixels without depth (the band of missing
            depth along the object's outline; needs ``depth``).
    Returns:
        (H, W) bool.
    """
    import cv2

    m = np.asarray(mask, dtype=np.uint8)
    if close_px and close_px > 1:
        k = int(close_px) | 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        big = cv2.copyMakeBorder(m, k, k, k, k, cv2.BORDER_CONSTANT, value=0)
        m = cv2.morphologyEx(big, cv2.MORPH_CLOSE, kernel)[k:-k, k:-k]
    n, labels, stats, _ = cv2.connectedComponentsWithStats((m == 0).astype(np.uint8), connectivity=4)
    h, w = m.shape
    invalid = None if depth is None else np.asarray(depth) <= 0
    for i in range(1, n):
        x, y, bw, bh, _area = stats[i]
        if x == 0 or y == 0 or x + bw == w or y + bh == h:
            continue
        hole = labels == i
        if invalid is None or invalid[hole].mean() >= invalid_fraction:
            m[hole] = 1
    if grow_invalid_px and grow_invalid_px > 0 and invalid is not None:
        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        for _ in range(int(grow_invalid_px)):
            m = np.where(invalid & (cv2.dilate(m, cross) > 0), 1, m).astype(np.uint8)
    return m.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _merge_touching(labels: np.ndarray, v: np.ndarray, u: np.ndarray, height: int, width: int,
                    radius_px: int) -> np.ndarray:
    """DBSCAN ``labels (N,)`` of the points at pixels ``(v, u)``, merged in the image: points (clustered or DBSCAN
    noise) whose pixels come within ``radius_px`` of each other are one group, and a DBSCAN cluster joins all the
    groups its points fall in. Returns group labels ``(N,)`` >= 0 (0 .. groups - 1); ``radius_px <= 0`` returns
    ``labels`` unchanged (noise stays -1)."""
    if radius_px <= 0:
        return labels
    import cv2

    img = np.zeros((height, width), np.uint8)
    img[v, u] = 1
    k = 2 * int(radius_px) + 1
    # dilating by radius / 2 on each side joins pixels up to radius_px apart
    half = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k // 2 | 1, k // 2 | 1))
    n, comp = cv2.connectedComponents(cv2.dilate(img, half), connectivity=8)
    group = comp[v, u].astype(np.int64)
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for cid in np.unique(labels[labels >= 0]):
        members = np.unique(group[labels == cid])
        r0 = root(members[0])
        for g in members[1:]:
            r = root(g)
            if r != r0:
                parent[max(r, r0)] = min(r, r0)
                r0 = min(r, r0)
    roots = np.array([root(g) for g in range(n)])
    _, out = np.unique(roots[group], return_inverse=True)
    return out.astype(np.int64)


def _fit_plane_lsq(points: np.ndarray) -> np.ndarray:
    c = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - c, full_matrices=False)
    n = vt[2]
    return np.append(n, -n @ c)


def segment_object(frame: Frame, pick_pixel=None, config: MaskConfig = MaskConfig()) -> MaskResult:
    """The object's mask in one view (module docstring).

    Args:
        frame: the view (depth (H, W) metres, 0 = none; K).
        pick_pixel: ``(u, v)`` on or near the object; ``None`` = the object nearest the image centre.
        config: thresholds.
    Returns:
        :class:`MaskResult` (``mask`` (H, W) bool).
    Raises:
        ValueError naming the view: too little depth, no support plane, no object (cluster) above the plane.
    """
    import open3d as o3d

    name = frame.name
    pts, v, u = backproject_frame(frame, config.max_depth_m)
    if len(pts) < 3 * config.min_cluster_points:
        raise ValueError(f"view {name}: only {len(pts)} pixels with depth in (0, {config.max_depth_m}] m; "
                         "cannot look for a support plane")
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    o3d.utility.random.seed(int(config.seed))
    model, inliers = pcd.segment_plane(distance_threshold=config.plane_distance_m, ransac_n=3,
                                       num_iterations=int(config.plane_iterations))
    inliers = np.asarray(inliers, dtype=np.int64)
    plane = np.asarray(model, dtype=np.float64)
    if len(inliers) >= 3:
        plane = _fit_plane_lsq(pts[inliers])
    plane /= np.linalg.norm(plane[:3])
    if plane[3] < 0:
        plane = -plane
    height = pts @ plane[:3] + plane[3]
    plane_fraction = float(np.mean(np.abs(height) <= config.plane_distance_m))
    if plane_fraction < config.min_plane_fraction or len(inliers) < 3:
        raise ValueError(f"view {name}: no support plane (the best RANSAC plane holds {plane_fraction:.0%} of "
                         f"{len(pts)} points, need {config.min_plane_fraction:.0%}); is the object on a table "
                         "that fills part of the view?")
    sigma = config.noise_a * pts[:, 2] ** 2
    seed_sel = (height > np.maximum(config.height_margin_m, config.noise_sigmas * sigma)) & \
        (height <= config.max_height_m)
    if seed_sel.sum() < config.min_cluster_points:
        raise ValueError(f"view {name}: no object above the support plane ({int(seed_sel.sum())} points higher "
                         f"than the margin, need {config.min_cluster_points})")
    seed_idx = np.nonzero(seed_sel)[0]
    z_med = float(np.median(pts[seed_idx, 2]))
    eps = max(config.cluster_eps_m, config.eps_pixels * z_med / min(frame.K[0, 0], frame.K[1, 1]))
    seeds = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[seed_idx]))
    labels = np.asarray(seeds.cluster_dbscan(eps=eps, min_points=int(config.cluster_min_points)))
    labels = _merge_touching(labels, v[seed_idx], u[seed_idx], frame.height, frame.width, config.merge_touching_px)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    keep = counts >= config.min_cluster_points
    ids, counts = ids[keep], counts[keep]
    if len(ids) == 0:
        raise ValueError(f"view {name}: no object above the support plane ({len(seed_idx)} points above it, but "
                         f"no cluster of {config.min_cluster_points}+ points within {eps * 1000:.0f} mm)")
    order = np.argsort(-counts)
    ids, counts = ids[order], counts[order]

    # choose the cluster
    if pick_pixel is None:
        pick = ((frame.width - 1) / 2.0, (frame.height - 1) / 2.0)
    else:
        pick = (float(pick_pixel[0]), float(pick_pixel[1]))
    pu, pv = int(round(pick[0])), int(round(pick[1]))
    best, best_d = None, np.inf
    for cid in ids:
        members = seed_idx[labels == cid]
        mu, mv = u[members], v[members]
        if pick_pixel is not None and np.any((mu == pu) & (mv == pv)):
            best, best_d = cid, -1.0
            break
        d = float(np.min((mu - pick[0]) ** 2 + (mv - pick[1]) ** 2))
        if d < best_d:
            best, best_d = cid, d
    chosen = seed_idx[labels == best]

    # grow down to the plane: low points near the cluster join it
    low = np.nonzero((height > np.maximum(config.grow_margin_m, config.grow_sigmas * sigma)) &
                     (height <= config.max_height_m) & ~seed_sel)[0]
    if len(low):
        cluster_pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[chosen]))
        low_pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[low]))
        dist = np.asarray(low_pcd.compute_point_cloud_distance(cluster_pcd))
        chosen = np.concatenate([chosen, low[dist <= eps]])
    mask = np.zeros((frame.height, frame.width), dtype=bool)
    mask[v[chosen], u[chosen]] = True
    mask = fill_holes(mask, config.close_px, frame.depth, config.hole_invalid_fraction, config.grow_invalid_px)
    return MaskResult(name=name, mask=mask, plane=plane, plane_fraction=plane_fraction,
                      cluster_points=int(len(chosen)), num_clusters=int(len(ids)),
                      centroid=pts[chosen].mean(axis=0), pick_pixel=pick, cluster_sizes=[int(c) for c in counts])


def _project_world_point(frame: Frame, X_world: np.ndarray):
    """``(u, v)`` of a world point in a posed frame, or ``None`` when it is behind the camera."""
    T_cw = np.linalg.inv(frame.T_world_camera)
    X = T_cw[:3, :3] @ X_world + T_cw[:3, 3]
    if X[2] <= 1e-6:
        return None
    return (float(frame.K[0, 0] * X[0] / X[2] + frame.K[0, 2]), float(frame.K[1, 1] * X[1] / X[2] + frame.K[1, 2]))


def object_masks(frames, pick_pixel=None, pick_point_world=None, config: MaskConfig = MaskConfig(),
                 track: bool = True) -> list:
    """:func:`segment_object` for every frame.

    Args:
        frames: :class:`Frame` s.
        pick_pixel: ``(u, v)`` in the first frame (without poses: in every frame); ``None`` = the image centre.
        pick_point_world: (3,) a point on or near the object in the world frame (needs every frame's
            ``T_world_camera``): each view picks the cluster nearest its projection.
        config: thresholds.
        track: with poses and no ``pick_point_world``, the first view's object centroid (in the world) picks the
            object in the other views, so every mask shows the same object.
    Returns:
        ``[MaskResult]`` in frame order.
    Raises:
        ValueError naming the view (from :func:`segment_object`), or when ``pick_point_world`` is given without
        poses.
    """
    frames = list(frames)
    posed = all(f.T_world_camera is not None for f in frames)
    if pick_point_world is not None and not posed:
        missing = [f.name for f in frames if f.T_world_camera is None][:3]
        raise ValueError(f"object_masks: pick_point_world needs camera poses; views {missing} have none")
    X = None if pick_point_world is None else np.asarray(pick_point_world, dtype=np.float64).reshape(3)
    results = []
    for i, f in enumerate(frames):
        pick = pick_pixel if (i == 0 or not posed) else None
        if X is not None:
            pick = _project_world_point(f, X)
        res = segment_object(f, pick, config)
        if i == 0 and X is None and posed and track:
            X = f.T_world_camera[:3, :3] @ res.centroid + f.T_world_camera[:3, 3]
        results.append(res)
    return results
