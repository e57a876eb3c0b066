import numpy as np
import pytest

from dense_descriptor_grasp.geometry.camera import backproject
from dense_descriptor_grasp.geometry.se3 import se3_apply, se3_exp, se3_inverse
from dense_descriptor_grasp.grasping.grasp_estimate import GraspSettings, estimate_grasp
from dense_descriptor_grasp.grasping.reference import Reference

K = np.array([[120.0, 0, 40.0], [0, 120.0, 30.0], [0, 0, 1]])
H, W, D = 60, 80, 8
PIXELS = np.array([[20, 15], [60, 18], [35, 45], [55, 40], [12, 40]], dtype=float)


def live_frame(seed=0):
    rng = np.random.default_rng(seed)
    desc = rng.standard_normal((D, H, W)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=0, keepdims=True)
    vv, uu = np.mgrid[0:H, 0:W]
    depth = (0.6 + 0.002 * (uu - 40) + 0.001 * (vv - 30)).astype(np.float32)   # a gently tilted surface
    return desc, depth


def reference_for(desc, depth, T_live_ref, grasp_index=0):
    """References whose live 3D points are known; their reference-view points are mapped back by T_live_ref^-1."""
    z = depth[PIXELS[:, 1].astype(int), PIXELS[:, 0].astype(int)]
    live_points = np.asarray(backproject(PIXELS, z.astype(np.float64), K))
    ref_points = np.asarray(se3_apply(se3_inverse(T_live_ref), live_points))
    T_ref_grasp = np.eye(4)
    T_ref_grasp[:3, 3] = ref_points[grasp_index]
    refs = desc[:, PIXELS[:, 1].astype(int), PIXELS[:, 0].astype(int)].T
    return Reference("m", refs, PIXELS, ref_points, T_ref_grasp=T_ref_grasp, grasp_index=grasp_index), live_points


def test_six_dof_pose_from_several_matches():
    desc, depth = live_frame()
    T = np.asarray(se3_exp(np.array([0.02, -0.01, 0.05, 0.2, -0.4, 0.3])))
    ref, live_points = reference_for(desc, depth, T)
    est = estimate_grasp(desc, depth, K, ref, GraspSettings(inlier_threshold=0.005))
    assert est.mode == "object_pose" and est.reason == ""
    assert est.usable.all() and est.object_pose.n_inliers == 5
    np.testing.assert_allclose(est.pose.position, live_points[0], atol=2e-3)
    R_err = est.pose.rotation.T @ T[:3, :3]
    assert np.degrees(np.arccos(np.clip((np.trace(R_err) - 1) / 2, -1, 1))) < 1.0
    assert 0.9 < est.confidence <= 1.0


def test_single_point_fallback_and_no_pose_without_depth():
    desc, depth = live_frame()
    ref, live_points = reference_for(desc, depth, np.eye(4))
    depth_holes = depth.copy()
    for u, v in PIXELS[1:4].astype(int):
        depth_holes[v - 4:v + 5, u - 4:u + 5] = 0.0                  # 3 of 5 references lose their depth
    est = estimate_grasp(desc, depth_holes, K, ref)
    assert est.mode == "single_point" and "6-DoF object pose failed" in est.reason
    np.testing.assert_allclose(est.pose.position, live_points[0], atol=2e-3)
    assert est.pose.approach_mode == "surface_normal"
    depth_holes[:, :] = 0.0
    est = estimate_grasp(desc, depth_holes, K, ref)
    assert est.pose is None and est.mode == "none" and "no valid depth" in est.reason


def test_no_pose_when_the_grasp_reference_match_is_weak():
    desc, depth = live_frame()
    ref, _ = reference_for(desc, depth, np.eye(4))
    ref.descriptors[0] = -ref.descriptors[0]                          # nothing in the image looks like it
    est = estimate_grasp(desc, depth, K, ref, GraspSettings(max_distance=0.01, use_object_pose=False))
    assert est.pose is None and "weak match" in est.reason


def test_shape_errors():
    desc, depth = live_frame()
    ref, _ = reference_for(desc, depth, np.eye(4))
    with pytest.raises(ValueError, match="sizes differ"):
        estimate_grasp(desc, depth[:, :40], K, ref)
    with pytest.raises(ValueError, match="D=4"):
        estimate_grasp(desc[:4], depth, K, ref)
    with pytest.raises(ValueError, match="metric"):
        GraspSettings(metric="hamming")


def test_three_agreeing_matches_out_of_five_are_not_enough_by_default():
    desc, depth = live_frame()
    T = np.asarray(se3_exp(np.array([0.02, -0.01, 0.05, 0.2, -0.4, 0.3])))
    ref, live_points = reference_for(desc, depth, T)
    ref.points[3:] += 0.05                     # two references disagree with the other three by 5 cm
    est = estimate_grasp(desc, depth, K, ref, GraspSettings(inlier_threshold=0.005))
    assert est.mode == "single_point" and "need 4" in est.reason
    est = estimate_grasp(desc, depth, K, ref, GraspSettings(inlier_threshold=0.005, min_inliers=3))
    assert est.mode == "object_pose" and est.object_pose.inliers.tolist() == [True, True, True, False, False]


def test_single_point_grasp_at_a_match_beside_the_object_lands_on_the_object():
    """The grasp reference matches 2 px outside a box 0.2 m in front of the surface: with snapping (default) the
    grasp is at the box's depth and pixel, without it at the surface behind."""
    desc, depth = live_frame()
    ref, _ = reference_for(desc, depth, np.eye(4))
    u, v = PIXELS[0].astype(int)                                    # (20, 15)
    box = depth.copy()
    box[v + 2:v + 12, u - 6:u + 6] = 0.40                          # the box's top edge is 2 px below the match
    est = estimate_grasp(desc, box, K, ref, GraspSettings(use_object_pose=False))
    assert est.mode == "single_point"
    assert est.pose.position[2] == pytest.approx(0.40, abs=1e-6)
    np.testing.assert_allclose(est.live_pixels[0], [u, v + 2])
    est = estimate_grasp(desc, box, K, ref, GraspSettings(use_object_pose=False, foreground_snap_px=0))
    assert est.pose.position[2] > 0.5                            # the tilted surface, ~0.54 m here
    with pytest.raises(ValueError, match="foreground_snap_px"):
        GraspSettings(foreground_snap_px=-1)
