"""Kabsch / Umeyama rigid fit between corresponding 3-D point sets (weighted, batched, differentiable)."""
from __future__ import annotations

import torch

from ._backend import numpy_compatible
from .se3 import make_se3, se3_apply

__all__ = ["kabsch", "fit_residual", "DegeneratePointsError"]


class DegeneratePointsError(ValueError):
    """Fewer than 3 weighted points, or points (nearly) on one line: the rotation is not determined."""


@numpy_compatible
def kabsch(src, dst, weights=None, check: bool = True, collinear_tol: float = 1e-6):
    """Best rigid transform ``T_dst_src`` (rotation + translation, no scale) with ``dst ~ R src + t``.

    Minimises ``sum_i w_i ||R src_i + t - dst_i||^2``. Reflections are excluded (``det R = +1``) by flipping the
    sign of the smallest singular direction (Umeyama's correction).

    Args:
        src: ``(*B, N, 3)`` points.
        dst: ``(*B, N, 3)`` corresponding points.
        weights: ``(*B, N)`` non-negative weights, or None for equal weights. Zero-weight points are ignored.
        check: raise :class:`DegeneratePointsError` (a ``ValueError``) when fewer than 3 points carry weight or
            the weighted points are collinear. Costs a device sync; turn it off inside a training step that
            guarantees enough points.
        collinear_tol: relative size of the second singular value of the centred source below which the points
            count as collinear.
    Returns:
        ``(*B, 4, 4)`` transform.
    """
    if src.shape != dst.shape or src.shape[-1] != 3:
        raise ValueError(f"kabsch expects src and dst of equal shape (*B, N, 3), got {tuple(src.shape)} and {tuple(dst.shape)}")
    dst = dst.to(src.dtype)
    if weights is None:
        weights = torch.ones(src.shape[:-1], dtype=src.dtype, device=src.device)
    else:
        weights = weights.to(src.dtype)
        if weights.shape != src.shape[:-1]:
            raise ValueError(f"kabsch weights must have shape {tuple(src.shape[:-1])}, got {tuple(weights.shape)}")
    if check:
        count = (weights > 0).sum(-1)
        if src.shape[-2] < 3 or bool((count < 3).any()):
            raise DegeneratePointsError(
                f"kabsch needs at least 3 points with positive weight, got {int(count.min()) if count.numel() else 0}"
            )
    w_sum = weights.sum(-1, keepdim=True).clamp_min(1e-12)
    w = (weights / w_sum).unsqueeze(-1)  # (*B, N, 1)
    mu_src = (w * src).sum(-2, keepdim=True)
    mu_dst = (w * dst).sum(-2, keepdim=True)
    src_c = src - mu_src
    dst_c = dst - mu_dst
    H = (w * src_c).transpose(-1, -2) @ dst_c  # (*B, 3, 3) = sum w src dst^T
    if check:
        spread = torch.linalg.svdvals((w.sqrt() * src_c).detach())  # (*B, 3) descending
        if bool((spread[..., 1] <= collinear_tol * spread[..., 0].clamp_min(1e-300)).any()) or bool(
            (spread[..., 0] <= 1e-15).any()
        ):
            raise DegeneratePointsError("kabsch: the source points are collinear (or coincident); the rotation is not determined")
    U, _, Vh = torch.linalg.svd(H)
    V = Vh.transpose(-1, -2)
    d = torch.sign(_det3(V @ U.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    S = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1))
    R = V @ S @ U.transpose(-1, -2)
    t = (mu_dst - mu_src @ R.transpose(-1, -2)).squeeze(-2)
    return make_se3(R, t)


def _det3(M: torch.Tensor) -> torch.Tensor:
    """Determinant ``(*B,)`` of ``(*B, 3, 3)`` by cofactors (``torch.linalg.det`` costs ~1000x more on tiny
    batches when torch runs a thread pool)."""
    return (
        M[..., 0, 0] * (M[..., 1, 1] * M[..., 2, 2] - M[..., 1, 2] * M[..., 2, 1])
        - M[..., 0, 1] * (M[..., 1, 0] * M[..., 2, 2] - M[..., 1, 2] * M[..., 2, 0])
        + M[..., 0, 2] * (M[..., 1, 0] * M[..., 2, 1] - M[..., 1, 1] * M[..., 2, 0])
    )


@numpy_compatible
def fit_residual(T, src, dst, weights=None):
    """Weighted RMS distance ``(*B,)`` between ``T src`` and ``dst`` (metres when the points are)."""
    err2 = ((se3_apply(T, src) - dst.to(src.dtype)) ** 2).sum(-1)
    if weights is None:
        return err2.mean(-1).sqrt()
    weights = weights.to(src.dtype)
    return ((weights * err2).sum(-1) / weights.sum(-1).clamp_min(1e-12)).sqrt()
