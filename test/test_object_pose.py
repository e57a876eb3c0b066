import numpy as np
import pytest

from dense_descriptor_grasp.geometry.se3 import se3_apply, se3_exp
from dense_descriptor_grasp.grasping.object_pose import carry_grasp, ransac_object_pose


def scene(n=8, seed=0):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(-0.06, 0.06, (n, 3)) + [0, 0, 0.6]
    T = np.asarray(se3_exp(rng.normal(0, [0.05, 0.05, 0.05, 0.6, 0.6, 0.6])))
    return ref, T, np.asarray(se3_apply(T, ref))


def test_exact_recovery_without_noise():
    ref, T, live = scene()
    result = ransac_object_pose(ref, live)
    assert result.ok and result.reason == ""
    np.testing.assert_allclose(result.T_live_ref, T, atol=1e-9)
    assert result.inliers.all() and result.rms < 1e-9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_outliers_are_rejected(seed):
    ref, T, live = scene(n=10, seed=seed)
    rng = np.random.default_rng(seed + 100)
    bad = rng.choice(10, size=4, replace=False)                   # 40 % wrong matches
    live = live.copy()
    live[bad] += rng.uniform(0.03, 0.1, (4, 3)) * rng.choice([-1, 1], (4, 3))
    live[~np.isin(np.arange(10), bad)] += rng.normal(0, 0.001, (6, 3))   # 1 mm noise on the good ones
    result = ransac_object_pose(ref, live, inlier_threshold=0.01, seed=seed)
    assert result.ok
    assert set(np.flatnonzero(~result.inliers)) == set(bad)
    t_err = np.linalg.norm(result.T_live_ref[:3, 3] - T[:3, 3])
    R_err = np.degrees(np.arccos(np.clip((np.trace(result.T_live_ref[:3, :3].T @ T[:3, :3]) - 1) / 2, -1, 1)))
    assert t_err < 0.005 and R_err < 3.0
    # plain Kabsch on all points is far worse: RANSAC earns its keep
    from dense_descriptor_grasp.geometry.rigid_fit import kabsch
    T_all = np.asarray(kabsch(ref, live))
    assert np.linalg.norm(T_all[:3, 3] - T[:3, 3]) > t_err


def test_random_sampling_when_there_are_many_references():
    ref, T, live = scene(n=30, seed=4)
    live = live.copy()
    live[:9] += 0.2
    result = ransac_object_pose(ref, live, iterations=300, seed=0)
    assert result.ok and not result.inliers[:9].any() and result.inliers[9:].all()
    np.testing.assert_allclose(result.T_live_ref, T, atol=1e-9)


def test_too_few_or_degenerate_matches_give_a_reason():
    ref, T, live = scene(n=5)
    valid = np.array([True, True, False, False, False])
    result = ransac_object_pose(ref, live, valid)
    assert not result.ok and "only 2 of 5" in result.reason
    live_nan = live.copy()
    live_nan[1:4] = np.nan                                        # no depth
    assert "only 2" in ransac_object_pose(ref, live_nan).reason
    line = np.outer(np.linspace(0, 0.1, 5), [1, 0, 0])
    result = ransac_object_pose(line, line + 0.1)
    assert not result.ok and "collinear" in result.reason
    scrambled = live[[1, 2, 3, 4, 0]] + np.array([0.0, 0.3, 0.0])
    result = ransac_object_pose(ref, scrambled, min_inliers=4)
    assert not result.ok and "inliers" in result.reason
    with pytest.raises(ValueError, match="inlier_threshold"):
        ransac_object_pose(ref, live, inlier_threshold=0)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        ransac_object_pose(ref, live[:3])


def test_grasp_is_carried_by_the_object_pose():
    ref, T, live = scene()
    T_ref_grasp = np.eye(4)
    T_ref_grasp[:3, 3] = ref[0]
    result = ransac_object_pose(ref, live)
    T_live_grasp = carry_grasp(result.T_live_ref, T_ref_grasp)
    np.testing.assert_allclose(T_live_grasp[:3, 3], live[0], atol=1e-9)
    np.testing.assert_allclose(T_live_grasp[:3, :3], T[:3, :3], atol=1e-9)
