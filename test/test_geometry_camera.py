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


def test_surface_normals_of_a_tilted_plane_a_step_and_missing_depth():
    from dense_descriptor_grasp.geometry.camera import surface_normals

    H, W = 40, 50
    K = np.array([[60.0, 0, 24.5], [0, 60.0, 19.5], [0, 0, 1]])
    # plane through (0, 0, 1) with normal n: n . X = n_z  ->  depth of pixel ray r = n_z / (n . r)
    n = np.array([0.3, -0.2, -1.0])
    n /= np.linalg.norm(n)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    depth = (n[2] / (rays @ n)).astype(np.float32)
    normals = surface_normals(depth, K)
    assert normals.shape == (H, W, 3)
    inner = normals[1:-1, 1:-1].reshape(-1, 3)
    np.testing.assert_allclose(inner, np.broadcast_to(n, inner.shape), atol=1e-3)   # facing the camera: n_z < 0
    assert np.all(normals[0] == 0) and np.all(normals[:, -1] == 0)                  # border: no neighbours
    # a missing pixel zeroes itself and its four neighbours; a depth step zeroes the pixels across it
    holed = depth.copy()
    holed[20, 25] = 0.0
    stepped = depth.copy()
    stepped[:, 30:] += 0.2
    nh, ns = surface_normals(holed, K), surface_normals(stepped, K)
    for r, c in [(20, 25), (19, 25), (21, 25), (20, 24), (20, 26)]:
        assert np.all(nh[r, c] == 0)
    assert np.all(ns[5:-5, 29:31] == 0) and np.abs(np.linalg.norm(ns[5:-5, 10:28], axis=-1) - 1).max() < 1e-5
