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

__all__ = ["coordinate_embedding", "coordinate_loss"]

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


def coordinate_loss(desc_a: torch.Tensor, desc_b: torch.Tensor, uv_a: torch.Tensor, uv_b: torch.Tensor,
                    xyz: torch.Tensor, valid: torch.Tensor, sigma: float, image_size=None) -> torch.Tensor:
    """``1 - cos`` between the descriptors at both views' correspondences and the embedding of their object points.

    Args:
        desc_a, desc_b: ``(B, D, h, w)`` descriptor maps (low resolution is fine, see ``sample_descriptors``).
        uv_a, uv_b: ``(B, M, 2)`` pixels of the ``image_size`` images; xyz: ``(B, M, 3)`` object-frame points (NaN =
            unknown); valid: ``(B, M)`` bool.
        sigma: metres, the embedding's length scale.
    Returns:
        scalar in [0, 2]; 0 (attached to the graph) when no correspondence has a known object point.
    """
    keep = valid.to(torch.bool) & torch.isfinite(xyz).all(-1)
    D = desc_a.shape[1]
    target = coordinate_embedding(torch.nan_to_num(xyz.to(desc_a.dtype)), D, sigma)  # (B, M, D)
    total = desc_a.sum() * 0.0
    for desc, uv in ((desc_a, uv_a), (desc_b, uv_b)):
        d = F.normalize(sample_descriptors(desc, uv, image_size), dim=-1)
        cos = (d * target).sum(-1)
        total = total + ((1.0 - cos) * keep).sum() / keep.sum().clamp_min(1)
    return 0.5 * total
