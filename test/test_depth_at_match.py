import numpy as np
import pytest

from dense_descriptor_grasp.grasping.depth_at_match import (backproject_point, point_and_pixel_at_match,
                                                            point_at_match, robust_depth_at, snap_to_foreground)

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


def _object_on_table():
    """A 0.30 m object (a disc of radius 12 px centred at (40, 30)) in front of a table at 0.60 m."""
    depth = np.full((60, 80), 0.60, np.float32)
    vv, uu = np.mgrid[0:60, 0:80]
    inside = (uu - 40) ** 2 + (vv - 30) ** 2 <= 12 ** 2
    depth[inside] = 0.30
    return depth, inside


def test_match_just_outside_the_silhouette_snaps_onto_the_object():
    depth, inside = _object_on_table()
    uv = (40.0, 16.0)                       # 2 px above the disc's top edge (v = 18): table depth there
    point, sample = point_at_match(depth, K, uv)
    assert sample.depth == pytest.approx(0.60)          # without snapping: the table behind
    point, sample, used = point_and_pixel_at_match(depth, K, uv, snap_radius=4)
    assert sample.ok and sample.depth == pytest.approx(0.30)
    np.testing.assert_allclose(used, [40.0, 18.0])      # the nearest object pixel
    assert inside[int(used[1]), int(used[0])]
    np.testing.assert_allclose(point, backproject_point(used, 0.30, K))


def test_edge_pixel_on_the_object_keeps_its_pixel_and_uses_object_depth_only():
    depth, _ = _object_on_table()
    uv = (40.0, 18.0)                       # on the top edge: most of its 5x5 window is table
    _, plain = point_at_match(depth, K, uv)
    assert plain.depth == pytest.approx(0.60)
    snap = snap_to_foreground(depth, uv, radius=4)
    assert snap.moved_px == 0.0 and snap.surface[18, 40] and not snap.surface[17, 40]
    _, sample = point_at_match(depth, K, uv, snap_radius=4)
    assert sample.depth == pytest.approx(0.30)


def test_no_discontinuity_or_far_from_edges_leaves_the_match_alone():
    depth, _ = _object_on_table()
    for uv in [(40.0, 30.0), (70.0, 50.0)]:             # object centre, table corner
        snap = snap_to_foreground(depth, uv, radius=4)
        assert snap.moved_px == 0.0 and snap.surface is None
        np.testing.assert_allclose(snap.uv, uv)
    # a steep but continuous surface (8 mm per pixel: 13 cm across the window) is one surface, not a step
    slope = np.tile(np.linspace(0.3, 0.93, 80, dtype=np.float32), (60, 1))
    snap = snap_to_foreground(slope, (40.0, 30.0), radius=6)
    assert snap.moved_px == 0.0 and snap.surface is None
    # off by default, and out-of-image pixels are left for robust_depth_at to reject
    assert snap_to_foreground(depth, (40.0, 16.0), radius=0).moved_px == 0.0
    assert snap_to_foreground(depth, (95.0, 16.0), radius=4).moved_px == 0.0
    with pytest.raises(ValueError, match="radius"):
        snap_to_foreground(depth, (40.0, 16.0), radius=-1)
    with pytest.raises(ValueError, match="discontinuity"):
        snap_to_foreground(depth, (40.0, 16.0), radius=4, discontinuity=0.0)


def test_snapping_beyond_the_radius_does_not_happen():
    depth, _ = _object_on_table()
    uv = (40.0, 8.0)                        # 10 px above the edge: the 9x9 window sees only table
    snap = snap_to_foreground(depth, uv, radius=4)
    assert snap.moved_px == 0.0
    _, sample = point_at_match(depth, K, uv, snap_radius=4)
    assert sample.depth == pytest.approx(0.60)


def test_curved_object_surface_is_not_split_but_a_step_behind_it_is():
    """A dome (radius 5 cm, 20 px, its rim steep) on a table at 0.5 m: matches on the dome stay put even where it is
    steep, a match on the table just beside the rim moves onto the dome."""
    K_ = np.array([[200.0, 0, 40.0], [0, 200.0, 30.0], [0, 0, 1]])
    vv, uu = np.mgrid[0:60, 0:80]
    r2 = ((uu - 40) * 0.5 / 200) ** 2 + ((vv - 30) * 0.5 / 200) ** 2    # metres at the table plane
    dome = r2 < 0.05 ** 2
    depth = np.where(dome, 0.5 - np.sqrt(np.clip(0.05 ** 2 - r2, 0, None)), 0.5).astype(np.float32)
    depth[dome & (depth > 0.48)] = 0.0                                  # the grazing rim reads no depth
    for uv in [(40.0, 30.0), (40.0, 14.0), (52.0, 38.0)]:
        snap = snap_to_foreground(depth, uv, radius=6)
        assert snap.moved_px == 0.0, uv
    u_table = 61
    assert depth[30, u_table] == pytest.approx(0.5) and depth[30, 55] < 0.49
    snap = snap_to_foreground(depth, (float(u_table), 30.0), radius=6)
    assert 0 < snap.moved_px <= 6 and depth[int(snap.uv[1]), int(snap.uv[0])] < 0.49
    point, sample = point_at_match(depth, K_, (float(u_table), 30.0), snap_radius=6)
    assert sample.ok and sample.depth < 0.49


def test_near_depth_edge_sees_a_step_behind_or_missing_depth_within_the_radius():
    from dense_descriptor_grasp.grasping.depth_at_match import near_depth_edge

    depth = np.full((20, 30), 1.0, np.float32)
    depth[:, 20:] = 1.5            # the table behind the object
    depth[:, :3] = 0.0             # no depth at the left border
    depth[10, 10] = 0.99           # a small bump: the same surface
    assert near_depth_edge(depth, (18, 5)) and near_depth_edge(depth, (4, 5))      # 2 px from the step / the hole
    assert not near_depth_edge(depth, (17, 5)) and not near_depth_edge(depth, (5, 5))
    assert not near_depth_edge(depth, (10, 10))
    assert near_depth_edge(depth, (17, 5), radius=3)
    assert not near_depth_edge(depth, (18, 5), discontinuity=0.6)                  # 0.5 m is not a step then
    assert not near_depth_edge(depth, (25, 5))     # on the table: nothing farther behind it
    assert not near_depth_edge(depth, (1, 5))      # no depth at the pixel itself: nothing to judge
    assert not near_depth_edge(depth, (40, 5)) and not near_depth_edge(depth, (np.nan, 5))   # outside the image
    with pytest.raises(ValueError, match="radius"):
        near_depth_edge(depth, (5, 5), radius=-1)
