"""The demo (``make demo``) end to end in --quick mode in a temp folder, and its small pure helpers."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dense_descriptor_grasp import demo
from dense_descriptor_grasp.demo.dataset import dataset_plans
from dense_descriptor_grasp.model.checkpoint import load_checkpoint
from dense_descriptor_grasp.training.config import load_config
from dense_descriptor_grasp.training.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
NUM = r"(\d+\.\d)"
SUMMARY = re.compile(
    rf"^demo summary: held-out clutter: median {NUM} px / {NUM} mm for the duck's named parts \((\d+) matches, "
    rf"(\d\.\d\d) within 10 mm; untrained {NUM} px / {NUM} mm, mask centre {NUM} px / {NUM} mm\); "
    rf"sim camera: median (\d+\.\d|n/a) mm for 'head_top' \((\d)/2 poses got a grasp"
    rf"(: \d 6-DoF, \d single-point; mean \d+\.\d mm, \d within 20 mm)?; (\d)/2 poses processed\)$", re.M)

SEMANTIC = {"model": "clutter", "methods": {
    "clutter": {"matches": 12, "median_px": 2.94, "median_mm": 7.36, "within_10mm": 0.724},
    "untrained": {"matches": 12, "median_px": 32.6, "median_mm": 72.3, "within_10mm": 0.01},
    "mask_centroid": {"matches": 12, "median_px": 19.2, "median_mm": None, "within_10mm": 0.04}}}


def test_part_error_mm_is_distance_of_part_carried_by_pose():
    T = np.eye(4)
    T[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    T[:3, 3] = (0.1, 0.0, 0.5)
    part = np.array([0.01, 0.0, 0.0])           # -> (0.1, 0.01, 0.5) in the camera
    assert demo.part_error_mm((0.1, 0.01, 0.5), T, part) == pytest.approx(0.0, abs=1e-9)
    assert demo.part_error_mm((0.1, 0.01, 0.53), T, part) == pytest.approx(30.0)


def test_summary_line_semantic_point_result_then_sim_camera():
    rows = [{"error_mm": 10.0, "mode": "object_pose", "frames": 2}, {"error_mm": 30.0, "mode": "single_point",
                                                                     "frames": 1},
            {"error_mm": 50.0, "mode": "object_pose", "frames": 1}, {"error_mm": None, "mode": "none", "frames": 3}]
    line = demo.summary_line(rows, "head_top", SEMANTIC)
    assert line == ("demo summary: held-out clutter: median 2.9 px / 7.4 mm for the duck's named parts (12 matches, "
                    "0.72 within 10 mm; untrained 32.6 px / 72.3 mm, mask centre 19.2 px / n/a mm); sim camera: "
                    "median 30.0 mm for 'head_top' (3/4 poses got a grasp: 2 6-DoF, 1 single-point; mean 30.0 mm, "
                    "1 within 20 mm; 4/4 poses processed)")
    none = demo.summary_line([{"error_mm": None, "frames": 1}, {"error_mm": None, "frames": 0}], "head_top")
    assert none == "demo summary: sim camera: median n/a mm for 'head_top' (0/2 poses got a grasp; 1/2 poses processed)"


def test_settings_reject_bad_options():
    parser = demo.get_args_parser()
    with pytest.raises(ValueError, match="--poses"):
        demo.settings_from_args(parser.parse_args(["--poses", "0"]))
    with pytest.raises(ValueError, match="--train-minutes"):
        demo.settings_from_args(parser.parse_args(["--train-minutes", "-1"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--preset", "nope"])
    s = demo.settings_from_args(parser.parse_args(["--quick"]))
    assert s.poses == 2 and s.max_steps <= 5 and s.views <= 12 and s.eval_views <= 8
    assert s.distractors_per_scene == (0, 1) and (s.width, s.height) == (96, 72)
    assert "quick" in s.dataset and "quick" in s.eval_dataset and s.dataset != s.eval_dataset


def test_default_datasets_are_clutter_with_disjoint_distractor_sets():
    s = demo.settings_from_args(demo.get_args_parser().parse_args([]))
    (_, train_dir, train), (_, eval_dir, held_out) = dataset_plans(s)
    assert train_dir == "data/demo_duck_clutter" and eval_dir == "data/demo_duck_eval"   # not the old data/demo_duck
    assert train["distractors"] == ["train"] and held_out["distractors"] == ["eval"]
    assert train["distractors_per_scene"] == (2, 4) and train["views_per_scene"] == 3 and train["num_views"] == 600
    assert held_out["views_per_scene"] == 2 and held_out["seed"] != train["seed"]
    assert train["config"].camera_spans is not None and (train["config"].width, train["config"].height) == (160, 120)


def test_preset_default_clutter_rgbd_and_method_is_a_deprecated_alias():
    parser = demo.get_args_parser()
    assert demo.settings_from_args(parser.parse_args([])).preset == "clutter_rgbd"
    for name in PRESETS:
        assert demo.settings_from_args(parser.parse_args(["--preset", name])).preset == name
    assert demo.settings_from_args(parser.parse_args(["--method", "keypoint"])).preset == "paper"
    assert demo.settings_from_args(parser.parse_args(["--method", "ntxent"])).preset == "ntxent"
    assert demo.settings_from_args(parser.parse_args(["--method", "keypoint", "--preset", "paper"])).preset == "paper"
    with pytest.raises(ValueError, match="contradicts --preset clutter"):
        demo.settings_from_args(parser.parse_args(["--method", "keypoint", "--preset", "clutter"]))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_training_overrides_are_the_presets_plus_the_demos(preset, tmp_path):
    s = demo.DemoSettings(root=tmp_path, preset=preset)
    overrides = demo.training_overrides(s, 12.5)
    assert overrides[:len(PRESETS[preset])] == PRESETS[preset]
    assert not any(o.startswith("model.output_stride") for o in overrides[len(PRESETS[preset]):])
    cfg = load_config(None, overrides)
    want = load_config(None, PRESETS[preset])
    assert (cfg.model.decoder, cfg.model.output_stride, cfg.model.method, cfg.data.mode) == \
        (want.model.decoder, want.model.output_stride, want.model.method, want.data.mode)
    preset_sets_m = any(o.startswith("data.num_correspondences=") for o in PRESETS[preset])
    assert cfg.data.num_correspondences == (want.data.num_correspondences if preset_sets_m else 256)
    assert cfg.train.max_minutes == pytest.approx(12.5) and cfg.train.num_threads == "auto"
    assert load_config(None, demo.training_overrides(demo.DemoSettings(root=tmp_path, preset=preset, threads=1),
                                                     12.5)).train.num_threads == 1
    assert Path(cfg.data.dataset) == tmp_path / "data/demo_duck_clutter" and cfg.train.seed == s.seed


def test_config_mismatch_tells_presets_and_old_demo_models_apart(tmp_path):
    def info(preset, **model):
        cfg = load_config(None, demo.training_overrides(demo.DemoSettings(root=tmp_path, preset=preset), 15.0))
        d = cfg.to_dict()
        return {"model_config": {**d["model"], **model}, "config": d}

    clutter = demo.DemoSettings(root=tmp_path)
    cfg = load_config(None, demo.training_overrides(clutter, 15.0))
    keys = [o.split("=")[0] for o in PRESETS["clutter_rgbd"]] + ["data.num_correspondences"]
    assert demo.config_mismatch(info("clutter_rgbd"), cfg, keys) == []
    assert "model.input: 'rgb' (demo: 'rgbd')" in demo.config_mismatch(info("clutter"), cfg, keys)
    rgb = load_config(None, demo.training_overrides(demo.DemoSettings(root=tmp_path, preset="clutter"), 15.0))
    same_net = demo.config_mismatch(info("ntxent"), rgb, [o.split("=")[0] for o in PRESETS["clutter"]])
    # one architecture (clutter and ntxent), another training recipe (and BatchNorm statistics at inference)
    assert any(d.startswith("data.num_negatives") for d in same_net)
    assert [d for d in same_net if d.startswith("model.")] == ["model.norm_statistics: 'running' (demo: 'image')"]
    old = {"model_config": {"method": "ntxent", "output_stride": 16, "descriptor_dim": 16}, "config": {}}
    diffs = demo.config_mismatch(old, cfg, keys)                        # the pre-clutter demo's model: no decoder key
    assert "model.decoder: 'none' (demo: 'fpn')" in diffs and "model.output_stride: 16 (demo: 4)" in diffs


def test_dataset_folder_made_with_other_arguments_is_set_aside(tmp_path):
    s = demo.settings_from_args(demo.get_args_parser().parse_args(["--quick", "--root", str(tmp_path)]))
    s.views, s.eval_views = 3, 4
    stale = tmp_path / s.eval_dataset
    stale.mkdir(parents=True)
    (stale / "manifest.json").write_text(json.dumps({"complete": True, "generator": {"num_views": 300}}))
    (stale / "marker").write_text("old")
    demo.step_dataset(s)
    assert (tmp_path / (s.eval_dataset + ".old") / "marker").read_text() == "old"
    for rel, n in ((s.dataset, 3), (s.eval_dataset, 4)):
        manifest = json.loads((tmp_path / rel / "manifest.json").read_text())
        assert manifest["complete"] and manifest["count"] == n
    again = demo.step_dataset(s)
    assert all(r.get("skipped") for r in again.values())


def _finite(x) -> bool:
    return x is not None and math.isfinite(float(x))


def test_quick_demo_end_to_end(tmp_path, capsys):
    """Both tiny datasets, 2 training steps, the held-out evaluation, a reference, the bringup's nodes over 2
    poses: every step runs, the summary line holds the semantic-point numbers, results.json holds them too, and
    the pipeline processed every pose and published a grasp for each (2 training steps say nothing about accuracy:
    not asserted)."""
    env = dict(os.environ)
    env.pop("ROS_DOMAIN_ID", None)  # the demo picks its own isolated domain
    proc = subprocess.run([sys.executable, "-m", "dense_descriptor_grasp.demo", "--quick", "--root", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for step in ("1/6 dataset", "2/6 train", "3/6 evaluate", "4/6 reference", "5/6 pipeline", "6/6 pictures"):
        assert f"[demo] {step}" in proc.stdout, step
    assert "| clutter_rgbd |" in proc.stdout and "| untrained |" in proc.stdout and "| mask_centroid |" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    match = SUMMARY.match(last)
    assert match, last
    (px, mm, matches, within, u_px, u_mm, c_px, c_mm, sim_median, grasps, grasp_details, processed) = match.groups()
    assert int(matches) > 0 and int(processed) == 2
    # every pose got a grasp (an untrained network still matches somewhere: no grasp means a broken pipeline)
    assert int(grasps) == 2 and sim_median != "n/a" and grasp_details is not None, last

    out = tmp_path / "outputs" / "demo_quick"
    results = json.loads((out / "results.json").read_text())
    assert results["summary"] == last and results["preset"] == "clutter_rgbd"
    semantic = results["semantic_evaluation"]
    assert semantic["model"] == "clutter_rgbd" and semantic["views"] == 8
    for name, (p, m) in {"clutter_rgbd": (px, mm), "untrained": (u_px, u_mm), "mask_centroid": (c_px, c_mm)}.items():
        row = semantic["methods"][name]
        assert row["matches"] == int(matches)
        assert _finite(row["median_px"]) and _finite(row["median_mm"]) and _finite(row["within_10mm"]), (name, row)
        assert f"{row['median_px']:.1f}" == p and f"{row['median_mm']:.1f}" == m
    assert f"{semantic['methods']['clutter_rgbd']['within_10mm']:.2f}" == within
    report = out / "clutter_eval" / "semantic_report.json"
    assert json.loads(report.read_text())["methods"]["clutter_rgbd"]["matches"] == int(matches)
    assert (out / "clutter_eval" / "semantic_matches.png").stat().st_size > 0

    rows = results["rows"]
    assert [r["pose"] for r in rows] == [1, 2]
    assert all(r["frames"] >= 1 and "note" not in r for r in rows), rows   # every pose went through the pipeline
    assert all(r["error_mm"] is not None and r["mode"] in ("object_pose", "single_point") for r in rows), rows
    for r in rows:
        for name in ("descriptors", "heatmap", "grasp"):
            assert (out / f"pose_{r['pose']:02d}_{name}.png").stat().st_size > 0
    assert (out / "grasps.png").stat().st_size > 0 and (out / "reference_view.png").stat().st_size > 0
    assert (tmp_path / "models" / "demo_quick" / "last.pt").is_file()
    state_path = tmp_path / "models" / "demo_quick" / demo.TRAIN_STATE
    state = json.loads(state_path.read_text())
    assert state["stop_reason"] == "steps" and state["step"] == 2 and state["preset"] == "clutter_rgbd"

    def rerun(stop_after):
        r = subprocess.run([sys.executable, "-m", "dense_descriptor_grasp.demo", "--quick", "--root", str(tmp_path),
                            "--stop-after", stop_after], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=200)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    # a second run skips both datasets, the training, the evaluation (its table printed again) and the reference
    again = rerun("reference")
    assert again.count("- skipped") == 5 and "| clutter_rgbd |" in again, again
    assert "2/6 train: " in again and "exists (step 2, " in again

    # a larger budget continues the run from last.pt (train_model counts the minutes of both runs)
    s = demo.settings_from_args(demo.get_args_parser().parse_args(["--quick", "--root", str(tmp_path)]))
    s.max_steps = 3
    threads = torch.get_num_threads()
    try:
        summary = demo.step_train(s)
    finally:
        torch.set_num_threads(threads)
    assert "2/6 train: resuming the run from" in capsys.readouterr().out
    assert (summary["start_step"], summary["step"]) == (2, 3)
    ckpt = load_checkpoint(s.checkpoint)
    assert ckpt["step"] == 3 and ckpt["metadata"]["train_seconds"] == pytest.approx(summary["train_seconds"], abs=0.1)
    assert summary["train_seconds"] > summary["seconds"]          # the first run's minutes are counted too
    assert json.loads(state_path.read_text())["step"] == 3
