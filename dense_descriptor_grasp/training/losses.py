"""The KeypointNet-task losses of the paper (section 3.3), one function each.

Notation: ``B`` pairs, ``N`` keypoints, images ``H x W``. ``prob (B,N,H,W)`` is the spatial probability map of eq. 4
(sums to 1 over ``H x W``), ``uv (B,N,2)`` its expectation in pixels ``(u, v) = (column, row)``, ``depth (B,N)`` the
expected depth in metres. ``K (B,3,3)`` intrinsics, ``T_world_cam (B,4,4)`` camera poses (``X_world = T X_cam``).

Every loss returns a scalar tensor (mean over the batch) that is differentiable in its predicted inputs.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from dense_descriptor_grasp.geometry.camera import backproject
from dense_descriptor_grasp.geometry.rigid_fit import kabsch
from dense_descriptor_grasp.geometry.se3 import se3_apply, se3_compose, se3_inverse, se3_log

__all__ = [
    "silhouette_loss",
    "variance_loss",
    "separation_loss",
    "observed_depth_loss",
    "keypoints_to_camera",
    "keypoints_to_world",
    "multiview_consistency_loss",
    "relative_pose_loss",
    "degenerate_keypoints",
]


def _masked_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``keep``; 0 (still attached to the graph) when nothing is kept."""
    keep = keep.to(values.dtype)
    return (values * keep).sum() / keep.sum().clamp_min(1.0)


def silhouette_loss(prob: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Silhouette consistency (KeypointNet ``L_obj``): keypoints must lie on the object.

    ``L = mean_{b,i} -log( sum_{u,v} mask_b(u,v) prob_{b,i}(u,v) )``

    Args:
        prob: ``(B, N, H, W)`` spatial probability maps.
        mask: ``(B, H, W)`` bool / {0,1} object mask.
    Returns:
        scalar; 0 when every map lies inside its mask. Pairs with an empty mask are left out of the mean.
    """
    if prob.dim() != 4 or mask.shape != (prob.shape[0],) + tuple(prob.shape[2:]):
        raise ValueError(f"silhouette_loss: prob (B,N,H,W) and mask (B,H,W) expected, got {tuple(prob.shape)} and {tuple(mask.shape)}")
    m = mask.to(prob.dtype).unsqueeze(1)
    inside = (prob * m).sum(dim=(2, 3))  # (B, N)
    per_kp = -torch.log(inside.clamp_min(eps))
    keep = (mask.flatten(1).any(dim=1)).unsqueeze(1).expand_as(per_kp)
    return _masked_mean(per_kp, keep)


def variance_loss(prob: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Variance loss (KeypointNet ``L_var``): each probability map should be peaked around its expectation.

    ``L = mean_{b,i} sum_{u,v} prob_{b,i}(u,v) ||s ((u,v) - uv_{b,i})||^2`` with ``s = 2 / max(H, W)``, i.e. in
    normalised image coordinates where the longer side spans 2 (KeypointNet's [-1, 1] convention), so its weight
    (paper: 1e-3) does not depend on the image size.

    Args:
        prob: ``(B, N, H, W)``; uv: ``(B, N, 2)`` the expectation of ``prob`` in pixels.
    Returns:
        scalar; 0 for a one-pixel (delta) map.
    """
    if prob.dim() != 4 or uv.shape != prob.shape[:2] + (2,):
        raise ValueError(f"variance_loss: prob (B,N,H,W) and uv (B,N,2) expected, got {tuple(prob.shape)} and {tuple(uv.shape)}")
    H, W = prob.shape[-2:]
    s = 2.0 / max(H, W)
    us = torch.arange(W, dtype=prob.dtype, device=prob.device)
    vs = torch.arange(H, dtype=prob.dtype, device=prob.device)
    du2 = ((us.view(1, 1, W) - uv[..., 0:1]) * s) ** 2  # (B, N, W)
    dv2 = ((vs.view(1, 1, H) - uv[..., 1:2]) * s) ** 2  # (B, N, H)
    var = (prob.sum(dim=2) * du2).sum(-1) + (prob.sum(dim=3) * dv2).sum(-1)
    return var.mean()


def separation_loss(points: torch.Tensor, margin: float) -> torch.Tensor:
    """Separation loss (KeypointNet ``L_sep``, in 3-D): keypoints should be at least ``margin`` metres apart.

    ``L = mean_b 1/(N(N-1)) sum_{i != j} max(0, margin^2 - ||X_i - X_j||^2)``

    Args:
        points: ``(B, N, 3)`` keypoints in one camera frame (metres).
        margin: delta, metres.
    Returns:
        scalar; 0 when every pair is at least ``margin`` apart, ``margin^2`` when all points coincide; 0 for N < 2.
    """
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"separation_loss: points (B,N,3) expected, got {tuple(points.shape)}")
    B, N, _ = points.shape
    if N < 2:
        return points.sum() * 0.0
    diff = points.unsqueeze(2) - points.unsqueeze(1)  # (B, N, N, 3)
    d2 = (diff * diff).sum(-1)
    hinge = F.relu(margin * margin - d2)
    off_diag = ~torch.eye(N, dtype=torch.bool, device=points.device)
    return hinge[:, off_diag].mean()


