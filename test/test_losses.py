"""Each KeypointNet loss: ~0 on a constructed perfect case, clearly positive on a broken one, finite gradients."""
import math

import pytest
import torch

from dense_descriptor_grasp.geometry.se3 import make_se3, se3_apply, se3_exp, se3_inverse, se3_log, so3_exp
from dense_descriptor_grasp.training.losses import (
    degenerate_keypoints,
    keypoints_to_camera,
    multiview_consistency_loss,
    observed_depth_loss,
    relative_pose_loss,
    separation_loss,
    silhouette_loss,
    variance_loss,
)


def _delta_maps(uv_int, H, W):
    """(B, N, H, W) one-hot maps at integer pixels uv_int (B, N, 2)."""
    B, N, _ = uv_int.shape
    prob = torch.zeros(B, N, H, W)
    for b in range(B):
        for i in range(N):
            prob[b, i, int(uv_int[b, i, 1]), int(uv_int[b, i, 0])] = 1.0
    return prob


def _box_mask(B, H, W, u0, u1, v0, v1):
    mask = torch.zeros(B, H, W, dtype=torch.bool)
    mask[:, v0:v1, u0:u1] = True
    return mask


# ---------------------------------------------------------------------------------------------- silhouette
def test_silhouette_zero_inside_positive_outside():
    H, W = 24, 32
    mask = _box_mask(2, H, W, 8, 20, 6, 18)
    inside = _delta_maps(torch.tensor([[[10, 8], [19, 17]], [[8, 6], [15, 12]]]), H, W)
    outside = _delta_maps(torch.tensor([[[2, 2], [30, 20]], [[0, 0], [25, 3]]]), H, W)
    assert silhouette_loss(inside, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert silhouette_loss(outside, mask).item() > 10.0
    half = 0.5 * inside + 0.5 * outside
    assert silhouette_loss(half, mask).item() == pytest.approx(math.log(2), rel=1e-4)


def test_silhouette_ignores_empty_masks_and_checks_shapes():
    H, W = 8, 8
    prob = torch.full((2, 3, H, W), 1.0 / (H * W))
    mask = torch.zeros(2, H, W, dtype=torch.bool)
    mask[0] = True
    assert silhouette_loss(prob, mask).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="mask"):
        silhouette_loss(prob, mask[:, :4])


def test_silhouette_gradient_pushes_mass_into_mask():
    H, W = 12, 12
    logits = torch.zeros(1, 1, H, W, requires_grad=True)
    mask = _box_mask(1, H, W, 0, 6, 0, 12)
    loss = silhouette_loss(torch.softmax(logits.flatten(2), -1).view(1, 1, H, W), mask)
    loss.backward()
    g = logits.grad[0, 0]
    assert (g[:, :6] < 0).all() and (g[:, 6:] > 0).all()  # descent raises logits inside the mask


# ---------------------------------------------------------------------------------------------- variance
def test_variance_zero_for_delta_positive_for_spread():
    H, W = 20, 30
    uv = torch.tensor([[[5.0, 7.0], [22.0, 13.0]]])
    delta = _delta_maps(uv.long(), H, W)
    assert variance_loss(delta, uv).item() == pytest.approx(0.0, abs=1e-9)
    uniform = torch.full((1, 2, H, W), 1.0 / (H * W))
    centre = torch.tensor([[[(W - 1) / 2, (H - 1) / 2]] * 2])
    expected = ((W**2 - 1) / 12 + (H**2 - 1) / 12) * (2.0 / max(H, W)) ** 2  # variance of a discrete uniform
    assert variance_loss(uniform, centre).item() == pytest.approx(expected, rel=1e-4)
    # two-point map: variance (d/2)^2 in normalised units
    two = 0.5 * _delta_maps(torch.tensor([[[4, 10]]]), H, W) + 0.5 * _delta_maps(torch.tensor([[[14, 10]]]), H, W)
    assert variance_loss(two, torch.tensor([[[9.0, 10.0]]])).item() == pytest.approx((5 * 2 / 30) ** 2, rel=1e-5)


