"""pybullet bodies (DIRECT clients, ROS-free): poses as 4x4 matrices, the URDF link frame vs pybullet's
centre-of-mass frame, and where an upright object rests on the table.

Conventions: poses are 4x4 ``T_a_b`` (points in b -> a), quaternions ``(x, y, z, w)``, metres. pybullet reports
and sets a body's base in its centre-of-mass (inertial) frame; the object frame everywhere else in the package is
the URDF's base-link frame (``objects.py``).
"""
from __future__ import annotations

import functools

import numpy as np
import pybullet as pb
import pybullet_data

__all__ = ["TABLE_Z", "pose_matrix", "pose_from_matrix", "check_pose", "com_offset", "set_link_pose", "link_pose",
           "resting_geometry"]

TABLE_Z = 0.0  # the table plane's top surface in the world


def pose_matrix(position, quaternion) -> np.ndarray:
    """(4, 4) pose from ``position (3,)`` and ``quaternion (4,)`` (x, y, z, w)."""
    position = np.asarray(position, dtype=np.float64).reshape(3)
    q = np.asarray(quaternion, dtype=np.float64).reshape(4)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion must be a non-zero finite (x, y, z, w), got {q.tolist()}")
    T = np.eye(4)
    T[:3, :3] = np.asarray(pb.getMatrixFromQuaternion((q / n).tolist())).reshape(3, 3)
    T[:3, 3] = position
    return T


def quaternion_from_rotation(R: np.ndarray) -> np.ndarray:
    """(x, y, z, w) with w >= 0 from a (3, 3) rotation (Shepperd's method)."""
    from dense_descriptor_grasp.geometry.se3 import quaternion_from_matrix

    return np.asarray(quaternion_from_matrix(np.asarray(R, dtype=np.float64)), dtype=np.float64)


def pose_from_matrix(T) -> tuple[np.ndarray, np.ndarray]:
    """``(position (3,), quaternion (4,) x, y, z, w)`` of a (4, 4) pose."""
    T = check_pose(T, "T")
    return T[:3, 3].copy(), quaternion_from_rotation(T[:3, :3])


def check_pose(T, name: str) -> np.ndarray:
    """``T`` as a float64 (4, 4) array; ``ValueError`` naming ``name`` unless finite with a rotation block."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"{name} must be a finite (4, 4) homogeneous pose, got shape {T.shape}")
    R = T[:3, :3]
    if np.abs(R.T @ R - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise ValueError(f"{name} must have a rotation in its top-left 3x3 block (R^T R = I, det = +1)")
    return T


def com_offset(body: int, client: int, link: int = -1) -> np.ndarray:
    """(4, 4) ``T_link_com``: pybullet's base pose is the centre-of-mass (inertial) frame, not the URDF frame."""
    info = pb.getDynamicsInfo(body, link, physicsClientId=client)
    return pose_matrix(info[3], info[4])


def set_link_pose(body: int, T_world_link: np.ndarray, T_link_com: np.ndarray, client: int) -> None:
    """Place a body so that its URDF base-link frame is at ``T_world_link``."""
    pos, quat = pose_from_matrix(T_world_link @ T_link_com)
    pb.resetBasePositionAndOrientation(body, pos.tolist(), quat.tolist(), physicsClientId=client)


def link_pose(body: int, T_link_com: np.ndarray, client: int) -> np.ndarray:
    """(4, 4) world pose of a body's URDF base-link frame."""
    pos, quat = pb.getBasePositionAndOrientation(body, physicsClientId=client)
    return pose_matrix(pos, quat) @ np.linalg.inv(T_link_com)


@functools.lru_cache(maxsize=32)
def resting_geometry(urdf: str, scale: float, upright_rpy: tuple) -> tuple[float, tuple]:
    """``(z offset that rests the upright object on the table, top-centre point (3,) in the object frame)`` of a
    URDF at ``scale``, upright by ``upright_rpy`` (``objects.ObjectSpec``)."""
    from dense_descriptor_grasp.objects import rpy_matrix

    upright = rpy_matrix(upright_rpy)
    client = pb.connect(pb.DIRECT)
    try:
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
        body = pb.loadURDF(urdf, globalScaling=scale, physicsClientId=client)
        T_com = com_offset(body, client)
        T_world_object = np.eye(4)
        T_world_object[:3, :3] = upright
        set_link_pose(body, T_world_object, T_com, client)
        lo, hi = (np.asarray(v) for v in pb.getAABB(body, physicsClientId=client))
        top_world = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2]])
        top_object = upright.T @ top_world
        return TABLE_Z - float(lo[2]), tuple(top_object)
    finally:
        pb.disconnect(client)
