"""Reference-view geometry: which of an object's named parts a view sees, and where.

A reference (``grasping/reference.py``) is made in one view of the object; its named references are the object's
named parts (3-D points in the object frame) that this view sees. The demo picks its reference view from a
dataset with these helpers and ``benchmarks/grasp_sim`` makes its automatic reference with them.
"""
from __future__ import annotations

import numpy as np

from dense_descriptor_grasp.geometry.camera import project

__all__ = ["camera_object_pose", "visible_parts"]


def camera_object_pose(T_world_camera, T_world_object) -> np.ndarray:
    """``T_camera_object (4, 4)`` from the camera's and the object's poses in the world."""
    return np.linalg.inv(np.asarray(T_world_camera, dtype=np.float64)) @ np.asarray(T_world_object, dtype=np.float64)


def visible_parts(T_camera_object: np.ndarray, K: np.ndarray, depth: np.ndarray, mask: np.ndarray, parts: dict,
                  tolerance: float = 0.006, border: int = 2) -> dict:
    """Named parts seen in a view: name -> (u, v) for the parts in the image, on the mask, not hidden.

    Args:
        T_camera_object: ``(4, 4)`` pose of the object in the camera (optical) frame.
        K: ``(3, 3)`` intrinsics; depth ``(H, W)`` metres (0: none); mask ``(H, W)``, > 0 on the object.
        parts: name -> point ``(3,)`` in the object frame.
        tolerance: a part is hidden when the depth image differs from the part's depth by ``tolerance`` metres
            or more everywhere in its 3x3 neighbourhood (something nearer covers it).
        border: pixels ``(u, v)`` must round to ``border <= u < W - border``, ``border <= v < H - border``.
    """
    T = np.asarray(T_camera_object, dtype=np.float64)
    h, w = depth.shape
    seen = {}
    for name, p in parts.items():
        p_cam = T[:3, :3] @ np.asarray(p, dtype=np.float64) + T[:3, 3]
        uv, z = project(p_cam[None], np.asarray(K, dtype=np.float64))
        u, v = (float(x) for x in uv[0])
        iu, iv = int(round(u)), int(round(v))
        if not (border <= iu < w - border and border <= iv < h - border) or z[0] <= 0:
            continue
        window = depth[max(iv - 1, 0):iv + 2, max(iu - 1, 0):iu + 2]
        if mask[iv, iu] > 0 and np.any(np.abs(window - z[0]) < tolerance):
            seen[name] = (u, v)
    return seen
