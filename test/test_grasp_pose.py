import numpy as np
import pytest

from dense_descriptor_grasp.geometry.se3 import matrix_from_quaternion
from dense_descriptor_grasp.grasping.depth_at_match import backproject_point
from dense_descriptor_grasp.grasping.grasp_pose import (grasp_pose_at, pose_from_matrix, rotation_from_approach,
                                                        surface_normal_at)

K = np.array([[120.0, 0, 40.0], [0, 120.0, 30.0], [0, 0, 1]])
H, W = 60, 80


def plane_depth(normal, distance):
    """Depth image of the plane n . X = distance (n unit, camera frame)."""
    vv, uu = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu)], -1)
    return (distance / (rays @ normal)).astype(np.float32)


def check_rotation(pose):
    R = pose.rotation
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-9)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(np.asarray(matrix_from_quaternion(pose.quaternion)), R, atol=1e-9)
    assert pose.quaternion.shape == (4,)


@pytest.mark.parametrize("tilt", [0.0, 0.4, -0.7])
def test_surface_normal_of_a_tilted_plane(tilt):
    n = np.array([np.sin(tilt), 0.2 * np.sin(tilt), -np.cos(tilt)])
    n /= np.linalg.norm(n)
    depth = plane_depth(n, -0.8)          # plane faces the camera: n . X = -0.8 with X in front
    uv = (45.0, 27.0)
    normal, reason = surface_normal_at(depth, K, uv)
    assert reason == ""
    np.testing.assert_allclose(normal, n, atol=1e-4)
    point = backproject_point(uv, float(depth[27, 45]), K)
    pose = grasp_pose_at(point, depth, K, uv, "surface_normal")
    assert pose.approach_mode == "surface_normal" and pose.note == ""
    np.testing.assert_allclose(pose.rotation[:, 2], -n, atol=1e-4)   # approach goes into the surface
    np.testing.assert_allclose(pose.position, point)
    check_rotation(pose)


def test_edge_pixels_from_the_background_do_not_tilt_the_normal():
    depth = np.full((H, W), 0.6, np.float32)
    depth[:, 44:] = 1.2                                      # background 0.6 m behind, right of the match
    normal, reason = surface_normal_at(depth, K, (42.0, 30.0), window=9)
    np.testing.assert_allclose(normal, [0, 0, -1], atol=1e-6)


def test_camera_ray_mode_and_fallback():
    point = np.array([0.1, -0.05, 0.7])
    pose = grasp_pose_at(point, approach_mode="camera_ray")
    np.testing.assert_allclose(pose.rotation[:, 2], point / np.linalg.norm(point))
    check_rotation(pose)
    depth = np.zeros((H, W), np.float32)
    pose = grasp_pose_at(point, depth, K, (40.0, 30.0), "surface_normal")
    assert pose.approach_mode == "camera_ray" and "unavailable" in pose.note
    np.testing.assert_allclose(pose.rotation[:, 2], point / np.linalg.norm(point))
    with pytest.raises(ValueError, match="approach_mode"):
        grasp_pose_at(point, approach_mode="sideways")
    with pytest.raises(ValueError, match="needs depth"):
        grasp_pose_at(point, approach_mode="surface_normal")


def test_rotation_from_approach_is_deterministic_for_all_directions():
    for z in [(0, 0, 1), (1, 0, 0), (0, 1, 0), (0.3, -0.2, 0.9), (-1, 0.01, 0)]:
        R = rotation_from_approach(z)
        np.testing.assert_allclose(R[:, 2], np.array(z) / np.linalg.norm(z), atol=1e-12)
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1)
    with pytest.raises(ValueError):
        rotation_from_approach((0, 0, 0))
    T = np.eye(4)
    T[:3, :3] = rotation_from_approach((0.3, -0.2, 0.9))
    T[:3, 3] = [1, 2, 3]
    pose = pose_from_matrix(T)
    np.testing.assert_allclose(pose.matrix, T, atol=1e-12)
