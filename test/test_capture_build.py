"""capture.build: frames -> a dataset RGBDDataset loads and PairDataset(mode="multiview") pairs; resume; the CLI
over a capture folder; correspondences from the fused model against the truth. Scene: capture.fusion's textured
box on a textured table (ray-cast, no pybullet), with depth noise."""
import os

import numpy as np
import pytest

from dense_descriptor_grasp.capture import build, fusion, poses
from dense_descriptor_grasp.capture.frames import Frame
from dense_descriptor_grasp.data.dataset_format import read_json
from dense_descriptor_grasp.geometry.rendering import intrinsics_from_fov

W, H, N = 96, 72, 10
# 96x72 is coarse for the automatic voxel (2 pixel footprints = 10 mm here)
CONFIG = build.BuildConfig(fusion=fusion.FusionConfig(voxel=0.004))


@pytest.fixture(scope="module")
def capture():
    """(frames without poses, with true masks and noisy depth; true poses; true depths)."""
    mesh, obj = fusion.box_on_table_mesh(box_size=(0.08, 0.06, 0.10))
    K = intrinsics_from_fov(50.0, W, H)
    truth = fusion.orbit_poses([0.0, 0.0, 0.05], 0.4, 40.0, N)
    clean = fusion.render_mesh_frames(mesh, obj, K, truth, W, H)
    rng = np.random.default_rng(0)
    frames = []
    for f in clean:
        d = np.where(f.depth > 0, f.depth + 0.01 * f.depth ** 2 * rng.normal(size=f.depth.shape), 0.0)
        d[rng.random(d.shape) < 0.03] = 0.0  # dropouts
        frames.append(Frame(rgb=f.rgb, depth=d.astype(np.float32), K=K, name=f.name, mask=f.mask, stamp=0.1))
    return frames, truth, [f.depth for f in clean], [f.mask for f in clean]


def test_build_writes_a_dataset_that_loads_and_pairs(capture, tmp_path):
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.data.pairs import PairDataset

    frames, truth, true_depths, true_masks = capture
    out = str(tmp_path / "ds")
    res = build.build_dataset(frames, out, config=CONFIG, progress=False)
    assert res.pose_source == "estimated" and len(res.written) == N
    np.testing.assert_allclose(res.poses[0], np.eye(4), atol=1e-9)  # world = first camera
    t_err, r_err = poses.pose_errors(res.poses, truth)
    assert np.median(t_err) < 0.005 and np.median(r_err) < 1.0, (t_err, r_err)

    manifest = read_json(os.path.join(out, "manifest.json"))
    assert manifest["complete"] and manifest["count"] == N and manifest["objects"] == ["object"]
    assert manifest["scenes"] == [{"scene_id": "capture", "views": [f.name for f in frames]}]
    assert len(manifest["multiview_pairs"]) == N * (N - 1) // 2
    assert manifest["capture"]["pose_source"] == "estimated" and manifest["capture"]["mask_source"] == "frames"
    cam = read_json(os.path.join(out, "camera", "000003.json"))
    assert cam["objects"][0]["role"] == "target" and cam["objects"][0]["T_world_object"] == np.eye(4).tolist()
    np.testing.assert_allclose(cam["T_world_camera"], res.poses[3], atol=1e-12)
    for sub in ("capture/poses.json", "capture/fused_mesh.ply", "capture/object_mesh.ply", "depth_raw/000003.png"):
        assert os.path.isfile(os.path.join(out, sub)), sub

    views = RGBDDataset(out, split="train")  # validates every view; the one scene stays in "train"
    assert len(views) == N
    sample = views.load_numpy(3)
    depth, mask = res.rendered[3]
    np.testing.assert_allclose(sample["depth"], depth, atol=1e-4)  # the fused depth (0.1 mm units)
    assert (sample["mask"] == mask).all() and mask.sum() > 100
    on_box = sample["mask"]
    assert (sample["depth"][on_box] > 0).all() and (frames[3].depth[on_box] == 0).any()  # the dropouts are filled
    pairs = PairDataset(views, mode="multiview", num_correspondences=64, seed=0)
    assert len(pairs) == N * (N - 1)
    pair = pairs.numpy_pair(pairs.pairs.index((0, 1)))
    assert pair["valid"].sum() == 64  # neighbouring views share plenty of the box

    # the correspondences the dataset makes, against the true ones
    Ks = [f.K for f in frames]
    err = build.correspondence_errors(Ks, res.poses, [d for d, _ in res.rendered], [m for _, m in res.rendered],
                                      truth, true_depths, true_masks)
    assert err["median_px"] < 1.0 and err["pairs"] > N, err
    exact = build.correspondence_errors(Ks, truth, true_depths, true_masks, truth, true_depths, true_masks)
    assert exact["median_px"] == 0.0 and exact["hidden_fraction"] == 0.0


