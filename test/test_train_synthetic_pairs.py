"""The synthetic pair batches of conftest.py (``make_pair_batch``) are self-consistent: geometry and colours."""
from __future__ import annotations

import numpy as np
import torch

from dense_descriptor_grasp.geometry.camera import backproject, project
from dense_descriptor_grasp.geometry.se3 import se3_apply, se3_compose, se3_inverse


def test_pair_geometry_is_consistent(make_pair_batch):
    b = make_pair_batch(batch_size=2, H=48, W=64, M=50)
    assert b["rgb_a"].shape == (2, 3, 48, 64) and b["uv_a"].shape == (2, 50, 2) and b["valid"].dtype == torch.bool
    depth = torch.full(b["uv_a"].shape[:2], 0.5)
    X_a = backproject(b["uv_a"], depth, b["K_a"])
    T_b_a = se3_compose(se3_inverse(b["T_world_cam_b"]), b["T_world_cam_a"])
    uv_b, z_b = project(se3_apply(T_b_a, X_a), b["K_b"])
    assert torch.allclose(uv_b, b["uv_b"], atol=1e-3)
    assert torch.allclose(z_b, depth, atol=1e-6)


def test_pair_colours_agree_at_correspondences(make_pair_batch):
    b = make_pair_batch(batch_size=1, H=64, W=64, M=200, thetas=(0.7,), shifts=((2.0, 1.0),))
    uv_a = b["uv_a"][0].long()
    uv_b = b["uv_b"][0].round().long()
    ok = b["valid"][0]
    ca = b["rgb_a"][0][:, uv_a[ok, 1], uv_a[ok, 0]]
    cb = b["rgb_b"][0][:, uv_b[ok, 1], uv_b[ok, 0]]
    # nearest-pixel rounding in B: colours agree up to the texture's local gradient
    assert (ca - cb).abs().mean() < 0.08
    assert b["mask_b"][0][uv_b[ok, 1], uv_b[ok, 0]].float().mean() > 0.95
    assert np.isfinite(b["rgb_b"].numpy()).all()