def observed_depth_loss(prob: torch.Tensor, depth: torch.Tensor, depth_image: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Observed-depth consistency (an addition to the paper; weight ``losses.observed_depth``, 0 = paper).

    ``d_obs_i = sum prob_i * Z / sum prob_i * [Z > 0]`` (the depth image ``Z`` averaged under the keypoint's
    probability map, invalid pixels left out); ``L = mean_{b,i} |log d_i - log d_obs_i|`` (scale-free).

    Without it the predicted keypoint depth is a free variable on augmentation pairs (the virtual cameras barely
    change depth), and keypoints collapse onto one pixel while meeting the 3-D separation margin along the viewing
    ray. Keypoints whose map sees no valid depth are left out.

    Args:
        prob: ``(B, N, H, W)``; depth: ``(B, N)`` predicted metres; depth_image: ``(B, H, W)`` metres, 0 = invalid.
    Returns:
        scalar; 0 when each predicted depth equals the observed depth under its map.
    """
    if depth_image.shape != (prob.shape[0],) + tuple(prob.shape[2:]) or depth.shape != prob.shape[:2]:
        raise ValueError(
            f"observed_depth_loss: prob (B,N,H,W), depth (B,N), depth_image (B,H,W) expected, got "
            f"{tuple(prob.shape)}, {tuple(depth.shape)}, {tuple(depth_image.shape)}"
        )
    Z = depth_image.to(prob.dtype)
    Z = torch.where(torch.isfinite(Z) & (Z > 0), Z, torch.zeros_like(Z)).unsqueeze(1)
    valid_mass = (prob * (Z > 0).to(prob.dtype)).sum(dim=(2, 3))
    # the target is detached: the term moves the depth head, not the probability maps
    d_obs = ((prob * Z).sum(dim=(2, 3)) / valid_mass.clamp_min(eps)).detach()
    keep = valid_mass > 1e-3
    err = (torch.log(depth.clamp_min(eps)) - torch.log(d_obs.clamp_min(eps))).abs()
    return _masked_mean(err, keep)


def keypoints_to_camera(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Eq. 5: ``X_cam = K^-1 [u, v, 1]^T d`` -> ``(B, N, 3)`` from ``uv (B,N,2)``, ``depth (B,N)``, ``K (B,3,3)``."""
    return backproject(uv, depth, K)


def keypoints_to_world(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, T_world_cam: torch.Tensor) -> torch.Tensor:
    """Eq. 5 then ``T_world_cam X_cam`` -> ``(B, N, 3)`` world points."""
    return se3_apply(T_world_cam.to(uv.dtype), keypoints_to_camera(uv, depth, K))


def multiview_consistency_loss(
    uv_a: torch.Tensor,
    depth_a: torch.Tensor,
    K_a: torch.Tensor,
    T_world_cam_a: torch.Tensor,
    uv_b: torch.Tensor,
    depth_b: torch.Tensor,
    K_b: torch.Tensor,
    T_world_cam_b: torch.Tensor,
    huber_delta: float = 1.0,
    length_scale: float = 1.0,
) -> torch.Tensor:
    """Multi-view consistency (eq. 5-6): both views' keypoints, lifted to the world frame, must coincide.

    ``X_w^A = T_world_cam_a K_a^-1 [u,v,1]^T d`` (same for B);
    ``L = mean_{b,i} sum_{x,y,z} huber_delta(X_w^A / s - X_w^B / s)`` with ``huber_d(e) = e^2/2`` if ``|e| <= d`` else
    ``d (|e| - d/2)`` (``torch.nn.functional.huber_loss``), ``s = length_scale`` (1: metres, as the paper).

    Args:
        uv_*: ``(B, N, 2)`` pixels; depth_*: ``(B, N)`` metres; K_*: ``(B, 3, 3)``; T_world_cam_*: ``(B, 4, 4)``.
        huber_delta: where the loss turns from quadratic to linear (in units of ``length_scale``).
        length_scale: metres per unit of the loss (e.g. the object size; 1 = metres).
    Returns:
        scalar; 0 for identical world points.
    """
    Xa = keypoints_to_world(uv_a, depth_a, K_a, T_world_cam_a)
    Xb = keypoints_to_world(uv_b, depth_b, K_b, T_world_cam_b)
    return F.huber_loss(Xa / length_scale, Xb / length_scale, reduction="none", delta=huber_delta).sum(-1).mean()


def degenerate_keypoints(X_a: torch.Tensor, X_b: torch.Tensor, rel_tol: float = 1e-3, abs_tol: float = 1e-10) -> torch.Tensor:
    """``(B,)`` bool: pairs whose Kabsch problem is ill-posed for autograd.

    ``torch.linalg.svd``'s backward divides by ``s_i^2 - s_j^2`` of the cross-covariance ``H``; a pair counts as
    degenerate when ``H`` is (nearly) zero, when its two largest singular values leave less than ``rel_tol s_1``
    between them or the smaller two do (repeated singular values), or when the centred source points are (nearly)
    collinear, or holds non-finite values. Computed without gradients.
    """
    with torch.no_grad():
        finite = torch.isfinite(X_a).all(-1).all(-1) & torch.isfinite(X_b).all(-1).all(-1)
        X_a = torch.where(finite.view(-1, 1, 1), X_a, torch.zeros_like(X_a))
        X_b = torch.where(finite.view(-1, 1, 1), X_b, torch.zeros_like(X_b))
        ca = X_a - X_a.mean(-2, keepdim=True)
        cb = X_b - X_b.mean(-2, keepdim=True)
        s = torch.linalg.svdvals(ca.transpose(-1, -2) @ cb)  # (B, 3) descending
        spread = torch.linalg.svdvals(ca)
        s1 = s[..., 0]
        bad = (s1 <= abs_tol) | ~finite
        bad |= (s[..., 0] - s[..., 1]) <= rel_tol * s1
        bad |= (s[..., 1] - s[..., 2]) <= rel_tol * s1
        bad |= spread[..., 1] <= rel_tol * spread[..., 0]
    return bad


_REFERENCE_POINTS = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.1]])


