"""Camera set-up for rendering (numpy only, no torch): intrinsics from a field of view, look-at poses, and the
OpenGL conventions of pybullet's renderer (view and projection matrices, depth buffer -> metres).

The one home of these ideas: the data generator (``data/render.py``), the grasp judge's renderer
(``sim/grasp_sim.GraspScene.render``), the sim camera (``sim/cameras.py``), the simulated capture and the
benchmarks use them. Conventions as everywhere (docs/ARCHITECTURE.md): ``T_world_camera`` is the optical frame
(x right, y down, z forward), pixel centres at integer ``(u, v)``, depth in metres along the optical axis, 0 = no
depth.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["intrinsics_from_fov", "look_at", "gl_view_matrix", "gl_projection_matrix", "depth_from_gl_buffer"]


def intrinsics_from_fov(fov_deg: float, width: int, height: int) -> np.ndarray:
    """``K (3, 3)`` float64 of a square-pixel pinhole with vertical field of view ``fov_deg`` (degrees), as
    pybullet's ``computeProjectionMatrixFOV(fov_deg, width / height, ...)`` renders it.

    ``fx = fy = (H / 2) / tan(fov / 2)``; with pixel centres at integer coordinates the principal point is
    ``((W - 1) / 2, (H - 1) / 2)``.
    """
    if not (0.0 < fov_deg < 180.0) or width <= 0 or height <= 0:
        raise ValueError(f"intrinsics_from_fov: need 0 < fov_deg < 180 and a positive size, "
                         f"got {fov_deg}, {width}x{height}")
    f = (height / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def look_at(eye, target, up=(0.0, 0.0, 1.0), roll: float = 0.0) -> np.ndarray:
    """``T_world_camera (4, 4)`` of an optical-frame camera at ``eye`` (3,) looking at ``target`` (3,).

    x points right and y down in the image, so world ``up`` appears upwards in the image; when the view runs
    along ``up`` (the cross product vanishes) world y takes its place. ``roll`` (radians) then turns the camera
    about its optical axis. Raises ``ValueError`` when eye and target coincide.
    """
    eye = np.asarray(eye, dtype=np.float64).reshape(3)
    z = np.asarray(target, dtype=np.float64).reshape(3) - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64).reshape(3))
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)  # image down = world down
    R = np.stack([x, y, z], axis=1)
    c, s = math.cos(roll), math.sin(roll)
    R = R @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = eye
    return T


def gl_view_matrix(T_world_camera) -> list:
    """pybullet ``viewMatrix`` (16 floats, column-major) for an optical-frame camera pose.

    The OpenGL camera looks along its -z with y up: ``T_world_gl = T_world_camera @ diag(1, -1, -1, 1)``.
    """
    T_world_gl = np.asarray(T_world_camera, dtype=np.float64) @ np.diag([1.0, -1.0, -1.0, 1.0])
    view = np.linalg.inv(T_world_gl)
    return view.flatten(order="F").tolist()


def gl_projection_matrix(K, width: int, height: int, near: float, far: float) -> list:
    """pybullet ``projectionMatrix`` (16 floats, column-major) that renders the pinhole ``K (3, 3)`` into a
    ``width`` x ``height`` image (any principal point; pixel centres at integer coordinates) with clip planes
    ``near`` / ``far`` (metres). For a centred ``K`` of a field of view, pybullet's ``computeProjectionMatrixFOV``
    gives the same camera (the data generator calls that one)."""
    K = np.asarray(K, dtype=np.float64)
    W, H = int(width), int(height)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    proj = np.array([
        [2 * fx / W, 0.0, 1 - 2 * (cx + 0.5) / W, 0.0],
        [0.0, 2 * fy / H, 2 * (cy + 0.5) / H - 1, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0],
    ])
    return proj.T.reshape(-1).tolist()


def depth_from_gl_buffer(buffer, near: float, far: float, far_tolerance: float = 1e-7) -> np.ndarray:
    """Metric depth along the optical axis ``(H, W)`` float32 from an OpenGL depth buffer in [0, 1].

    ``z = near * far / (far - (far - near) * d)``; pixels at the far plane (``d >= 1 - far_tolerance``: nothing
    hit) become 0. The data generator uses the default; the grasp judge's renderer ``far_tolerance=0`` (only
    ``d >= 1`` is nothing), as each always did.
    """
    d = np.asarray(buffer, dtype=np.float64)
    z = near * far / (far - (far - near) * d)
    z[d >= 1.0 - far_tolerance] = 0.0
    return z.astype(np.float32)
