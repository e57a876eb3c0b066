"""One descriptor frame -> one grasp (or a reason why not): the grasp node's whole computation, ROS-free.

Steps: match every reference (:mod:`matching`), back-project the confident matches with robust depth
(:mod:`depth_at_match`); with >= 3 references try the 6-DoF object pose (:mod:`object_pose`) and carry the
reference grasp; otherwise, or when the pose fails, fall back to the single-point grasp at the
``grasp_index`` reference (:mod:`grasp_pose`) and report why. No pose at all when that reference's match
is weak or its depth invalid.
"""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

import numpy as np

from .depth_at_match import point_and_pixel_at_match
from .grasp_pose import APPROACH_MODES, GraspPose, grasp_pose_at, pose_from_matrix
from .matching import METRICS, SUBPIXEL_METHODS, match_references
from .object_pose import ObjectPoseResult, carry_grasp, ransac_object_pose
from .reference import Reference


@dataclass(frozen=True)
class SettingSpec:
    """One tunable setting: its name, default (whose type is the setting's type), description and limits.

    The one home of a setting's default, range and description: :class:`GraspSettings` is built from
    :data:`GRASP_SETTING_SPECS`, grasp_node declares its ROS parameters from the same table (ranges become
    ``FloatingPointRange`` / ``IntegerRange``), and a test checks ``config/grasp.yaml`` against it. The nodes
    describe their other parameters with this class too. ``odd``: an odd window size; ``read_only``: fixed at
    startup (a node parameter that cannot change at runtime).
    """

    name: str
    default: Any
    description: str
    min_value: float | int | None = None
    max_value: float | int | None = None
    choices: tuple[str, ...] = ()
    odd: bool = False
    read_only: bool = False

    @property
    def type_name(self) -> str:
        return _type_name(self.default)

    def check(self, value) -> str:
        """"" when ``value`` is acceptable, else why not (type, range, choices, odd), naming the setting."""
        default = self.default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:                                    # arrays (rclpy gives lists or array.array)
            ok = hasattr(value, "__len__") and not isinstance(value, (str, bytes))
        if not ok:
            return f"{self.name} must be {self.type_name}, got {_type_name(value)} {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            if not np.isfinite(value):
                return f"{self.name} must be finite, got {value!r}"
            if self.min_value is not None and value < self.min_value or \
                    self.max_value is not None and value > self.max_value:
                return f"{self.name} must be in [{self.min_value}, {self.max_value}], got {value!r}"
        if self.odd and int(value) % 2 != 1:
            return f"{self.name} must be an odd number of pixels >= 1, got {value!r}"
        return ""


def _type_name(value) -> str:
    """The ROS parameter type name of a Python value: bool, integer, double, string, array."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "integer"
    if isinstance(value, (float, np.floating)):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


# The grasp settings (= grasp_node's parameters of the same names), in declaration order.
GRASP_SETTING_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("metric", "cosine", "Descriptor distance.", choices=METRICS),
    SettingSpec("max_distance", 0.5, "Largest accepted descriptor distance of a match.", 0.0, 100.0),
    SettingSpec("max_ratio", 0.7, "Ratio test: best / second best outside the exclusion disc (exclusion_radius, "
                "exclusion_radius_m) must not exceed this.", 0.0, 1.0),
    SettingSpec("exclusion_radius", 6.0, "Pixels around the best match ignored by the ratio test.", 0.0, 1000.0),
    SettingSpec("exclusion_radius_m", 0.02, "Metres around the best match (at its depth) ignored by the ratio test "
                "when wider than exclusion_radius; 0 = pixels only.", 0.0, 1.0),
    SettingSpec("subpixel", "parabola", "Sub-pixel refinement of a match.", choices=SUBPIXEL_METHODS),
    SettingSpec("depth_window", 5, "Odd window (px) for the median depth at a match.", 1, 51, odd=True),
    SettingSpec("foreground_snap_px", 8, "A match within this many pixels (px) of a depth discontinuity moves onto "
                "the near surface (the object, not the table behind it); 0 = off.", 0, 100),
    SettingSpec("depth_discontinuity", 0.02, "Depth step (m) that separates the near surface from what is behind "
                "it, for foreground_snap_px.", 1e-3, 10.0),
    SettingSpec("min_depth", 0.05, "Depth below this (m) is invalid; must be below max_depth.", 0.0, 100.0),
    SettingSpec("max_depth", 5.0, "Depth above this (m) is invalid; must be above min_depth.", 1e-3, 100.0),
    SettingSpec("approach", "surface_normal", "Approach direction: local surface normal from depth (falls back to "
                "the camera ray) or the camera ray.", choices=APPROACH_MODES),
    SettingSpec("normal_window", 9, "Odd window (px) for the surface normal.", 3, 51, odd=True),
    SettingSpec("use_object_pose", True, "With >= 3 references: 6-DoF grasp from the RANSAC object pose."),
    SettingSpec("inlier_threshold", 0.01, "RANSAC inlier distance (m).", 1e-4, 1.0),
    SettingSpec("ransac_iterations", 200, "RANSAC hypotheses (all triples when fewer).", 1, 100000),
    SettingSpec("min_inliers", 4, "Inliers needed for a 6-DoF pose (capped at the number of references; 3 inliers "
                "alone are only the minimal set itself).", 3, 1000),
)


def _check_grasp_settings(self) -> None:
    """Every setting against its :class:`SettingSpec`, then the rules between settings."""
    for spec in GRASP_SETTING_SPECS:
        error = spec.check(getattr(self, spec.name))
        if error:
            raise ValueError(error)
    if not self.min_depth < self.max_depth:
        raise ValueError(f"min_depth must be below max_depth (no depth would be valid), got min_depth "
                         f"{self.min_depth} >= max_depth {self.max_depth}")


GraspSettings = make_dataclass(
    "GraspSettings",
    [(s.name, type(s.default), field(default=s.default, metadata={"spec": s})) for s in GRASP_SETTING_SPECS],
    namespace={"__post_init__": _check_grasp_settings})
GraspSettings.__module__ = __name__
GraspSettings.__doc__ = """Settings of :func:`estimate_grasp`: one field per :data:`GRASP_SETTING_SPECS` entry (same name,
default and type), checked on construction (``ValueError`` naming the setting; ``min_depth < max_depth``)."""


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
                                     s.exclusion_radius, s.subpixel, depth, K, s.exclusion_radius_m)
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
