import numpy as np
import pytest

from dense_descriptor_grasp.grasping.backprojection import backproject_point, point_at_match, robust_depth_at

K = np.array([[100.0, 0, 40.0], [0, 110.0, 30.0], [0, 0, 1]])


def test_median_ignores_invalid_and_outliers():
    depth = np.full((60, 80), 0.8, np.float32)
    depth[28:33, 38:43] = [[0.8, 0.0, np.nan, 0.8, 0.81]] * 5
    depth[30, 40] = 3.0           # a single spike
    s = robust_depth_at(depth, (40.2, 29.8), window=5)
    assert s.ok and s.depth == pytest.approx(0.8, abs=0.006)
    assert s.n_valid == 16 and s.n_total == 25   # 3 valid columns x 5 rows + the spike


def test_rejections_name_the_reason():
    depth = np.zeros((60, 80), np.float32)
    s = robust_depth_at(depth, (10, 10))
    assert not s.ok and "valid depth" in s.reason
    s = robust_depth_at(np.ones((60, 80), np.float32), (85, 10))
    assert not s.ok and "outside" in s.reason
    s = robust_depth_at(np.full((60, 80), 9.0, np.float32), (10, 10), max_depth=5.0)
    assert not s.ok
    with pytest.raises(ValueError, match="odd"):
        robust_depth_at(np.ones((60, 80), np.float32), (10, 10), window=4)


def test_backprojection_matches_hand_built_intrinsics():
    p = backproject_point((60.0, 8.0), 2.0, K)
    np.testing.assert_allclose(p, [(60 - 40) * 2 / 100, (8 - 30) * 2 / 110, 2.0])
    depth = np.full((60, 80), 1.5, np.float32)
    point, sample = point_at_match(depth, K, (40.0, 30.0))
    np.testing.assert_allclose(point, [0, 0, 1.5], atol=1e-9)
    point, sample = point_at_match(np.zeros_like(depth), K, (40.0, 30.0))
    assert point is None and sample.reason
    with pytest.raises(ValueError, match="focal"):
        backproject_point((1, 1), 1.0, np.zeros((3, 3)))
