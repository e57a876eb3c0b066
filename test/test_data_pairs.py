"""Pairs: exact correspondences, Kabsch pose of the virtual cameras, true multi-view ground truth, batching."""
import math

import cv2
import numpy as np
import pytest
import torch

from dense_descriptor_grasp.data.augment import (AugmentConfig, JitterConfig, VirtualCamera, rotation_about_axis,
                                                 sample_virtual_camera, warp_view)
from dense_descriptor_grasp.data.dataset import RGBDDataset
from dense_descriptor_grasp.data.generate import generate_dataset
from dense_descriptor_grasp.data.pairs import (PAIR_KEYS, PairDataset, PairError, collate_pairs, crop_around_target,
                                               sample_negatives,
                                               make_augmentation_pair, make_cross_scene_pair, make_multiview_pair)
from dense_descriptor_grasp.data.render import RenderConfig

H, W = 48, 64
K = np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
NO_BG = AugmentConfig(background_prob=0.0)


def _synthetic(bumpy=True):
    """Linear colour ramp (bilinear interpolation reproduces it exactly), an elliptic mask, smooth depth."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([0.1 + 0.8 * u / W, 0.1 + 0.8 * v / H, 0.9 - 0.4 * u / W - 0.3 * v / H], axis=-1)
    mask = ((u - 31.5) / 18) ** 2 + ((v - 23.5) / 13) ** 2 < 1
    depth = 0.5 + (0.03 * np.cos((u - 31.5) / 9) * np.cos((v - 23.5) / 7) if bumpy else 0 * u)
    return {"rgb": rgb.astype(np.float32), "depth": depth.astype(np.float32), "mask": mask, "K": K, "view_id": "syn"}


def _bilinear(rgb_chw, uv):
    img = np.ascontiguousarray(rgb_chw.transpose(1, 2, 0))
    x, y = uv[:, 0].astype(np.float32)[None], uv[:, 1].astype(np.float32)[None]
    return cv2.remap(img, x, y, cv2.INTER_LINEAR)[0]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pairs"))
    generate_dataset(root, num_views=4, views_per_scene=2, seed=11, config=RenderConfig(width=80, height=64),
                     progress=False)
    return RGBDDataset(root)


def test_unjittered_pair_has_equal_colours_at_correspondences():
    rng = np.random.default_rng(0)
    for _ in range(5):
        pair = make_augmentation_pair(_synthetic(), rng, 64, NO_BG, JitterConfig.off())
        ok = pair["valid"]
        assert ok.sum() == 64
        ca, cb = _bilinear(pair["rgb_a"], pair["uv_a"][ok]), _bilinear(pair["rgb_b"], pair["uv_b"][ok])
        assert np.abs(ca - cb).max() < 2e-3
        assert pair["mask_a"][np.rint(pair["uv_a"][ok, 1]).astype(int), np.rint(pair["uv_a"][ok, 0]).astype(int)].all()


def test_unjittered_rendered_pair_colours_match(rendered):
    pair = PairDataset(rendered, num_correspondences=200, jitter=JitterConfig.off(), augment=NO_BG).numpy_pair(0)
    ok = pair["valid"]
    diff = np.abs(_bilinear(pair["rgb_a"], pair["uv_a"][ok]) - _bilinear(pair["rgb_b"], pair["uv_b"][ok]))
    assert np.median(diff) < 0.03


def test_rotation_about_principal_point_gives_that_rotation_about_the_optical_axis():
    theta = math.radians(35.0)
    Rz = rotation_about_axis([0, 0, 1], theta)
    pair = make_augmentation_pair(_synthetic(), np.random.default_rng(1), 128, NO_BG, JitterConfig.off(),
                                  cameras=(VirtualCamera(), VirtualCamera(R=Rz)))
    T_b_a = np.linalg.inv(pair["T_world_cam_b"].astype(np.float64))
    assert np.allclose(T_b_a[:3, :3], Rz, atol=1e-5)
    assert np.allclose(T_b_a[:3, 3], 0, atol=1e-5)
    assert pair["fit_residual"] < 1e-5
    assert np.allclose(pair["T_world_cam_a"], np.eye(4))
    # the image rotates about the principal point by the same angle (v points down: +theta is clockwise on screen)
    c = K[:2, 2]
    ok = pair["valid"]
    R2 = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    assert np.allclose((pair["uv_a"][ok] - c) @ R2.T + c, pair["uv_b"][ok], atol=1e-3)


def test_perspective_virtual_camera_is_an_exact_rotation():
    R = rotation_about_axis([0, 1, 0], 0.12) @ rotation_about_axis([1, 0, 0], -0.08)
    pair = make_augmentation_pair(_synthetic(), np.random.default_rng(2), 64, NO_BG, JitterConfig.off(),
                                  cameras=(VirtualCamera(), VirtualCamera(R=R)))
    T_b_a = np.linalg.inv(pair["T_world_cam_b"].astype(np.float64))
    assert np.allclose(T_b_a[:3, :3], R, atol=1e-5) and pair["fit_residual"] < 1e-5


def test_zoom_scales_depth_and_is_rigid_only_for_one_depth():
    s = 1.25
    cams = (VirtualCamera(), VirtualCamera(scale=s))
    flat = make_augmentation_pair(_synthetic(bumpy=False), np.random.default_rng(3), 64, NO_BG, JitterConfig.off(),
                                  cameras=cams)
    ok = flat["valid"]
    ub, vb = np.rint(flat["uv_b"][ok]).astype(int).T
    assert np.allclose(flat["depth_b"][vb, ub], 0.5 / s, atol=1e-6)
    T_b_a = np.linalg.inv(flat["T_world_cam_b"].astype(np.float64))
    assert flat["fit_residual"] < 1e-6
    assert np.allclose(T_b_a[:3, 3], [0, 0, 0.5 / s - 0.5], atol=1e-6)
    bumpy = make_augmentation_pair(_synthetic(), np.random.default_rng(3), 64, NO_BG, JitterConfig.off(), cameras=cams)
    assert bumpy["fit_residual"] > 1e-4  # a 2-D zoom of a non-flat object is not a rigid motion


def test_warp_grid_is_exact():
    sample = _synthetic()
    cam = sample_virtual_camera(np.random.default_rng(4), AugmentConfig(perspective_deg=10), (H, W))
    rgb, depth, mask, src = warp_view(sample["rgb"], sample["depth"], sample["mask"], K, cam)
    back = cam.map_points(K, src.reshape(-1, 2).astype(np.float64)).reshape(H, W, 2)
    v, u = np.mgrid[0:H, 0:W]
    assert np.allclose(back, np.stack([u, v], -1), atol=1e-3)
    assert mask.any() and (depth[mask] > 0).all()


def test_multiview_pair_ground_truth_moves_a_onto_b(rendered):
    pairs = PairDataset(rendered, mode="multiview", num_correspondences=128, jitter=JitterConfig.off())
    assert len(pairs) == 4
    pair = pairs.numpy_pair(0)
    ok = pair["valid"]
    assert ok.sum() >= 20
    uv_a = pair["uv_a"][ok].astype(np.float64)
    ua, va = np.rint(uv_a).astype(int).T
    z = pair["depth_a"][va, ua].astype(np.float64)
    Ka, Kb = pair["K_a"].astype(np.float64), pair["K_b"].astype(np.float64)
    X_a = np.stack([(uv_a[:, 0] - Ka[0, 2]) / Ka[0, 0] * z, (uv_a[:, 1] - Ka[1, 2]) / Ka[1, 1] * z, z], -1)
    T_b_a = np.linalg.inv(pair["T_world_cam_b"].astype(np.float64)) @ pair["T_world_cam_a"].astype(np.float64)
    X_b = X_a @ T_b_a[:3, :3].T + T_b_a[:3, 3]
    uv_b = X_b[:, :2] / X_b[:, 2:] * [Kb[0, 0], Kb[1, 1]] + Kb[:2, 2]
    assert np.abs(uv_b - pair["uv_b"][ok]).max() < 1.0
    # independent of the construction: the rendered colours agree (same surface point, same light)
    diff = np.abs(_bilinear(pair["rgb_a"], pair["uv_a"][ok]) - _bilinear(pair["rgb_b"], pair["uv_b"][ok]))
    assert np.median(diff) < 0.08
    assert float(pair["fit_residual"]) == 0.0


def test_multiview_occlusion_check_drops_hidden_points(rendered):
    a, b = rendered.load_numpy(0), rendered.load_numpy(1)
    b_far = dict(b, depth=b["depth"] + 0.5)  # B's depth no longer agrees: everything counts as hidden
    pair = make_multiview_pair(a, b_far, np.random.default_rng(0), 32, JitterConfig.off())
    assert not pair["valid"].any()


def test_pair_dataset_contract_determinism_and_collate(rendered):
    ds = PairDataset(rendered, num_correspondences=32, seed=5)
    p0, p0_again = ds[0], ds[0]
    assert tuple(p0) == PAIR_KEYS
    assert all(torch.equal(p0[k], p0_again[k]) for k in PAIR_KEYS)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["uv_a"], p0["uv_a"])
    batch = collate_pairs([ds[i] for i in range(3)])
    assert batch["rgb_a"].shape == (3, 3, 64, 80) and batch["rgb_a"].dtype == torch.float32
    assert batch["depth_b"].shape == (3, 64, 80) and batch["mask_a"].dtype == torch.bool
    assert batch["K_a"].shape == (3, 3, 3) and batch["T_world_cam_b"].shape == (3, 4, 4)
    assert batch["uv_a"].shape == (3, 32, 2) and batch["valid"].shape == (3, 32) and batch["valid"].dtype == torch.bool
    assert batch["fit_residual"].shape == (3,)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_pairs)
    assert next(iter(loader))["uv_b"].shape == (2, 32, 2)


# --- off-target negatives -----------------------------------------------------------------------------------------

def _with_distractor(sample):
    """The synthetic view plus a distractor block to the right of the target ellipse (objects_mask)."""
    objects = sample["mask"].copy()
    objects[14:34, 52:62] = True
    return dict(sample, objects_mask=objects)


def _far_from(target, uv, margin=2):
    near = cv2.dilate(target.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
    iu, iv = np.rint(uv).astype(int).T
    return ~near[iv, iu]


def test_negatives_avoid_the_target_and_half_lie_on_distractors():
    from dense_descriptor_grasp.data.augment import warp_mask

    sample = _with_distractor(_synthetic())
    Rz = rotation_about_axis([0, 0, 1], math.radians(35.0))
    cams = (VirtualCamera(), VirtualCamera(R=Rz, scale=0.9))
    pair = make_augmentation_pair(sample, np.random.default_rng(5), 32, NO_BG, JitterConfig.off(), cameras=cams,
                                  num_negatives=40)
    for side, cam in zip("ab", cams):
        uv, ok = pair[f"neg_uv_{side}"], pair[f"neg_valid_{side}"]
        assert uv.shape == (40, 2) and uv.dtype == np.float32 and ok.shape == (40,) and ok.all()
        assert len({tuple(p) for p in uv}) == 40                                   # no pixel twice
        assert _far_from(pair[f"mask_{side}"], uv).all()                           # >= 3 px off the target
        # the distractor as the warped view shows it (the same nearest-pixel warp)
        _, _, _, grid = warp_view(sample["rgb"], sample["depth"], sample["mask"], K, cam)
        objects_w, inside = warp_mask(sample["objects_mask"], grid)
        iu, iv = uv.astype(int).T
        assert objects_w[iv, iu].sum() == 20 and inside[iv, iu].all()              # half distractor, half background
        assert not (objects_w[iv, iu] & pair[f"mask_{side}"][iv, iu]).any()
    # correspondences stay on the target
    ok = pair["valid"]
    ua, va = np.rint(pair["uv_a"][ok]).astype(int).T
    assert pair["mask_a"][va, ua].all() and not sample["objects_mask"][va, ua][~sample["mask"][va, ua]].any()


def test_negatives_come_from_the_background_without_distractors_and_k0_draws_nothing():
    sample = _synthetic()
    pair = make_augmentation_pair(sample, np.random.default_rng(6), 16, NO_BG, JitterConfig.off(),
                                  cameras=(VirtualCamera(), VirtualCamera()), num_negatives=9)
    uv = pair["neg_uv_a"]
    assert pair["neg_valid_a"].all() and _far_from(sample["mask"], uv).all()
    plain = make_augmentation_pair(sample, np.random.default_rng(7), 16, num_negatives=0)
    same = make_augmentation_pair(dict(sample, objects_mask=sample["mask"]), np.random.default_rng(7), 16)
    assert plain["neg_uv_b"].shape == (0, 2) and plain["neg_valid_b"].shape == (0,)
    for k in PAIR_KEYS:  # xyz is NaN in both (no target pose): NaNs compare equal here
        np.testing.assert_array_equal(plain[k], same[k], err_msg=k)


def test_negative_margin_keeps_negatives_that_far_from_the_target():
    sample = _with_distractor(_synthetic())
    cams = (VirtualCamera(), VirtualCamera())
    wide = make_augmentation_pair(sample, np.random.default_rng(9), 16, NO_BG, JitterConfig.off(), cameras=cams,
                                  num_negatives=200, negative_margin_px=6)
    for side in "ab":
        uv, ok = wide[f"neg_uv_{side}"], wide[f"neg_valid_{side}"]
        assert ok.all() and _far_from(wide[f"mask_{side}"], uv, margin=6).all()
    # the default margin (2 px) lets some of 200 negatives come closer than 6 px: the option changes the draw
    near = make_augmentation_pair(sample, np.random.default_rng(9), 16, NO_BG, JitterConfig.off(), cameras=cams,
                                  num_negatives=200)
    assert _far_from(near["mask_a"], near["neg_uv_a"]).all()
    assert not _far_from(near["mask_a"], near["neg_uv_a"], margin=6).all()
    with pytest.raises(ValueError, match="margin_px"):
        sample_negatives(np.random.default_rng(0), sample["mask"], sample["objects_mask"], 4, margin_px=-1)


def test_crop_around_target_keeps_the_target_and_moves_the_principal_point():
    sample = _with_distractor(_synthetic())
    H, W = sample["mask"].shape
    for seed in range(20):
        crop = crop_around_target(sample, (24, 32), np.random.default_rng(seed))
        u0, v0 = crop["crop_origin"]
        assert crop["rgb"].shape[:2] == crop["depth"].shape == crop["mask"].shape == crop["objects_mask"].shape == (24, 32)
        assert 0 <= u0 <= W - 32 and 0 <= v0 <= H - 24 and crop["mask"].any()           # the target is in the window
        np.testing.assert_array_equal(crop["rgb"], sample["rgb"][v0:v0 + 24, u0:u0 + 32])
        np.testing.assert_array_equal(crop["objects_mask"], sample["objects_mask"][v0:v0 + 24, u0:u0 + 32])
        # one camera-frame point lands on the same content: K's principal point moved by the window's origin
        np.testing.assert_allclose(crop["K"][:2, 2], np.asarray(sample["K"])[:2, 2] - [u0, v0])
        np.testing.assert_allclose(crop["K"][[0, 1], [0, 1]], np.asarray(sample["K"])[[0, 1], [0, 1]])
    whole = crop_around_target(sample, (H + 5, W + 5), np.random.default_rng(0))
    assert whole["rgb"].shape[:2] == (H, W) and whole["crop_origin"] == (0, 0)
    with pytest.raises(ValueError, match="size"):
        crop_around_target(sample, (0, 10), np.random.default_rng(0))


def test_pair_dataset_crop_trains_on_windows_around_the_target(rendered):
    """PairDataset(crop=(h, w)): both views of every pair are (h, w) windows whose correspondences lie on the
    target; without crop the pairs are the whole views, drawn exactly as before."""
    views = rendered
    H, W = views.load_numpy(0)["mask"].shape
    for mode in ("augment", "multiview"):
        whole = PairDataset(views, mode=mode, num_correspondences=16, num_negatives=8)
        cut = PairDataset(views, mode=mode, num_correspondences=16, num_negatives=8, crop=(H // 2, W // 2))
        p = cut.numpy_pair(0)
        assert p["rgb_a"].shape == (3, H // 2, W // 2) and p["depth_b"].shape == (H // 2, W // 2)
        ok = p["valid"]
        assert ok.sum() >= 3
        ua, va = np.rint(p["uv_a"][ok]).astype(int).T
        assert p["mask_a"][va, ua].all()
        assert whole.numpy_pair(0)["rgb_a"].shape == (3, H, W)
    with pytest.raises(ValueError, match="crop"):
        PairDataset(views, mode="augment", crop=(4, 4))


def test_background_replacement_keeps_the_distractors():
    sample = _with_distractor(_synthetic())
    pair = make_augmentation_pair(sample, np.random.default_rng(8), 16, AugmentConfig(background_prob=1.0),
                                  JitterConfig.off(), cameras=(VirtualCamera(), VirtualCamera()))
    rgb_a = pair["rgb_a"].transpose(1, 2, 0)
    objects = sample["objects_mask"]
    assert np.allclose(rgb_a[objects], sample["rgb"][objects], atol=1e-6)   # target and distractor untouched
    assert np.abs(rgb_a[~objects] - sample["rgb"][~objects]).max() > 0.1    # the rest replaced
    depth = sample["depth"]
    assert np.all(pair["depth_a"][~objects] == 0) and np.all(pair["depth_a"][objects] == depth[objects])
    # for depth-input models the painted-over background keeps its depth (only its colour changes)
    kept = make_augmentation_pair(sample, np.random.default_rng(8), 16,
                                  AugmentConfig(background_prob=1.0, keep_background_depth=True),
                                  JitterConfig.off(), cameras=(VirtualCamera(), VirtualCamera()))
    np.testing.assert_array_equal(kept["depth_a"], depth)
    np.testing.assert_array_equal(kept["rgb_a"], pair["rgb_a"])


def test_jitter_off_is_off_and_both_modes_jitter(rendered):
    assert all(v == 0 for v in vars(JitterConfig.off()).values())
    for mode in ("augment", "multiview"):
        on = PairDataset(rendered, mode=mode, num_correspondences=8, augment=NO_BG).numpy_pair(0)
        off = PairDataset(rendered, mode=mode, num_correspondences=8, augment=NO_BG,
                          jitter=JitterConfig.off()).numpy_pair(0)
        if mode == "multiview":
            assert np.array_equal(off["rgb_a"], rendered.load_numpy(0)["rgb"].transpose(2, 0, 1) / np.float32(255))
        assert np.abs(on["rgb_a"] - off["rgb_a"]).mean() > 0.01


@pytest.fixture(scope="module")
def cluttered(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("clutter_pairs"))
    generate_dataset(root, objects=["duck"], num_views=4, views_per_scene=2, seed=2, progress=False,
                     config=RenderConfig.training(width=96, height=72, distractor_near_prob=1.0),
                     distractors=["train"], distractors_per_scene=(3, 4))
    return RGBDDataset(root)


@pytest.mark.parametrize("mode", ["augment", "multiview"])
def test_rendered_clutter_pairs_sample_negatives_off_the_target(cluttered, mode):
    ds = PairDataset(cluttered, mode=mode, num_correspondences=32, num_negatives=24, seed=3)
    on_distractors = 0
    for i in range(len(ds)):
        pair = ds.numpy_pair(i)
        for side in "ab":
            ok = pair[f"neg_valid_{side}"]
            assert ok.all()
            assert _far_from(pair[f"mask_{side}"], pair[f"neg_uv_{side}"]).all()
        if mode == "multiview":
            a = cluttered.load_numpy(ds.pairs[i][0])
            iu, iv = pair["neg_uv_a"].astype(int).T
            hits = int(a["objects_mask"][iv, iu].sum())
            available = int((a["objects_mask"] & _far_from(a["mask"], np.argwhere(np.ones_like(a["mask"]))[:, ::-1])
                             .reshape(a["mask"].shape)).sum())
            assert hits == min(12, available)                   # half on distractors when there are enough
            on_distractors += hits
            ok = pair["valid"]
            ua, va = np.rint(pair["uv_a"][ok]).astype(int).T
            assert a["mask"][va, ua].all()                      # correspondences on the target only
    if mode == "multiview":
        assert on_distractors >= 12                             # some view shows distractors: half the negatives
    batch = collate_pairs([ds[i] for i in range(2)])
    assert batch["neg_uv_a"].shape == (2, 24, 2) and batch["neg_uv_a"].dtype == torch.float32
    assert batch["neg_valid_b"].shape == (2, 24) and batch["neg_valid_b"].dtype == torch.bool
    empty = collate_pairs([PairDataset(cluttered, mode=mode, num_correspondences=8)[i] for i in range(2)])
    assert empty["neg_uv_a"].shape == (2, 0, 2) and empty["neg_valid_a"].shape == (2, 0)


@pytest.mark.parametrize("mode", ["augment", "multiview", "mixed"])
def test_pairs_carry_the_object_point_of_each_correspondence(cluttered, mode):
    """xyz = the correspondence's point in the target's frame, the same whichever view it is computed from."""
    from dense_descriptor_grasp.geometry.camera import backproject

    ds = PairDataset(cluttered, mode=mode, num_correspondences=32, seed=5)
    pair = ds.numpy_pair(0)
    ok = pair["valid"]
    assert ok.any() and np.isfinite(pair["xyz"][ok]).all() and np.isnan(pair["xyz"][~ok]).all()
    a_index = ds.pairs[0][0] if mode != "augment" else 0
    T_world_object = cluttered.load_numpy(a_index)["T_world_object"]
    assert np.isfinite(T_world_object).all()
    # from view B: back-project with B's depth and pose (world = camera A's source view for augmentation pairs)
    uv_b = pair["uv_b"][ok]
    z_b = pair["depth_b"][np.rint(uv_b[:, 1]).astype(int), np.rint(uv_b[:, 0]).astype(int)]
    X_b = backproject(uv_b.astype(np.float64), z_b.astype(np.float64), pair["K_b"].astype(np.float64))
    if mode == "multiview" or (mode == "mixed" and not np.allclose(pair["T_world_cam_a"], np.eye(4))):
        T = np.linalg.inv(T_world_object) @ pair["T_world_cam_b"].astype(np.float64)
        xyz_b = X_b @ T[:3, :3].T + T[:3, 3]
        assert np.median(np.linalg.norm(xyz_b - pair["xyz"][ok], axis=1)) < 0.002
    extent = np.ptp(pair["xyz"][ok], axis=0)
    assert (extent < 0.12).all() and extent.max() > 0.01   # points on the duck, not one point


def _backproject_to(pair, side, T):
    """``(N, 3)`` points of ``pair``'s valid correspondences in ``side``'s view, moved by ``T @ T_world_cam``."""
    from dense_descriptor_grasp.geometry.camera import backproject

    ok = pair["valid"]
    uv = pair[f"uv_{side}"][ok].astype(np.float64)
    z = pair[f"depth_{side}"][np.rint(uv[:, 1]).astype(int), np.rint(uv[:, 0]).astype(int)].astype(np.float64)
    X = backproject(uv, z, pair[f"K_{side}"].astype(np.float64))
    M = T @ pair[f"T_world_cam_{side}"].astype(np.float64)
    return X @ M[:3, :3].T + M[:3, 3]


def test_cross_scene_pair_corresponds_through_the_object_frame(cluttered):
    scenes = list(cluttered.scenes().values())
    a, b = cluttered.load_numpy(scenes[0][0]), cluttered.load_numpy(scenes[1][0])
    assert not np.allclose(a["T_world_object"], b["T_world_object"], atol=1e-3)  # the duck moved between scenes
    pair = make_cross_scene_pair(a, b, np.random.default_rng(0), 64, JitterConfig.off(), num_negatives=8)
    ok = pair["valid"]
    assert ok.sum() >= 10
    # the cameras are given in the object frame: both views back-project onto the same object points (xyz)
    xyz_a, xyz_b = _backproject_to(pair, "a", np.eye(4)), _backproject_to(pair, "b", np.eye(4))
    assert np.median(np.linalg.norm(xyz_a - pair["xyz"][ok], axis=1)) < 0.002
    assert np.median(np.linalg.norm(xyz_b - pair["xyz"][ok], axis=1)) < 0.002
    np.testing.assert_allclose(pair["T_world_cam_a"], np.linalg.inv(a["T_world_object"]) @ a["T_world_camera"],
                               atol=1e-5)
    # in the world frame the corresponding pixels are different places: a same-scene pairing would be wrong
    world_a = _backproject_to(pair, "a", a["T_world_object"])
    world_b = _backproject_to(pair, "b", b["T_world_object"])
    assert np.median(np.linalg.norm(world_a - world_b, axis=1)) > 0.01
    assert pair["neg_valid_a"].all() and _far_from(pair["mask_b"], pair["neg_uv_b"]).all()
    with pytest.raises(PairError, match="T_world_object"):
        make_cross_scene_pair(a, {**b, "T_world_object": None}, np.random.default_rng(0), 8)


def test_cross_scene_fraction_draws_the_second_view_from_another_scene(cluttered):
    def cross_scene(fraction, mode="multiview"):
        ds = PairDataset(cluttered, mode=mode, num_correspondences=8, seed=1, cross_scene_fraction=fraction,
                         augment_fraction=0.0)
        out = []
        for i in range(len(ds)):
            a = cluttered.load_numpy(ds.pairs[i][0])
            T_camera_in_object = np.linalg.inv(a["T_world_object"]) @ a["T_world_camera"]
            out.append(bool(np.allclose(ds.numpy_pair(i)["T_world_cam_a"], T_camera_in_object, atol=1e-5)))
        return out

    assert all(cross_scene(1.0)) and not any(cross_scene(0.0))
    assert all(cross_scene(1.0, "mixed")) and not any(cross_scene(0.0, "mixed"))
    with pytest.raises(ValueError, match="cross_scene_fraction"):
        PairDataset(cluttered, mode="multiview", cross_scene_fraction=-0.1)


def test_object_points_are_nan_without_a_target_pose():
    sample = dict(_synthetic())
    sample.pop("T_world_object", None)
    pair = make_augmentation_pair(sample, np.random.default_rng(0), 16)
    assert pair["xyz"].shape == (16, 3) and np.isnan(pair["xyz"]).all()


def test_mixed_mode_makes_augmentation_pairs_at_the_given_share(cluttered):
    def kinds(fraction):
        ds = PairDataset(cluttered, mode="mixed", num_correspondences=8, seed=1, augment_fraction=fraction)
        return [bool(np.allclose(ds.numpy_pair(i)["T_world_cam_a"], np.eye(4))) for i in range(len(ds))]

    assert not any(kinds(0.0)) and all(kinds(1.0))  # rendered cameras are never the identity
    with pytest.raises(ValueError, match="augment_fraction"):
        PairDataset(cluttered, mode="mixed", augment_fraction=1.5)


@pytest.mark.parametrize("mode", ["multiview", "augment"])
def test_sensor_noise_changes_what_the_network_sees_not_the_correspondences(rendered, mode):
    from dataclasses import replace

    clean = PairDataset(rendered, mode=mode, num_correspondences=64, jitter=JitterConfig.off(), seed=3)
    noisy = PairDataset(rendered, mode=mode, num_correspondences=64, seed=3,
                        jitter=replace(JitterConfig.off(), sensor_noise=1.0))
    a, b = clean.numpy_pair(0), noisy.numpy_pair(0)
    if mode == "multiview":   # the noise comes after the correspondences are drawn: the same ones
        np.testing.assert_array_equal(a["uv_a"], b["uv_a"])
        np.testing.assert_array_equal(a["uv_b"], b["uv_b"])
        np.testing.assert_array_equal(a["valid"], b["valid"])
    else:                     # augmentation pairs draw their correspondences after it: other ones, as many
        assert b["valid"].sum() == a["valid"].sum() > 0
    both = (a["depth_a"] > 0) & (b["depth_a"] > 0)
    assert np.median(np.abs(a["depth_a"][both] - b["depth_a"][both])) > 1e-4     # depth noise
    assert np.mean(b["depth_a"] == 0) >= np.mean(a["depth_a"] == 0)               # dropouts only add holes
    assert np.abs(a["rgb_a"] - b["rgb_a"]).max() > 0                              # colour noise
    with pytest.raises(ValueError, match="sensor_noise"):
        JitterConfig(sensor_noise=1.5)


def test_multiview_background_replaces_what_lies_behind_the_objects_only(cluttered):
    """multiview_background: each view of a multi-view pair gets a new background (chance background_prob); the
    objects' pixels, the correspondences and the negatives stay as without it."""
    kw = dict(mode="multiview", num_correspondences=16, seed=4, jitter=JitterConfig.off(), num_negatives=8)
    plain = PairDataset(cluttered, **kw)
    swapped = PairDataset(cluttered, augment=AugmentConfig(background_prob=1.0), multiview_background=True, **kw)
    never = PairDataset(cluttered, augment=AugmentConfig(background_prob=0.0), multiview_background=True, **kw)
    for i in range(len(plain)):
        p, q, r = plain.numpy_pair(i), swapped.numpy_pair(i), never.numpy_pair(i)
        for side in "ab":
            a = cluttered.load_numpy(plain.pairs[i][0 if side == "a" else 1])
            objects = np.asarray(a.get("objects_mask", a["mask"]), bool) | np.asarray(a["mask"], bool)
            np.testing.assert_allclose(q[f"rgb_{side}"][:, objects], p[f"rgb_{side}"][:, objects], atol=1e-6)
            assert np.abs(q[f"rgb_{side}"][:, ~objects] - p[f"rgb_{side}"][:, ~objects]).mean() > 0.01
            np.testing.assert_allclose(r[f"rgb_{side}"], p[f"rgb_{side}"], atol=1e-6)
        for key in ("uv_a", "uv_b", "valid", "xyz"):
            np.testing.assert_array_equal(q[key], p[key])
    assert not plain.multiview_background
