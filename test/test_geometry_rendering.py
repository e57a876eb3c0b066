"""geometry/rendering.py: intrinsics from a field of view, look-at poses, pybullet's OpenGL conventions; the two
look-at helpers it replaced (sim.grasp_sim.look_at, data.render.look_at_pose) give the same matrices at their
call sites as before the merge."""
import math

import numpy as np
import pybullet as p
import pytest

from dense_descriptor_grasp.geometry.rendering import (depth_from_gl_buffer, gl_projection_matrix, gl_view_matrix,
                                                       intrinsics_from_fov, look_at)


def test_intrinsics_match_pybullet_projection():
    W, H, fov = 80, 64, 50.0
    K = intrinsics_from_fov(fov, W, H)
    P = np.asarray(p.computeProjectionMatrixFOV(fov, W / H, 0.01, 5.0)).reshape(4, 4, order="F")
    assert K[0, 0] == pytest.approx(P[0, 0] * W / 2)
    assert K[1, 1] == pytest.approx(P[1, 1] * H / 2)
    assert (K[0, 2], K[1, 2]) == ((W - 1) / 2, (H - 1) / 2)
    # the projection built from K is pybullet's for a centred K
    assert np.allclose(gl_projection_matrix(K, W, H, 0.01, 5.0), p.computeProjectionMatrixFOV(fov, W / H, 0.01, 5.0),
                       atol=1e-6)
    with pytest.raises(ValueError, match="fov"):
        intrinsics_from_fov(180.0, W, H)


def test_intrinsics_of_both_old_argument_orders():
    """sim.grasp_sim.intrinsics_from_fov(80, 64, 45.0) (width, height, fov) and data.render's (fov, width, height)
    are now one function with render's order: the same K as both gave."""
    K = intrinsics_from_fov(45.0, 80, 64)
    assert np.array_equal(K, [[77.25483399593904, 0.0, 39.5], [0.0, 77.25483399593904, 31.5], [0.0, 0.0, 1.0]])


def test_depth_from_gl_buffer_inverts_the_projection():
    near, far = 0.01, 6.0
    z = np.array([[0.02, 0.3], [1.0, 5.9]])
    d = (far - near * far / z) / (far - near)
    assert np.allclose(depth_from_gl_buffer(d, near, far), z, rtol=1e-5)
    assert depth_from_gl_buffer(np.ones((1, 1)), near, far)[0, 0] == 0.0
    just_below = np.full((1, 1), 1.0 - 5e-8)     # the generator treats it as the far plane, the grasp judge not
    assert depth_from_gl_buffer(just_below, near, far)[0, 0] == 0.0
    assert depth_from_gl_buffer(just_below, near, far, far_tolerance=0.0)[0, 0] == pytest.approx(far, rel=1e-4)


def test_look_at_is_an_optical_frame_with_world_up_as_image_up():
    eye, target = np.array([0.5, 0.2, 0.4]), np.array([0.0, 0.0, 0.05])
    T = look_at(eye, target)
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9) and np.linalg.det(T[:3, :3]) > 0
    Tinv = np.linalg.inv(T)
    t_cam = Tinv[:3, :3] @ target + Tinv[:3, 3]
    assert np.allclose(t_cam[:2], 0, atol=1e-9) and t_cam[2] > 0            # target on the optical axis
    above = Tinv[:3, :3] @ (target + [0, 0, 0.1]) + Tinv[:3, 3]
    assert above[1] < 0                                                        # world up is image up (y down)
    # roll turns the image about the optical axis; straight down falls back to world y; coincident points refuse
    R = look_at(eye, target, roll=math.pi / 2)[:3, :3]
    assert np.allclose(R[:, 2], T[:3, 2]) and np.allclose(R[:, 0], T[:3, 1])
    down = look_at([0.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    assert np.allclose(down[:3, 2], [0, 0, -1]) and np.allclose(down[:3, 0], [1, 0, 0])
    with pytest.raises(ValueError, match="coincide"):
        look_at(eye, eye)


def test_view_matrix_is_the_inverse_gl_camera():
    T = look_at([0.3, -0.2, 0.5], [0.0, 0.0, 0.0])
    view = np.asarray(gl_view_matrix(T)).reshape(4, 4, order="F")
    assert np.allclose(view @ T @ np.diag([1.0, -1.0, -1.0, 1.0]), np.eye(4), atol=1e-12)


# The matrices the two old helpers returned at their call sites (computed with the code before the merge).
_GRASP_BENCHMARK_REFERENCE_CAMERA = (   # benchmarks/grasp_sim auto reference: sim.grasp_sim.look_at(eye, centre)
    [-0.17611745157472036, -0.06333816678252091, 0.25722016871040504],
    [-0.006991074979305276, -0.0017811998724937342, 0.04272772463709117],
    [[0.3420201433256687, -0.7198463103929542, 0.6040227735550537, -0.17611745157472036],
     [-0.9396926207859084, -0.2620026302293849, 0.2198463103929542, -0.06333816678252091],
     [0.0, -0.6427876096865395, -0.766044443118978, 0.25722016871040504],
     [0.0, 0.0, 0.0, 1.0]])
_SIM_CAMERA_160x120 = [   # SimCamera(["duck"], 160, 120, 50, seed 0, elevation 55): data.render.look_at_pose
    [-0.8, 0.49149122657339495, -0.3441458618106277, 0.0652014070788416],
    [0.5999999999999999, 0.6553216354311935, -0.458861149080837, 0.0869352094384555],
    [0.0, -0.5735764363510462, -0.8191520442889918, 0.18022977323341127],
    [0.0, 0.0, 0.0, 1.0]]


def test_the_old_call_sites_give_the_same_matrices():
    eye, centre, expected = _GRASP_BENCHMARK_REFERENCE_CAMERA
    assert np.allclose(look_at(eye, centre), expected, rtol=0, atol=1e-15)

    from dense_descriptor_grasp.sim.cameras import SimCamera

    cam = SimCamera(["duck"], 160, 120, 50.0, 0, ("textured",), 55.0)
    try:
        cam.new_pose()
        assert np.allclose(cam.T_world_camera, _SIM_CAMERA_160x120, rtol=0, atol=1e-15)
    finally:
        cam.close()


def test_the_grasp_benchmark_reference_camera_inputs_are_unchanged():
    """The inputs of the first call site come from the registry's duck at yaw 0 (same numbers as before)."""
    from dense_descriptor_grasp.objects import part_world
    from dense_descriptor_grasp.sim.grasp_sim import random_object_pose

    T = random_object_pose(np.random.default_rng(0), "duck", 1.0, x_range=(0, 0), y_range=(0, 0), yaw_range=(0, 0))
    centre = part_world("duck", T, "top", 1.0) * np.array([1, 1, 0.5])
    az, el, dist = math.radians(200.0), math.radians(50.0), 0.28
    eye = centre + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    assert np.allclose(eye, _GRASP_BENCHMARK_REFERENCE_CAMERA[0], rtol=0, atol=1e-15)
    assert np.allclose(centre, _GRASP_BENCHMARK_REFERENCE_CAMERA[1], rtol=0, atol=1e-15)
