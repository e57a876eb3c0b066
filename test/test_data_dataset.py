"""RGBDDataset: the sample contract, user captures, held-out split, and a named error for every broken folder."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from dense_descriptor_grasp.data.dataset import DatasetError, RGBDDataset, split_scenes
from dense_descriptor_grasp.data.generate import generate_dataset
from dense_descriptor_grasp.data.render import RenderConfig


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ds"))
    generate_dataset(root, num_views=6, views_per_scene=2, seed=3, config=RenderConfig(width=80, height=64),
                     progress=False)
    return root


def _user_capture(root, n=2, h=24, w=32):
    """A minimal user capture: rgb .jpg, depth in mm, 0/255 mask, camera JSON with only K and depth_scale."""
    for sub in ("rgb", "depth", "mask", "camera"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i in range(n):
        vid = f"cap{i}"
        cv2.imwrite(os.path.join(root, "rgb", vid + ".jpg"), np.full((h, w, 3), 100 + i, np.uint8))
        depth = np.full((h, w), 500, np.uint16)
        depth[:2] = 0
        cv2.imwrite(os.path.join(root, "depth", vid + ".png"), depth)
        mask = np.zeros((h, w), np.uint8)
        mask[8:16, 10:20] = 255
        cv2.imwrite(os.path.join(root, "mask", vid + ".png"), mask)
        with open(os.path.join(root, "camera", vid + ".json"), "w") as f:
            json.dump({"K": [[30, 0, 15.5], [0, 30, 11.5], [0, 0, 1]], "depth_scale": 0.001}, f)
    return root


def test_sample_contract(rendered):
    ds = RGBDDataset(rendered)
    assert len(ds) == 6
    s = ds[0]
    assert set(s) == {"rgb", "depth", "mask", "objects_mask", "K", "T_world_camera", "view_id"}
    assert s["objects_mask"].dtype == torch.bool and torch.equal(s["objects_mask"], s["mask"])  # no distractors
    assert s["rgb"].shape == (3, 64, 80) and s["rgb"].dtype == torch.float32
    assert 0.0 <= float(s["rgb"].min()) and float(s["rgb"].max()) <= 1.0
    assert s["depth"].shape == (64, 80) and s["depth"].dtype == torch.float32
    assert s["mask"].dtype == torch.bool and s["mask"].any()
    assert (s["depth"][s["mask"]] > 0).all()
    assert s["K"].shape == (3, 3) and s["T_world_camera"].shape == (4, 4)
    assert s["view_id"] == "000000"
    assert ds.scenes() == {"scene_000000": [0, 1], "scene_000001": [2, 3], "scene_000002": [4, 5]}


def test_user_capture_minimum_layout(tmp_path):
    ds = RGBDDataset(_user_capture(str(tmp_path)))
    s = ds[1]
    assert torch.equal(s["T_world_camera"], torch.eye(4))
    assert float(s["depth"][5, 5]) == pytest.approx(0.5) and float(s["depth"][0, 0]) == 0.0
    assert int(s["mask"].sum()) == 80


def test_resize_scales_intrinsics(tmp_path):
    ds = RGBDDataset(_user_capture(str(tmp_path)), image_size=(12, 16))
    s = ds[0]
    assert s["rgb"].shape == (3, 12, 16)
    assert s["mask"].shape == s["objects_mask"].shape == (12, 16) and int(s["mask"].sum()) == 20
    assert torch.allclose(s["K"], torch.tensor([[15.0, 0, 7.5], [0, 15.0, 5.5], [0, 0, 1]]))


def test_split_keeps_scenes_together(rendered):
    train = RGBDDataset(rendered, split="train", val_fraction=0.3)
    val = RGBDDataset(rendered, split="val", val_fraction=0.3)
    assert len(train) + len(val) == 6 and len(val) >= 1 and len(train) >= 1
    assert not set(train.view_ids) & set(val.view_ids)
    assert not set(train.scenes()) & set(val.scenes())
    assert split_scenes([f"s{i}" for i in range(50)], 0.2) == split_scenes([f"s{i}" for i in range(50)][::-1], 0.2)


def _break(root, how):
    vid = "cap0"
    if how == "missing":
        os.remove(os.path.join(root, "depth", vid + ".png"))
        return os.path.join("depth", vid + ".png"), "missing file"
    if how == "size":
        cv2.imwrite(os.path.join(root, "mask", vid + ".png"), np.full((10, 10), 255, np.uint8))
        return os.path.join("mask", vid + ".png"), "size mismatch"
    if how == "empty_mask":
        cv2.imwrite(os.path.join(root, "mask", vid + ".png"), np.zeros((24, 32), np.uint8))
        return os.path.join("mask", vid + ".png"), "empty mask"
    if how == "invalid_depth":
        cv2.imwrite(os.path.join(root, "depth", vid + ".png"), np.zeros((24, 32), np.uint16))
        return os.path.join("depth", vid + ".png"), "depth all invalid"
    if how == "focal":
        path = os.path.join(root, "camera", vid + ".json")
        json.dump({"K": [[0, 0, 15.5], [0, 30, 11.5], [0, 0, 1]], "depth_scale": 0.001}, open(path, "w"))
        return os.path.join("camera", vid + ".json"), "non-positive focal length"
    if how == "missing_rgb":
        os.remove(os.path.join(root, "rgb", vid + ".jpg"))
        return os.path.join("rgb", vid), "missing file"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing", "missing_rgb", "size", "empty_mask", "invalid_depth", "focal"])
def test_broken_folder_raises_naming_the_file(tmp_path, how):
    root = _user_capture(str(tmp_path))
    RGBDDataset(root)  # intact folder opens
    fname, what = _break(root, how)
    with pytest.raises(DatasetError) as err:
        RGBDDataset(root)
    assert fname in str(err.value) and what in str(err.value)


def test_missing_camera_folder_and_empty_dataset(tmp_path):
    with pytest.raises(DatasetError, match="camera"):
        RGBDDataset(str(tmp_path))
    os.makedirs(tmp_path / "camera")
    with pytest.raises(DatasetError, match="empty"):
        RGBDDataset(str(tmp_path))


# --- target and distractors -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluttered(tmp_path_factory):
    """4 views, every scene with the duck and 3 distractors (one of them touching it in most scenes)."""
    root = str(tmp_path_factory.mktemp("clutter"))
    generate_dataset(root, objects=["duck"], num_views=4, views_per_scene=2, seed=1, progress=False,
                     config=RenderConfig.training(width=96, height=72, distractor_near_prob=1.0),
                     distractors=["lego", "jenga", "cube"], distractors_per_scene=(3, 3))
    return root


def _raw_mask(root, vid):
    return cv2.imread(os.path.join(root, "mask", vid + ".png"), cv2.IMREAD_UNCHANGED)


def test_cluttered_views_write_roles_and_the_loader_keeps_the_target_apart(cluttered):
    ds = RGBDDataset(cluttered)
    seen_distractor_pixels = 0
    for i, vid in enumerate(ds.view_ids):
        cam = json.load(open(os.path.join(cluttered, "camera", vid + ".json")))
        assert cam["target"] == "duck"
        roles = {o["mask_value"]: o["role"] for o in cam["objects"]}
        assert roles[1] == "target" and sorted(roles.values()) == ["distractor"] * 3 + ["target"]
        assert {o["name"] for o in cam["objects"] if o["role"] == "distractor"} <= {"lego", "jenga", "cube"}
        raw = _raw_mask(cluttered, vid)
        s = ds.load_numpy(i)
        np.testing.assert_array_equal(s["mask"], raw == 1)            # target pixels only
        np.testing.assert_array_equal(s["objects_mask"], raw > 0)     # every object
        seen_distractor_pixels += int((s["objects_mask"] & ~s["mask"]).sum())
        t = ds[i]
        assert t["objects_mask"].dtype == torch.bool and torch.equal(t["mask"], torch.from_numpy(raw == 1))
    assert seen_distractor_pixels > 100   # the distractors are in view, and not in the mask


def test_old_datasets_without_roles_count_every_object_as_target(cluttered, tmp_path):
    import shutil

    root = str(tmp_path / "old")
    shutil.copytree(cluttered, root)
    for f in os.listdir(os.path.join(root, "camera")):
        path = os.path.join(root, "camera", f)
        cam = json.load(open(path))
        cam.pop("target")
        for o in cam["objects"]:
            o.pop("role")
        json.dump(cam, open(path, "w"))
    ds = RGBDDataset(root)
    for i, vid in enumerate(ds.view_ids):
        s = ds.load_numpy(i)
        np.testing.assert_array_equal(s["mask"], _raw_mask(root, vid) > 0)
        np.testing.assert_array_equal(s["objects_mask"], s["mask"])


def test_resize_handles_the_objects_mask(cluttered):
    full, small = RGBDDataset(cluttered), RGBDDataset(cluttered, image_size=(36, 48))
    for i in range(len(full)):
        a, b = full.load_numpy(i), small.load_numpy(i)
        assert b["mask"].shape == b["objects_mask"].shape == (36, 48)
        assert not (b["mask"] & ~b["objects_mask"]).any()
        # nearest resampling (cv2 INTER_NEAREST halving takes every second pixel), both masks alike
        np.testing.assert_array_equal(b["objects_mask"], a["objects_mask"][::2, ::2])
        np.testing.assert_array_equal(b["mask"], a["mask"][::2, ::2])


def test_bad_roles_are_refused_naming_the_file(cluttered, tmp_path):
    import shutil

    root = str(tmp_path / "bad")
    shutil.copytree(cluttered, root)
    path = os.path.join(root, "camera", "000001.json")
    cam = json.load(open(path))
    cam["objects"][0]["role"] = "goal"
    json.dump(cam, open(path, "w"))
    with pytest.raises(DatasetError, match="000001.json.*role"):
        RGBDDataset(root)
    for o in cam["objects"]:
        o["role"] = "distractor"
    json.dump(cam, open(path, "w"))
    with pytest.raises(DatasetError, match="no 'target'"):
        RGBDDataset(root)