# ---------------------------------------------------------------------------------------------- separation
def test_separation_zero_when_separated_margin_squared_when_coincident():
    margin = 0.05
    separated = torch.tensor([[[0.0, 0, 0.5], [0.1, 0, 0.5], [0, 0.1, 0.5], [0.1, 0.1, 0.6]]])
    assert separation_loss(separated, margin).item() == 0.0
    coincident = torch.full((2, 4, 3), 0.3)
    assert separation_loss(coincident, margin).item() == pytest.approx(margin**2, rel=1e-6)
    close = torch.tensor([[[0.0, 0, 0.5], [0.03, 0, 0.5]]])  # one pair 3 cm apart: margin^2 - 0.03^2
    assert separation_loss(close, margin).item() == pytest.approx(margin**2 - 0.03**2, rel=1e-5)
    assert separation_loss(torch.zeros(1, 1, 3), margin).item() == 0.0


# ---------------------------------------------------------------------------------------------- multi-view
def _two_cameras():
    K = torch.tensor([[[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]]])
    T_wa = make_se3(so3_exp(torch.tensor([[0.1, -0.2, 0.05]])), torch.tensor([[0.1, 0.0, -0.3]]))
    T_wb = make_se3(so3_exp(torch.tensor([[-0.3, 0.4, 0.2]])), torch.tensor([[-0.2, 0.1, -0.25]]))
    return K, T_wa, T_wb


def _observe(X_world, K, T_world_cam):
    X_cam = se3_apply(se3_inverse(T_world_cam), X_world)
    uv = torch.stack([K[..., 0, 0, None] * X_cam[..., 0] / X_cam[..., 2] + K[..., 0, 2, None],
                      K[..., 1, 1, None] * X_cam[..., 1] / X_cam[..., 2] + K[..., 1, 2, None]], -1)
    return uv, X_cam[..., 2]


def test_multiview_zero_for_identical_world_points_positive_for_shifted():
    K, T_wa, T_wb = _two_cameras()
    X_world = torch.tensor([[[0.0, 0.0, 0.5], [0.05, -0.02, 0.55], [-0.04, 0.03, 0.48]]])
    uv_a, d_a = _observe(X_world, K, T_wa)
    uv_b, d_b = _observe(X_world, K, T_wb)
    assert (d_a > 0).all() and (d_b > 0).all()
    assert multiview_consistency_loss(uv_a, d_a, K, T_wa, uv_b, d_b, K, T_wb).item() == pytest.approx(0.0, abs=1e-10)
    uv_b2, d_b2 = _observe(X_world + torch.tensor([0.02, 0.0, 0.0]), K, T_wb)
    shifted = multiview_consistency_loss(uv_a, d_a, K, T_wa, uv_b2, d_b2, K, T_wb)
    assert shifted.item() == pytest.approx(0.5 * 0.02**2, rel=1e-3)  # quadratic branch, one coordinate off
    # linear branch of the Huber loss beyond delta
    big = multiview_consistency_loss(uv_a, d_a, K, T_wa, uv_b2, d_b2, K, T_wb, huber_delta=0.005)
    assert big.item() == pytest.approx(0.005 * (0.02 - 0.0025), rel=1e-3)


# ---------------------------------------------------------------------------------------------- relative pose
def _pose_case(B=2):
    g = torch.Generator().manual_seed(1)
    X_a = torch.rand(B, 6, 3, generator=g) * 0.1 + torch.tensor([0.0, 0.0, 0.5])
    T_wa = se3_exp(torch.randn(B, 6, generator=g) * 0.2)
    T_wb = se3_exp(torch.randn(B, 6, generator=g) * 0.2)
    T_ba = se3_inverse(T_wb) @ T_wa
    X_b = se3_apply(T_ba, X_a)
    return X_a, X_b, T_wa, T_wb


