"""Grasp pose at a matched 3D point: position + orientation with z = approach direction (ROS-free).

Approach direction (choice documented here and in the README):

* ``"surface_normal"`` (default): the local surface normal estimated by PCA of the back-projected
  depth pixels in a window around the match (the eigenvector of the smallest eigenvalue of their
  covariance). Pixels whose depth differs from the window median by more than ``max_depth_jump``
  are dropped first, so an object edge does not tilt the plane towards the background. The normal is
  oriented towards the camera and the approach is its opposite (the gripper moves *into* the surface).
  Plain numpy PCA instead of open3d: it is a 3x3 eigen-decomposition of at most a few hundred points,
  exact, fast (<1 ms) and has no heavy import in the node.
  When the fit is unreliable (too few points, or the points are not planar: the smallest eigenvalue is
  more than ``max_planarity`` of the middle one) it falls back to the camera ray and says so.
* ``"camera_ray"``: the ray from the camera centre through the point (the gripper approaches along
  the line of sight), robust to noisy depth but blind to surface tilt.

The gripper x axis is the camera x axis made orthogonal to the approach (camera y if nearly
parallel), so the pose is deterministic; y = z cross x.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dense_descriptor_grasp.geometry.camera import backproject_depth_image, check_intrinsics, valid_depth
from dense_descriptor_grasp.geometry.se3 import quaternion_from_matrix

from .depth_at_match import window_slices

APPROACH_MODES = ("surface_normal", "camera_ray")


@dataclass(frozen=True)
class GraspPose:
    position: np.ndarray      # (3,) metres, camera optical frame
    quaternion: np.ndarray    # (4,) x, y, z, w
    rotation: np.ndarray      # (3, 3), columns = gripper x, y, z (z = approach)
    approach_mode: str        # the mode actually used ("camera_ray" after a fallback)
    note: str                 # why a fallback happened ("" otherwise)

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) T_camera_grasp."""
        T = np.eye(4)
        T[:3, :3] = self.rotation
        T[:3, 3] = self.position
        return T


def surface_normal_at(depth: np.ndarray, K, uv, window: int = 9, min_depth: float = 0.0,
                      max_depth: float = float("inf"), max_depth_jump: float = 0.02, min_points: int = 6,
                      max_planarity: float = 0.3):
    """Unit surface normal (3,) at ``uv`` facing the camera, or ``(None, reason)``.

    depth (H, W) metres (0 = invalid), K (3, 3). Returns ``(normal or None, reason)``.
    """
    K = check_intrinsics(K)
    depth = np.asarray(depth)
    rows, cols = window_slices(uv, depth.shape, window)
    patch = depth[rows, cols].astype(np.float64)
    good = valid_depth(patch, min_depth, max_depth)
    if good.sum() < min_points:
        return None, f"only {int(good.sum())} valid depth pixels for the surface normal (need {min_points})"
    z_med = np.median(patch[good])
    good &= np.abs(patch - z_med) <= max_depth_jump
    if good.sum() < min_points:
        return None, f"only {int(good.sum())} depth pixels within {max_depth_jump} m of the median (need {min_points})"
    K_patch = K.copy()
    K_patch[0, 2] -= cols.start
    K_patch[1, 2] -= rows.start
    points = np.asarray(backproject_depth_image(np.where(good, patch, 0.0), K_patch))[good]
    centred = points - points.mean(axis=0)
    eigval, eigvec = np.linalg.eigh(centred.T @ centred / len(points))
    if eigval[1] <= 1e-12:
        return None, "depth points around the match are collinear"
    if eigval[0] > max_planarity * eigval[1]:
        return None, f"surface around the match is not planar (eigenvalue ratio {eigval[0] / eigval[1]:.2f})"
    normal = eigvec[:, 0]
    if normal @ points.mean(axis=0) > 0:  # make it face the camera (camera at the origin)
        normal = -normal
    return normal / np.linalg.norm(normal), ""


def rotation_from_approach(approach) -> np.ndarray:
    """(3, 3) rotation whose z column is ``approach`` (normalised), x from the camera x axis."""
    z = np.asarray(approach, dtype=np.float64)
    n = np.linalg.norm(z)
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"approach direction must be a non-zero finite 3-vector, got {z.tolist()}")
    z = z / n
    hint = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = hint - (hint @ z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def grasp_pose_at(point, depth: np.ndarray | None = None, K=None, uv=None, approach_mode: str = "surface_normal",
                  normal_window: int = 9, min_depth: float = 0.0, max_depth: float = float("inf"),
                  max_depth_jump: float = 0.02) -> GraspPose:
    """Grasp pose at camera-frame ``point`` (3,). For ``surface_normal`` also give depth, K and uv."""
    if approach_mode not in APPROACH_MODES:
        raise ValueError(f"approach_mode must be one of {APPROACH_MODES}, got {approach_mode!r}")
    point = np.asarray(point, dtype=np.float64).reshape(3)
    mode, note = approach_mode, ""
    approach = None
    if approach_mode == "surface_normal":
        if depth is None or K is None or uv is None:
            raise ValueError("approach_mode 'surface_normal' needs depth, K and uv")
        normal, reason = surface_normal_at(depth, K, uv, normal_window, min_depth, max_depth, max_depth_jump)
        if normal is None:
            mode, note = "camera_ray", f"surface normal unavailable ({reason}); approached along the camera ray"
        else:
            approach = -normal
    if approach is None:
        approach = point
    R = rotation_from_approach(approach)
    q = np.asarray(quaternion_from_matrix(R), dtype=np.float64)
    return GraspPose(point, q, R, mode, note)


def pose_from_matrix(T) -> GraspPose:
    """GraspPose from a (4, 4) T_camera_grasp (used for the 6-DoF pose carried by the object pose)."""
    T = np.asarray(T, dtype=np.float64)
    R = T[:3, :3]
    q = np.asarray(quaternion_from_matrix(R), dtype=np.float64)
    return GraspPose(T[:3, 3].copy(), q, R.copy(), "object_pose", "")
