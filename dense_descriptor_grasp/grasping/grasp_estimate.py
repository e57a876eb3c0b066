"""One descriptor frame -> one grasp (or a reason why not): the grasp node's whole computation, ROS-free.

Steps: match every reference (:mod:`matching`), back-project the confident matches with robust depth
(:mod:`backprojection`); with >= 3 references try the 6-DoF object pose (:mod:`object_pose`) and carry the
reference grasp; otherwise, or when the pose fails, fall back to the single-point grasp at the
``grasp_index`` reference (:mod:`grasp_pose`) and report why. No pose at all when that reference's match
is weak or its depth invalid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backprojection import point_and_pixel_at_match
from .grasp_pose import APPROACH_MODES, GraspPose, grasp_pose_at, pose_from_matrix
from .matching import METRICS, SUBPIXEL_METHODS, match_references
from .object_pose import ObjectPoseResult, carry_grasp, ransac_object_pose
from .reference import Reference


@dataclass
class GraspSettings:
    metric: str = "cosine"
    max_distance: float = 0.5
    max_ratio: float = 0.95
    exclusion_radius: float = 6.0
    subpixel: str = "parabola"
    depth_window: int = 5
    foreground_snap_px: int = 8      # 0 = off; see backprojection.snap_to_foreground
    depth_discontinuity: float = 0.02
    min_depth: float = 0.05
    max_depth: float = 5.0
    approach: str = "surface_normal"
    normal_window: int = 9
    use_object_pose: bool = True
    inlier_threshold: float = 0.01
    ransac_iterations: int = 200
    min_inliers: int = 4         # capped at the number of references (3 references: all 3 must agree)

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if self.subpixel not in SUBPIXEL_METHODS:
            raise ValueError(f"subpixel must be one of {SUBPIXEL_METHODS}, got {self.subpixel!r}")
        if not (isinstance(self.foreground_snap_px, int) and self.foreground_snap_px >= 0):
            raise ValueError(f"foreground_snap_px must be an int >= 0 pixels, got {self.foreground_snap_px!r}")
        if not self.depth_discontinuity > 0:
            raise ValueError(f"depth_discontinuity must be > 0 metres, got {self.depth_discontinuity!r}")
        if self.approach not in APPROACH_MODES:
            raise ValueError(f"approach must be one of {APPROACH_MODES}, got {self.approach!r}")


@dataclass
class GraspEstimate:
    pose: GraspPose | None
    mode: str                      # "object_pose", "single_point" or "none"
    reason: str                    # why no pose / why the fallback ("" when the preferred mode worked)
    matches: list = field(default_factory=list)       # R Match
    distance_maps: np.ndarray | None = None           # (R, H, W)
    live_points: np.ndarray | None = None             # (R, 3), NaN where unmatched / no depth
    live_pixels: np.ndarray | None = None             # (R, 2) pixels back-projected (matches after snapping)
    usable: np.ndarray | None = None                  # (R,) bool: confident match with valid depth
    object_pose: ObjectPoseResult | None = None

    @property
    def confidence(self) -> float:
        """A number in [0, 1] for display: inlier fraction (object pose) or 1 - ratio of the grasp match."""
        if self.pose is None:
            return 0.0
        if self.mode == "object_pose" and self.object_pose is not None:
            return float(self.object_pose.n_inliers / max(len(self.matches), 1))
        return float(np.clip(1.0 - self._grasp_match_ratio, 0.0, 1.0))

    _grasp_match_ratio: float = 1.0


def estimate_grasp(descriptors, depth: np.ndarray, K: np.ndarray, reference: Reference,
                   settings: GraspSettings | None = None, mask=None) -> GraspEstimate:
    """Grasp from a descriptor image (D, H, W), aligned depth (H, W) metres (0 = invalid) and K (3, 3)."""
    s = settings or GraspSettings()
    desc = descriptors.detach().cpu().numpy() if hasattr(descriptors, "detach") else np.asarray(descriptors)
    depth = np.asarray(depth, dtype=np.float32)
    if desc.ndim != 3 or desc.shape[1:] != depth.shape:
        raise ValueError(f"descriptor image {desc.shape} (D, H, W) and depth {depth.shape} (H, W) sizes differ")
    if desc.shape[0] != reference.descriptor_dim:
        raise ValueError(f"descriptor image has D={desc.shape[0]}, the reference D={reference.descriptor_dim}")
    matches, maps = match_references(desc, reference.descriptors, s.metric, mask, s.max_distance, s.max_ratio,
                                     s.exclusion_radius, s.subpixel)
    r = len(matches)
    live = np.full((r, 3), np.nan)
    live_uv = np.array([m.uv for m in matches], dtype=np.float64).reshape(r, 2)
    usable = np.zeros(r, dtype=bool)
    why = [""] * r
    for i, m in enumerate(matches):
        if not m.confident:
            why[i] = f"{reference.names[i]}: weak match ({m.reason})"
            continue
        point, sample, uv = point_and_pixel_at_match(depth, K, m.uv, s.depth_window, s.min_depth, s.max_depth,
                                                     snap_radius=s.foreground_snap_px,
                                                     discontinuity=s.depth_discontinuity)
        if point is None:
            why[i] = f"{reference.names[i]}: no valid depth ({sample.reason})"
            continue
        live[i], live_uv[i], usable[i] = point, uv, True
    est = GraspEstimate(None, "none", "", matches, maps, live, live_uv, usable)
    g = reference.grasp_index
    est._grasp_match_ratio = matches[g].ratio

    fallback_reason = ""
    if s.use_object_pose and r >= 3:
        # a minimal set always fits itself: with > 3 references ask for at least one more supporting match
        result = ransac_object_pose(reference.points, live, usable, s.inlier_threshold, s.ransac_iterations,
                                    min(s.min_inliers, r))
        est.object_pose = result
        if result.ok:
            est.pose = pose_from_matrix(carry_grasp(result.T_live_ref, reference.T_ref_grasp))
            est.mode = "object_pose"
            return est
        fallback_reason = f"6-DoF object pose failed ({result.reason}); single-point fallback"
    elif s.use_object_pose:
        fallback_reason = f"{r} reference(s) < 3 for a 6-DoF pose; single-point grasp"

    if not usable[g]:
        est.reason = "; ".join([x for x in (fallback_reason, why[g]) if x]) + " -> no grasp published"
        return est
    est.pose = grasp_pose_at(live[g], depth, K, live_uv[g], s.approach, s.normal_window, s.min_depth,
                             s.max_depth)
    est.mode = "single_point"
    est.reason = fallback_reason
    return est
