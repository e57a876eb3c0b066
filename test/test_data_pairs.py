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
from dense_descriptor_grasp.data.pairs import (PAIR_KEYS, PairDataset, collate_pairs, make_augmentation_pair,
                                               make_multiview_pair)
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