def test_relative_pose_zero_for_true_pose_positive_for_perturbed():
    X_a, X_b, T_wa, T_wb = _pose_case()
    assert relative_pose_loss(X_a, X_b, T_wa, T_wb).item() < 1e-4
    xi = torch.tensor([0.01, -0.02, 0.015, 0.05, 0.0, -0.03])
    X_b_pert = se3_apply(se3_exp(xi).expand(2, 4, 4), X_b)  # keypoints of B moved rigidly
    loss = relative_pose_loss(X_a, X_b_pert, T_wa, T_wb).item()
    # exact Kabsch -> T_pred = E T_truth, so the error is log(T_truth^-1 E T_truth) (the adjoint of xi)
    T_truth = se3_inverse(T_wb) @ T_wa
    expected = se3_log(se3_inverse(T_truth) @ se3_exp(xi) @ T_truth).norm(dim=-1).mean().item()
    assert loss == pytest.approx(expected, rel=1e-3)
    assert loss > 0.05


def test_relative_pose_gradient_finite_and_degenerate_pairs_skipped():
    X_a, X_b, T_wa, T_wb = _pose_case()
    X_a = X_a.clone()
    X_a[1] = 0.3  # all keypoints of pair 1 coincide: Kabsch undefined
    X_a.requires_grad_(True)
    assert degenerate_keypoints(X_a, X_b).tolist() == [False, True]
    X_b_pert = X_b + torch.tensor([0.0, 0.01, 0.0])
    loss = relative_pose_loss(X_a, X_b_pert, T_wa, T_wb)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(X_a.grad).all()
    assert X_a.grad[1].abs().max() == 0 and X_a.grad[0].abs().max() > 0
    with pytest.raises(ValueError, match="N >= 3"):
        relative_pose_loss(X_a[:, :2], X_b[:, :2], T_wa, T_wb)


def test_keypoints_to_camera_is_eq5():
    K = torch.tensor([[[200.0, 0, 10], [0, 100.0, 20], [0, 0, 1]]])
    X = keypoints_to_camera(torch.tensor([[[30.0, 10.0]]]), torch.tensor([[2.0]]), K)
    assert torch.allclose(X, torch.tensor([[[0.2, -0.2, 2.0]]]))


# ---------------------------------------------------------------------------------------------- observed depth (addition)
def test_observed_depth_zero_when_matching_positive_when_off_and_ignores_invalid_pixels():
    H, W = 10, 12
    depth_image = torch.full((1, H, W), 0.4)
    depth_image[0, :, 6:] = 0.0  # right half has no depth
    prob = torch.zeros(1, 2, H, W)
    prob[0, 0, 2, 3] = 1.0  # on valid depth
    prob[0, 1, 2, 3] = 0.5
    prob[0, 1, 5, 9] = 0.5  # half its mass on invalid pixels: observed depth still 0.4
    assert observed_depth_loss(prob, torch.tensor([[0.4, 0.4]]), depth_image).item() == pytest.approx(0.0, abs=1e-6)
    off = observed_depth_loss(prob, torch.tensor([[0.8, 0.2]]), depth_image).item()
    assert off == pytest.approx(math.log(2), rel=1e-5)
    only_invalid = torch.zeros(1, 1, H, W)
    only_invalid[0, 0, 0, 11] = 1.0
    assert observed_depth_loss(only_invalid, torch.tensor([[5.0]]), depth_image).item() == 0.0


def test_length_scale_rescales_separation_and_multiview():
    K, T_wa, T_wb = _two_cameras()
    X_world = torch.tensor([[[0.0, 0.0, 0.5], [0.05, -0.02, 0.55], [-0.04, 0.03, 0.48]]])
    uv_a, d_a = _observe(X_world, K, T_wa)
    uv_b, d_b = _observe(X_world + torch.tensor([0.02, 0.0, 0.0]), K, T_wb)
    metres = multiview_consistency_loss(uv_a, d_a, K, T_wa, uv_b, d_b, K, T_wb)
    scaled = multiview_consistency_loss(uv_a, d_a, K, T_wa, uv_b, d_b, K, T_wb, length_scale=0.05)
    assert scaled.item() == pytest.approx(metres.item() / 0.05**2, rel=1e-3)
