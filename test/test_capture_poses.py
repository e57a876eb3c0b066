"""capture.poses: RGB-D odometry recovers a known motion; loop closures cut a closed orbit's drift; failures name
the frame pair. Scenes: capture.fusion's textured box on a textured table, ray-cast exactly (no pybullet)."""
import math

import numpy as np
import pytest

from dense_descriptor_grasp.capture import fusion, poses
from dense_descriptor_grasp.capture.frames import Frame
from dense_descriptor_grasp.geometry.rendering import intrinsics_from_fov, look_at


def _scene(width=120, height=90):
    mesh, obj = fusion.box_on_table_mesh()
    return mesh, obj, intrinsics_from_fov(50.0, width, height)


def _noisy(frames, seed=0, depth_a=0.01, rgb_std=2.0):
    """Depth noise sigma = a z^2 (part correlated over 4 px) and colour noise; the true masks and poses kept."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        d = f.depth.astype(np.float64)
        valid = d > 0
        smooth = rng.normal(size=(d.shape[0] // 4 + 1, d.shape[1] // 4 + 1)).repeat(4, 0).repeat(4, 1)
        n = math.sqrt(0.5) * smooth[:d.shape[0], :d.shape[1]] + math.sqrt(0.5) * rng.normal(size=d.shape)
        d = np.where(valid, d + depth_a * d ** 2 * n, 0.0)
        rgb = np.clip(f.rgb + rng.normal(0, rgb_std, f.rgb.shape), 0, 255).astype(np.uint8)
        out.append(Frame(rgb=rgb, depth=d.astype(np.float32), K=f.K, name=f.name, mask=f.mask,
                         T_world_camera=f.T_world_camera))
    return out


def _strip_poses(frames):
    return [Frame(rgb=f.rgb, depth=f.depth, K=f.K, name=f.name, mask=f.mask) for f in frames]


def test_odometry_recovers_a_known_small_motion():
    mesh, obj, K = _scene(160, 120)
    T0 = look_at([0.28, -0.12, 0.30], [0.0, 0.0, 0.04])
    # 2 cm sideways, 1 cm forward, 3 degrees about a tilted axis
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    a = math.radians(3.0)
    Kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    motion = np.eye(4)
    motion[:3, :3] = np.eye(3) + math.sin(a) * Kx + (1 - math.cos(a)) * Kx @ Kx
    motion[:3, 3] = [0.02, 0.0, 0.01]
    T1 = T0 @ motion
    frames = fusion.render_mesh_frames(mesh, obj, K, [T0, T1], 160, 120)
    res = poses.estimate_poses(_strip_poses(frames))
    np.testing.assert_allclose(res.poses[0], np.eye(4), atol=1e-12)  # world = first camera
    dt, dr = poses.relative_pose_error(res.poses[1], motion)
    assert dt < 0.005 and dr < 1.0, (dt, dr)
    assert res.edges[0].accepted and res.edges[0].fitness > 0.8
    # the first frame's known pose sets the world
    frames[1].T_world_camera = None
    res = poses.estimate_poses(frames)
    assert res.info["world"] == "first frame's T_world_camera"
    np.testing.assert_allclose(res.poses[0], T0, atol=1e-9)
    t_err, r_err = poses.pose_errors(res.poses, [T0, T1])
    assert t_err[1] < 0.005 and r_err[1] < 1.0, (t_err, r_err)


def test_a_wide_first_step_starts_from_matched_features():
    mesh, obj, K = _scene(128, 96)
    truth = fusion.orbit_poses([0.0, 0.0, 0.05], 0.4, 40.0, 2, arc_deg=45.0, closed=False)  # 45 deg, 0.3 m apart
    frames = _strip_poses(fusion.render_mesh_frames(mesh, obj, K, truth, 128, 96))
    with pytest.raises(poses.PoseEstimationError, match="000000 -> 000001"):
        poses.estimate_poses(frames, poses.PoseConfig(feature_init=False))  # odometry alone does not get there
    res = poses.estimate_poses(frames)
    t_err, r_err = poses.pose_errors(res.poses, truth)
    assert t_err[1] < 0.005 and r_err[1] < 1.0, (t_err, r_err)
    assert [e.method for e in res.edges if e.accepted] == ["odometry-features"]
    assert res.info["recovered_steps"] == 1


def test_pose_graph_with_loop_closure_reduces_drift_on_a_closed_orbit():
    mesh, obj, K = _scene(96, 72)
    truth = fusion.orbit_poses([0.0, 0.0, 0.05], 0.42, 40.0, 18)  # 20 degrees per step, closed
    frames = _noisy(_strip_poses(fusion.render_mesh_frames(mesh, obj, K, truth, 96, 72)), depth_a=0.02)
    config = poses.PoseConfig(neighbours=1, loop_min_gap=6)  # only the end of the orbit meets its start
    res = poses.estimate_poses(frames, config)
    loops = res.loop_closures
    # the orbit closes: the last frames are registered to the first ones
    assert any(e.target == len(frames) - 1 and e.source <= 1 for e in loops), [(e.source, e.target) for e in loops]
    assert res.info["optimized"]
    t_chain, r_chain = poses.pose_errors(res.chained, truth)
    t_opt, r_opt = poses.pose_errors(res.poses, truth)
    # drift is largest at the end of the chain; the loop closure pulls it back
    assert t_opt.max() < 0.4 * t_chain.max(), (t_opt.max(), t_chain.max())
    assert r_opt.max() < 0.4 * r_chain.max(), (r_opt.max(), r_chain.max())
    assert np.median(t_opt) < 0.005 and np.median(r_opt) < 1.0
    summary = res.summary()
    assert summary["loop_closures_accepted"] == len(loops) and summary["edges"][0]["source_name"] == "000000"


def test_unregistrable_frames_raise_naming_the_pair():
    mesh, obj, K = _scene(96, 72)
    T0 = look_at([0.3, 0.0, 0.3], [0.0, 0.0, 0.04])
    T1 = look_at([0.3, 0.03, 0.3], [0.0, 0.0, 0.04])
    frames = fusion.render_mesh_frames(mesh, obj, K, [T0, T1], 96, 72)
    # the third view sees a bare patch of table far away, from the other side
    far = look_at([-0.1, 0.5, 0.25], [0.0, 1.2, 0.0])
    big_mesh, big_obj = fusion.box_on_table_mesh(table_size=3.0, table_divisions=12)
    frames += fusion.render_mesh_frames(big_mesh, big_obj, K, [far], 96, 72, names=["000002"])
    with pytest.raises(poses.PoseEstimationError, match="000001 -> 000002"):
        poses.estimate_poses(_strip_poses(frames))


def test_frames_of_different_cameras_are_refused():
    mesh, obj, K = _scene(96, 72)
    T0 = look_at([0.3, 0.0, 0.3], [0.0, 0.0, 0.04])
    a = fusion.render_mesh_frames(mesh, obj, K, [T0], 96, 72)[0]
    b = fusion.render_mesh_frames(mesh, obj, intrinsics_from_fov(40.0, 96, 72), [T0], 96, 72, names=["x"])[0]
    with pytest.raises(poses.PoseEstimationError, match="one camera"):
        poses.estimate_poses([a, b])
    with pytest.raises(ValueError, match="no frames"):
        poses.estimate_poses([])
