"""Geometry-supervised descriptors: each target pixel's descriptor is pulled towards a fixed embedding of its point
on the object (``losses.coords``; after Kupcsik et al. 2021, "optimal descriptors" from the object's geometry).

For a point ``x`` in the target object's frame (metres) and ``D`` descriptor channels:

```
w_1..w_F ~ N(0, I / sigma^2)  (3-vectors, F = D // 2, drawn once from a fixed seed)
e(x) = normalize([cos(w_1 . x), ..., cos(w_F . x), sin(w_1 . x), ..., sin(w_F . x)])      (zero-padded to D)
<e(x), e(y)> = 1/F sum_i cos(w_i . (x - y))  ~  exp(-|x - y|^2 / (2 sigma^2))           (random Fourier features)
L = mean over valid correspondences, both views, of 1 - <normalize(desc(p)), e(x_p)>
```

So descriptors of one surface point agree across views by construction, points ``sigma`` apart on the object are
told apart, and far points are nearly orthogonal: the matching the grasp node does (nearest descriptor) then finds
the same point of the object. It needs the object pose of every view (synthetic data; ``xyz`` of the pair is NaN
otherwise and the term is 0). Combine it with the NT-Xent term, which keeps background and distractor pixels away.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .ntxent import sample_descriptors

__all__ = ["coordinate_embedding", "coordinate_loss", "surface_balance_weights"]

_SEED = 20181


def coordinate_embedding(xyz: torch.Tensor, dim: int, sigma: float) -> torch.Tensor:
    """``(..., 3)`` object-frame points (metres) -> ``(..., dim)`` unit vectors (module docstring's ``e(x)``)."""
    if sigma <= 0:
        raise ValueError(f"coordinate_embedding: sigma must be > 0, got {sigma}")
    if dim < 2:
        raise ValueError(f"coordinate_embedding: dim must be >= 2, got {dim}")
    g = torch.Generator().manual_seed(_SEED)
    w = (torch.randn(dim // 2, 3, generator=g, dtype=torch.float64) / sigma).to(xyz.device, xyz.dtype)
    phase = xyz @ w.T
    e = torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)
    if dim % 2:
        e = torch.cat([e, torch.zeros_like(e[..., :1])], dim=-1)
    return F.normalize(e, dim=-1)


def surface_balance_weights(xyz: torch.Tensor, valid: torch.Tensor, voxel: float) -> torch.Tensor:
    """Per-correspondence weights that make each piece of the object's surface count alike (``losses.surface_balance``).

    A part that many pixels show (the top of a body facing the camera) would otherwise outweigh a small or
    foreshortened one (a beak, a side seen edge-on) in every loss term. The object frame is cut into cubes of edge
    ``voxel`` metres; a correspondence weighs ``1 / n`` for the ``n`` valid correspondences of its pair in its cube.

    Args:
        xyz: ``(B, M, 3)`` object-frame points of the correspondences (NaN = unknown).
        valid: ``(B, M)`` bool.
        voxel: cube edge, metres (> 0).
    Returns:
        ``(B, M)`` float, 0 where not valid, with a mean of 1 over each pair's valid correspondences. Correspondences
        without a known point all share one bin of their pair (a pair without object points keeps weight 1).
    """
    if voxel <= 0:
        raise ValueError(f"surface_balance_weights: voxel must be > 0, got {voxel}")
    if xyz.shape[:2] != valid.shape or xyz.shape[-1] != 3:
        raise ValueError(f"surface_balance_weights: xyz (B,M,3) and valid (B,M) expected, got {tuple(xyz.shape)}, "
                         f"{tuple(valid.shape)}")
    valid = valid.to(torch.bool)
    known = torch.isfinite(xyz).all(-1)
    cells = torch.floor(torch.nan_to_num(xyz.detach().double()) / voxel).long()
    out = torch.zeros(valid.shape, dtype=torch.float32, device=xyz.device)
    for b in range(xyz.shape[0]):
        keep = valid[b]
        if not keep.any():
            continue
        key = torch.where(known[b].unsqueeze(-1), cells[b], torch.full_like(cells[b], -(2 ** 40)))[keep]
        _, inverse, counts = torch.unique(key, dim=0, return_inverse=True, return_counts=True)
        w = 1.0 / counts[inverse].float()
        out[b, keep] = w * (w.numel() / w.sum())
    return out


def coordinate_loss(desc_a: torch.Tensor, desc_b: torch.Tensor, uv_a: torch.Tensor, uv_b: torch.Tensor,
                    xyz: torch.Tensor, valid: torch.Tensor, sigma: float, image_size=None,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - cos`` between the descriptors at both views' correspondences and the embedding of their object points.

    Args:
        desc_a, desc_b: ``(B, D, h, w)`` descriptor maps (low resolution is fine, see ``sample_descriptors``).
        uv_a, uv_b: ``(B, M, 2)`` pixels of the ``image_size`` images; xyz: ``(B, M, 3)`` object-frame points (NaN =
            unknown); valid: ``(B, M)`` bool.
        sigma: metres, the embedding's length scale.
        weights: optional ``(B, M)`` per-correspondence weights (:func:`surface_balance_weights`); None = all 1.
    Returns:
        scalar in [0, 2]; 0 (attached to the graph) when no correspondence has a known object point.
    """
    keep = valid.to(torch.bool) & torch.isfinite(xyz).all(-1)
    w = keep.to(desc_a.dtype) if weights is None else weights.to(desc_a.dtype) * keep
    D = desc_a.shape[1]
    target = coordinate_embedding(torch.nan_to_num(xyz.to(desc_a.dtype)), D, sigma)  # (B, M, D)
    total = desc_a.sum() * 0.0
    for desc, uv in ((desc_a, uv_a), (desc_b, uv_b)):
        d = F.normalize(sample_descriptors(desc, uv, image_size), dim=-1)
        cos = (d * target).sum(-1)
        total = total + ((1.0 - cos) * w).sum() / w.sum().clamp_min(1e-12)
    return 0.5 * total
