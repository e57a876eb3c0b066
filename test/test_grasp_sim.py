"""The simulated grasp judge (dense_descriptor_grasp.sim.grasp_sim) and a quick run of benchmarks/grasp_sim."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dense_descriptor_grasp.geometry.rendering import intrinsics_from_fov, look_at
from dense_descriptor_grasp.objects import part_world
from dense_descriptor_grasp.sim import grasp_sim as gs

REPO = Path(__file__).resolve().parents[1]
# fewer steps than the defaults where it does not change the outcome: a shorter settle, lift and hold
FAST = dict(settle_time=0.1, lift_height=0.06, hold_time=0.25)


def _true_grasp(seed: int):
    T = gs.random_object_pose(np.random.default_rng(seed), "duck")
    position, quaternion = gs.pose_from_matrix(gs.reference_grasp_world("duck", T))
    return T, position, quaternion


def test_grasp_at_true_pose_succeeds():
    T, position, quaternion = _true_grasp(3)
    result = gs.execute_grasp("duck", T, position, quaternion, seed=3, **FAST)
    assert result.success, result.reason
    assert result.contact_left and result.contact_right
    assert result.lift_height_m > 0.5 * FAST["lift_height"]
    assert 0.02 < result.finger_opening_m < 0.06  # the fingers hold the 4.2 cm head, not nothing


def test_grasp_20cm_away_fails():
    T, position, quaternion = _true_grasp(3)
    result = gs.execute_grasp("duck", T, position + np.array([0.2, 0.0, 0.0]), quaternion, seed=3, **FAST)
    assert not result.success
    assert abs(result.lift_height_m) < 0.005  # the duck stayed on the table
    assert not (result.contact_left or result.contact_right)


def test_deterministic_for_a_seed():
    T, position, quaternion = _true_grasp(5)
    position = position + np.array([0.004, -0.003, 0.0])  # off-centre, so the physics has something to do
    a = gs.execute_grasp("duck", T, position, quaternion, seed=11, **FAST)
    b = gs.execute_grasp("duck", T, position, quaternion, seed=11, **FAST)
    c = gs.execute_grasp("duck", T, position, quaternion, seed=12, **FAST)
    assert a.to_dict() == b.to_dict()
    assert a.physics != c.physics  # the seed drives the physics randomisation


def test_pose_helpers():
    rng = np.random.default_rng(0)
    T = gs.random_object_pose(rng, "duck")
    assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3))
    assert np.isclose(T[:3, 2] @ [0, 0, 1], 0.0, atol=1e-9)  # duck up (object +y) is world up
    assert np.allclose(T[:3, 1], [0, 0, 1])
    # the head top lies ~8 cm above the table, whatever the yaw
    assert 0.075 < part_world("duck", T)[2] < 0.09
    # camera-frame grasp -> world
    T_wc = look_at([0.3, 0.1, 0.4], [0.0, 0.0, 0.05])
    G = gs.reference_grasp_world("duck", T)
    T_cg = np.linalg.inv(T_wc) @ G
    p, q = gs.grasp_pose_in_world(T_wc, T_cg[:3, 3], gs.pose_from_matrix(T_cg)[1])
    assert np.allclose(p, G[:3, 3]) and np.allclose(gs.pose_matrix(p, q), G, atol=1e-9)
    # symmetric rotation error: the mirror-image jaw assignment is the same grasp
    flip = np.diag([-1.0, -1.0, 1.0])
    assert gs.rotation_error_deg(G[:3, :3] @ flip, G[:3, :3]) < 1e-6
    assert abs(gs.rotation_error_deg(G[:3, :3] @ flip, G[:3, :3], gripper_symmetric=False) - 180) < 1e-4
    with pytest.raises(ValueError, match="unknown object"):
        gs.GraspScene("no_such_object")
    with pytest.raises(ValueError, match="no part"):
        gs.reference_grasp_world("duck", T, "wing_tip")
    with pytest.raises(ValueError, match="quaternion"):
        gs.pose_matrix([0, 0, 0], [0, 0, 0, 0])


def test_render_matches_the_part_projection():
    from dense_descriptor_grasp.geometry.camera import project

    T = gs.random_object_pose(np.random.default_rng(1), "duck")
    top = part_world("duck", T)
    T_wc = look_at(top + np.array([0.15, 0.05, 0.2]), top - np.array([0, 0, 0.03]))
    K = intrinsics_from_fov(45.0, 80, 64)
    with gs.GraspScene("duck", T, params=gs.SimParams(settle_time=0.0)) as scene:
        rgb, depth, mask = scene.render(T_wc, K, 80, 64)
    assert rgb.shape == (64, 80, 3) and depth.shape == (64, 80) and mask.any()
    p_cam = (np.linalg.inv(T_wc) @ np.append(top, 1))[:3]
    uv, z = project(p_cam[None], K)
    u, v = np.round(uv[0]).astype(int)
    assert mask[v, u]
    assert abs(depth[v, u] - z[0]) < 0.01


def test_quick_benchmark_writes_the_table(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.grasp_sim", "--quick", "--poses", "2",
                           "--noise-mm", "0", "--output-dir", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (tmp_path / "grasp_sim.md").read_text()
    assert "| predictor | success |" in md and "oracle, noise 0 mm" in md
    data = json.loads((tmp_path / "grasp_sim.json").read_text())
    (summary,) = data["summaries"]
    # the oracle without noise grasps the part itself with the reference grasp: the judge lifts the duck every time
    assert (summary["trials"], summary["published"], summary["six_dof"], summary["successes"]) == (2, 2, 2, 2)
    assert summary["success_rate"] == 1.0 and summary["failure_reasons"] == {}
    assert summary["point_error_mm_median"] < 1e-6 and summary["rotation_error_deg_median"] < 1e-3
    assert (tmp_path / "grasp_sim.png").stat().st_size > 1000


def test_rendered_pipeline_with_perfect_descriptors_grasps_the_part():
    """The model mode's geometry end to end (render, reference view, matching, depth, RANSAC pose, camera ->
    world), with descriptors = true object coordinates instead of a network."""
    from benchmarks.grasp_sim import GroundTruthDescriptorPredictor, run_trial

    predictor = GroundTruthDescriptorPredictor("duck", "head_top", 1.0, width=128, height=96)
    try:
        assert "head_top" in predictor.reference.names and len(predictor.reference) >= 3
        row = run_trial(predictor, "duck", "head_top", 1.0, seed=0, index=1, params=gs.SimParams(**FAST))
    finally:
        predictor.close()
    assert row["mode"] in ("object_pose", "single_point"), row["note"]
    assert row["point_error_mm"] < 5.0
    assert row["success"], row["reason"]


def test_grasp_settings_of_the_model_rows_are_parsed_and_checked():
    from benchmarks.grasp_sim import parse_grasp_settings

    assert parse_grasp_settings(["exclusion_radius_m=0.02", "max_ratio=0.8"]) == {"exclusion_radius_m": 0.02,
                                                                                 "max_ratio": 0.8}
    assert parse_grasp_settings([]) == {}
    with pytest.raises(SystemExit, match="max_ration"):
        parse_grasp_settings(["max_ration=0.8"])
    with pytest.raises(SystemExit, match="max_ratio"):
        parse_grasp_settings(["max_ratio=1.5"])


def test_model_predictor_runs_on_a_checkpoint(tmp_path):
    """The model mode against the real model API: checkpoint -> auto reference -> one trial row (no accuracy
    claim: the network is untrained)."""
    import torch

    from benchmarks.grasp_sim import ModelPredictor, run_trial
    from dense_descriptor_grasp.model.checkpoint import save_checkpoint
    from dense_descriptor_grasp.model.network import DenseDescriptorNet

    from dense_descriptor_grasp.grasping.reference import load_reference
    from dense_descriptor_grasp.model.inference import descriptor_image, descriptors_at

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "untrained.pt", DenseDescriptorNet(descriptor_dim=8, num_keypoints=2))
    predictor = ModelPredictor(str(path), "duck", "head_top", 1.0, width=128, height=96, output_dir=tmp_path)
    try:
        ref = predictor.reference
        assert ref.descriptor_dim == 8 and ref.names[ref.grasp_index] == "head_top" and len(ref) >= 3
        # the reference holds this checkpoint's descriptors (the one inference path) at its pixels, and is saved
        desc = descriptor_image(predictor.model, predictor.reference_view.rgb)
        np.testing.assert_allclose(ref.descriptors, descriptors_at(desc, ref.pixels), atol=1e-6)
        saved = load_reference(predictor.reference_path, predictor.identity)
        assert saved.names == ref.names and predictor.reference_path.with_suffix(".pose.json").is_file()
        # the ratio test off (max_ratio 1): an untrained network's ambiguous matches are accepted too
        permissive = predictor.variant(max_ratio=1.0, label="permissive")
        row = run_trial(permissive, "duck", "head_top", 1.0, seed=0, index=0, params=gs.SimParams(**FAST))
        # --max-ratio rows: the grasp node's ratio test at 0 refuses every match that is not exact: no grasp
        strict = predictor.variant(max_ratio=0.0, label="strict")
        refused = run_trial(strict, "duck", "head_top", 1.0, seed=0, index=0, params=gs.SimParams(**FAST))
    finally:
        predictor.close()
    assert refused["mode"] == "none" and not refused["success"] and "ratio" in refused["note"], refused
    from dense_descriptor_grasp.grasping.grasp_estimate import GraspSettings

    assert predictor.settings.max_ratio == GraspSettings().max_ratio  # the variant did not change the original
    # without the ratio test an untrained network still matches somewhere: a grasp is published, judged, measured
    assert row["mode"] in ("object_pose", "single_point"), row
    assert np.isfinite(row["point_error_mm"]) and np.isfinite(row["approach_error_deg"]), row
    assert (row["rotation_error_deg"] is not None) == (row["mode"] == "object_pose"), row
    assert isinstance(row["success"], bool) and row["reason"]
