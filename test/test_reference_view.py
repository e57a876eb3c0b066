"""grasping/reference_view.py: which named parts a view sees (the demo's reference view, the benchmark's)."""
import numpy as np
import pytest

from dense_descriptor_grasp.grasping.reference_view import camera_object_pose, visible_parts

K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])


def test_visible_parts_hides_occluded_part_and_parts_off_the_image_or_mask():
    depth = np.full((48, 64), 0.5, np.float32)
    mask = np.ones((48, 64), bool)
    mask[:, 50:] = False
    parts = {"front": (0.0, 0.0, 0.5), "behind": (0.01, 0.0, 0.6), "outside": (1.0, 0.0, 0.5),
             "off_mask": (0.1, 0.0, 0.5), "behind_camera": (0.0, 0.0, -0.5)}
    seen = visible_parts(np.eye(4), K, depth, mask, parts)
    assert set(seen) == {"front"} and seen["front"] == pytest.approx((32.0, 24.0))


def test_tolerance_and_border():
    depth = np.full((48, 64), 0.5, np.float32)
    mask = np.ones((48, 64), np.uint8)
    part = {"p": (0.0, 0.0, 0.505)}                    # 5 mm behind the surface
    assert visible_parts(np.eye(4), K, depth, mask, part) == {"p": pytest.approx((32.0, 24.0))}   # 6 mm tolerance
    assert visible_parts(np.eye(4), K, depth, mask, part, tolerance=0.004) == {}
    edge = {"e": (-0.32 * 0.5, 0.0, 0.5)}                # u = 0
    assert visible_parts(np.eye(4), K, depth, mask, edge) == {}
    assert set(visible_parts(np.eye(4), K, depth, mask, edge, border=0)) == {"e"}


def test_pose_of_the_object_in_the_camera_moves_the_parts():
    T_world_camera = np.eye(4)
    T_world_camera[:3, 3] = (0.0, 0.0, -0.5)
    T_world_object = np.eye(4)
    T_world_object[:3, 3] = (0.05, 0.0, 0.0)
    T = camera_object_pose(T_world_camera, T_world_object)
    np.testing.assert_allclose(T[:3, 3], (0.05, 0.0, 0.5))
    seen = visible_parts(T, K, np.full((48, 64), 0.5), np.ones((48, 64), bool), {"o": (0.0, 0.0, 0.0)})
    assert seen["o"] == pytest.approx((42.0, 24.0))
