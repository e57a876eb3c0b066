"""The demo (``make demo``) end to end in --quick mode in a temp folder, and its small pure helpers."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dense_descriptor_grasp import demo

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"^demo summary: median semantic point error (n/a|\d+\.\d) mm for 'head_top' \(?(\d+)/2 poses got "
                     r"a grasp", re.M)


def test_part_error_mm_is_distance_of_part_carried_by_pose():
    T = np.eye(4)
    T[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    T[:3, 3] = (0.1, 0.0, 0.5)
    part = np.array([0.01, 0.0, 0.0])           # -> (0.1, 0.01, 0.5) in the camera
    assert demo.part_error_mm((0.1, 0.01, 0.5), T, part) == pytest.approx(0.0, abs=1e-9)
    assert demo.part_error_mm((0.1, 0.01, 0.53), T, part) == pytest.approx(30.0)


def test_summary_line_median_and_counts():
    rows = [{"error_mm": 10.0, "mode": "object_pose"}, {"error_mm": 30.0, "mode": "single_point"},
            {"error_mm": 50.0, "mode": "object_pose"}, {"error_mm": None, "mode": "none"}]
    line = demo.summary_line(rows, "head_top")
    assert "median semantic point error 30.0 mm" in line and "3/4 poses got a grasp" in line
    assert "2 6-DoF, 1 single-point" in line
    assert "n/a" in demo.summary_line([{"error_mm": None}], "head_top")


def test_visible_parts_hides_occluded_part():
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    depth = np.full((48, 64), 0.5, np.float32)
    mask = np.ones((48, 64), bool)
    parts = {"front": (0.0, 0.0, 0.5), "behind": (0.01, 0.0, 0.6), "outside": (1.0, 0.0, 0.5)}
    seen = demo.visible_parts(np.eye(4), K, depth, mask, parts)
    assert set(seen) == {"front"} and seen["front"] == pytest.approx((32.0, 24.0))


def test_settings_reject_bad_options():
    parser = demo.get_args_parser()
    with pytest.raises(ValueError, match="--poses"):
        demo.settings_from_args(parser.parse_args(["--poses", "0"]))
    with pytest.raises(ValueError, match="--train-minutes"):
        demo.settings_from_args(parser.parse_args(["--train-minutes", "-1"]))
    s = demo.settings_from_args(parser.parse_args(["--quick"]))
    assert s.poses == 2 and s.max_steps <= 5 and s.views <= 10


def test_default_training_is_ntxent_on_two_view_pairs_and_keypoint_is_one_flag_away():
    """The measured default (docs/TRAINING.md, "What we measured"); --method keypoint: the paper's task."""
    parser = demo.get_args_parser()
    s = demo.settings_from_args(parser.parse_args([]))
    assert (s.method, s.pair_mode) == ("ntxent", "multiview")
    s = demo.settings_from_args(parser.parse_args(["--method", "keypoint"]))
    assert (s.method, s.pair_mode) == ("keypoint", "augment")


def test_quick_demo_end_to_end(tmp_path):
    """Tiny dataset, 2 training steps, a reference, the bringup's nodes over 2 poses: summary line and PNGs."""
    env = dict(os.environ)
    env.pop("ROS_DOMAIN_ID", None)  # the demo picks its own isolated domain
    proc = subprocess.run([sys.executable, "-m", "dense_descriptor_grasp.demo", "--quick", "--root", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    match = SUMMARY.search(proc.stdout)
    assert match, proc.stdout[-2000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("demo summary:")
    out = tmp_path / "outputs" / "demo_quick"
    assert (out / "reference_view.png").stat().st_size > 0
    grasps = int(match.group(2))
    if grasps:
        assert (out / "grasps.png").stat().st_size > 0
    assert len(list(out.glob("pose_*_heatmap.png"))) >= 1
    assert len(list(out.glob("pose_*_descriptors.png"))) >= 1
    assert (tmp_path / "models" / "demo_quick" / "last.pt").is_file()
    for step in ("1/5 dataset", "2/5 train", "3/5 reference", "4/5 pipeline"):
        assert f"[demo] {step}" in proc.stdout
    state_path = tmp_path / "models" / "demo_quick" / demo.TRAIN_STATE
    state = json.loads(state_path.read_text())
    assert state["complete"] and state["stop_reason"] == "steps"

    def rerun():
        r = subprocess.run([sys.executable, "-m", "dense_descriptor_grasp.demo", "--quick", "--root", str(tmp_path),
                            "--stop-after", "reference"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=200)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    # an interrupted training (state "not complete") resumes from last.pt; the rest is skipped
    state_path.write_text(json.dumps({**state, "complete": False}))
    out2 = rerun()
    assert "resuming the interrupted run" in out2 and out2.count("- skipped") == 2, out2
    assert json.loads(state_path.read_text())["complete"]
    # a second run skips the dataset, the training and the reference
    assert rerun().count("- skipped") == 3