def relative_pose_loss(
    X_a: torch.Tensor,
    X_b: torch.Tensor,
    T_world_cam_a: torch.Tensor,
    T_world_cam_b: torch.Tensor,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Relative pose loss (eq. 7): the rigid motion fitted to the predicted keypoints must be the true one.

    ``T_pred = kabsch(X_a, X_b)`` (= ``T_B<-A``, maps camera-A points onto camera-B points);
    ``T_truth = T_world_cam_b^-1 T_world_cam_a``; ``L = mean_b || se3_log(T_truth^-1 T_pred) ||_2`` over the 6-vector
    ``(rho [m], omega [rad])``.

    Pairs whose keypoints make Kabsch ill-posed (:func:`degenerate_keypoints`, e.g. collapsed or collinear keypoints
    at initialisation) are left out of the mean, and their Kabsch input is replaced by a fixed well-conditioned
    point set so that no NaN gradient can leak from the SVD.

    Args:
        X_a, X_b: ``(B, N, 3)`` predicted keypoints in the camera frames of A and B (N >= 3).
        T_world_cam_a, T_world_cam_b: ``(B, 4, 4)``.
    Returns:
        scalar; 0 when ``X_b = T_truth X_a``.
    """
    if X_a.shape != X_b.shape or X_a.dim() != 3 or X_a.shape[-1] != 3 or X_a.shape[1] < 3:
        raise ValueError(f"relative_pose_loss: X_a and X_b (B,N,3) with N >= 3 expected, got {tuple(X_a.shape)} and {tuple(X_b.shape)}")
    T_truth = se3_compose(se3_inverse(T_world_cam_b.to(X_a.dtype)), T_world_cam_a.to(X_a.dtype))
    bad = degenerate_keypoints(X_a, X_b)
    if bool(bad.any()):
        N = X_a.shape[1]
        ref = _REFERENCE_POINTS.to(X_a)[torch.arange(N) % 4] + 0.01 * torch.arange(N, dtype=X_a.dtype).unsqueeze(-1).to(X_a.device) ** 1.5
        ref_b = se3_apply(T_truth.detach(), ref.expand_as(X_a))
        sel = bad.view(-1, 1, 1)
        X_a = torch.where(sel, ref.expand_as(X_a), X_a)
        X_b = torch.where(sel, ref_b, X_b)
    T_pred = kabsch(X_a, X_b, check=False)
    xi = se3_log(se3_compose(se3_inverse(T_truth), T_pred))  # (B, 6)
    per_pair = torch.sqrt((xi * xi).sum(-1) + eps)
    return _masked_mean(per_pair, ~bad)