def test_rerun_resumes_and_other_settings_are_refused(capture, tmp_path):
    frames, truth, _, _ = capture
    out = str(tmp_path / "ds")
    first = build.build_dataset(frames[:6], out, config=CONFIG, progress=False)
    os.remove(os.path.join(out, "camera", "000004.json"))  # as if killed while writing view 000004
    open(os.path.join(out, "rgb", ".tmp-000004.png.123.x.tmp"), "w").close()
    again = build.build_dataset(frames[:6], out, config=CONFIG, progress=False)
    assert again.written == ["000004"] and again.pose_source == "resumed"
    assert not any(n.startswith(".tmp-") for n in os.listdir(os.path.join(out, "rgb")))
    for a, b in zip(first.poses, again.poses):
        np.testing.assert_allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError, match="other settings or frames.*fusion"):
        build.build_dataset(frames[:6], out, config=build.BuildConfig(fusion=fusion.FusionConfig(voxel=0.005)),
                            progress=False)
    with pytest.raises(ValueError, match="frames"):
        build.build_dataset(frames[:5], out, config=CONFIG, progress=False)


def test_given_poses_and_named_errors(capture, tmp_path):
    frames, truth, _, _ = capture
    posed = [Frame(rgb=f.rgb, depth=f.depth, K=f.K, name=f.name, mask=f.mask, T_world_camera=T)
             for f, T in zip(frames[:4], truth)]
    res = build.build_dataset(posed, str(tmp_path / "tf"), config=CONFIG, progress=False)
    assert res.pose_source == "frames"
    np.testing.assert_allclose(res.poses[2], truth[2])
    # a view without depth (a glitch): its segmentation fails, it does not vote, and gets the fused depth and mask
    pytest.importorskip("dense_descriptor_grasp.capture.masks")
    blind = [Frame(rgb=f.rgb, depth=np.zeros_like(f.depth) if i == 2 else f.depth, K=f.K, name=f.name,
                   T_world_camera=f.T_world_camera) for i, f in enumerate(posed)]
    res = build.build_dataset(blind, str(tmp_path / "blind"), config=CONFIG, progress=False)
    assert res.input_masks[2] is None and res.input_masks[0] is not None
    manifest = read_json(str(tmp_path / "blind" / "manifest.json"))
    assert manifest["capture"]["mask_source"] == "segmented" and "000002" in manifest["capture"]["mask_failures"][0]
    depth, mask = res.rendered[2]
    assert mask.sum() > 100 and (depth[mask] > 0).all()
    with pytest.raises(ValueError, match="unique"):
        build.build_dataset([frames[0], frames[0]], str(tmp_path / "dup"), progress=False)
    with pytest.raises(ValueError, match="no pose"):
        build.build_dataset(frames[:2], str(tmp_path / "never"), config=build.BuildConfig(estimate_poses="never"),
                            progress=False)


def test_cli_builds_from_a_capture_folder_with_segmented_masks(capture, tmp_path, capsys):
    pytest.importorskip("dense_descriptor_grasp.capture.masks")
    from dense_descriptor_grasp.capture.importer import write_capture_folder
    from dense_descriptor_grasp.capture.masks import mask_iou
    from dense_descriptor_grasp.data.dataset import RGBDDataset

    frames, truth, _, true_masks = capture
    folder = str(tmp_path / "cap")
    # as a camera tool exports it: no masks; poses (e.g. from TF) that the default run ignores
    write_capture_folder([Frame(rgb=f.rgb, depth=f.depth, K=f.K, name=f.name, T_world_camera=T)
                          for f, T in zip(frames[:6], truth)], folder)
    out = str(tmp_path / "ds")
    assert build.main(["--frames", folder, "--out", out, "--no-progress", "--object-name", "box", "--voxel", "0.004"]) == 0
    assert "6 views" in capsys.readouterr().out
    manifest = read_json(os.path.join(out, "manifest.json"))
    assert manifest["capture"]["pose_source"] == "estimated" and manifest["capture"]["mask_source"] == "segmented"
    views = RGBDDataset(out)
    ious = [mask_iou(views.load_numpy(i)["mask"], true_masks[i]) for i in range(len(views))]
    assert np.median(ious) > 0.8, ious
    out2 = str(tmp_path / "ds_tf")
    assert build.main(["--frames", folder, "--out", out2, "--no-progress", "--use-poses-from-folder", "--voxel", "0.004"]) == 0
    assert read_json(os.path.join(out2, "manifest.json"))["capture"]["pose_source"] == "frames"
    assert build.main(["--frames", str(tmp_path / "missing"), "--out", out2, "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_simulated_capture_end_to_end(tmp_path):
    """simulate_capture's folder -> build_capture_dataset -> compare_with_truth (small: 12 views at 128x96)."""
    simulate = pytest.importorskip("dense_descriptor_grasp.capture.simulate")
    cap = simulate.simulate_capture("duck", simulate.OrbitConfig(views=12, width=128, height=96), seed=0)
    folder = str(tmp_path / "cap")
    simulate.write_simulated_capture(cap, folder)
    out = str(tmp_path / "ds")
    assert build.main(["--frames", folder, "--out", out, "--no-progress"]) == 0
    report = build.compare_with_truth(out, folder)
    assert report["views"] == 12
    assert report["pose_translation_mm"]["median"] < 5.0 and report["pose_rotation_deg"]["median"] < 1.0, report
    assert report["mask_iou"]["median"] > 0.85, report
    assert report["correspondences"]["median_px"] < 2.0 and report["correspondences"]["pairs"] > 12, report
