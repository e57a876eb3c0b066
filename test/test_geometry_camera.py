import numpy as np
import pytest
import torch

from dense_descriptor_grasp.geometry import (
    backproject,
    backproject_depth_image,
    check_intrinsics,
    decode_depth,
    project,
    valid_depth,
)

K = np.array([[525.0, 0.0, 319.5], [0.0, 520.0, 239.5], [0.0, 0.0, 1.0]])


def test_backproject_against_hand_computed_values():
    uv = np.array([[319.5, 239.5], [844.5, 239.5], [319.5, 759.5]])
    z = np.array([1.0, 2.0, 0.5])
    pts = backproject(uv, z, K)
    assert np.allclose(pts, [[0, 0, 1.0], [2.0, 0, 2.0], [0, 0.5, 0.5]])


def test_projection_round_trip_batched_torch():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(4, 100, 3, generator=g, dtype=torch.float64) + torch.tensor([-0.5, -0.5, 0.3], dtype=torch.float64)
    Ks = torch.as_tensor(K).expand(4, 3, 3)
    uv, z = project(pts, Ks)
    assert torch.allclose(backproject(uv, z, Ks), pts, atol=1e-12)


def test_depth_image_backprojection_matches_pointwise():
    depth = np.random.default_rng(0).uniform(0.5, 2.0, size=(6, 8))
    cloud = backproject_depth_image(depth, K)
    v, u = 4, 5
    assert np.allclose(cloud[v, u], backproject(np.array([[u, v]], float), depth[v:v + 1, u], K)[0])


def test_decode_depth_units_and_invalid_values():
    raw16 = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    d = decode_depth(raw16, "16UC1")
    assert d.dtype == np.float32 and np.allclose(d, [[0, 1.0], [1.5, 65.535]])
    raw32 = np.array([[np.nan, np.inf], [0.0, 1.25]], dtype=np.float32)
    d = decode_depth(raw32, "32FC1")
    assert np.array_equal(valid_depth(d), [[False, False], [False, True]])
    assert d[1, 1] == np.float32(1.25)
    with pytest.raises(ValueError, match="rgb8"):
        decode_depth(raw16, "rgb8")
    with pytest.raises(ValueError, match="uint16"):
        decode_depth(raw32, "16UC1")


def test_check_intrinsics_rejects_uncalibrated():
    with pytest.raises(ValueError, match="camera_info.*uncalibrated"):
        check_intrinsics(np.zeros((3, 3)), source="camera_info")
    with pytest.raises(ValueError, match="3x3"):
        check_intrinsics(np.eye(4))
    assert check_intrinsics(K).shape == (3, 3)
