"""Pixelwise NT-Xent loss (Adrian et al. 2022) for the Dense Object Nets baseline (``method="ntxent"``).

For one pair with ``m`` valid correspondences ``(p_k in A, q_k in B)``, ``k = 1..m``:

```
a_k = normalize(desc_A(p_k)),  b_k = normalize(desc_B(q_k))       (bilinear samples, L2 over D)
s_kl = <a_k, b_l> / tau                                             (cosine similarity / temperature)
L_A->B = 1/m sum_k -log( exp(s_kk) / sum_l exp(s_kl) )              (positive: the partner b_k;
                                                                      negatives: the other m-1 sampled b_l)
L_B->A = 1/m sum_l -log( exp(s_ll) / sum_k exp(s_kl) )              (symmetric: b_l against every a_k)
L_pair = (L_A->B + L_B->A) / 2
```

Negatives are exactly the other sampled correspondences of the *other* image of the same pair (``m - 1`` per
anchor, per direction); descriptors of the same image and of other pairs in the batch are not used. Invalid
correspondences (``valid == False``) are neither anchors nor negatives. The batch loss is the mean of ``L_pair`` over
pairs with at least 2 valid correspondences (0 if there are none).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sample_descriptors", "ntxent_loss"]


def sample_descriptors(descriptors: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a descriptor image at pixel coordinates.

    Args:
        descriptors: ``(B, D, H, W)``.
        uv: ``(B, M, 2)`` pixels ``(u, v) = (column, row)``, pixel centres at integer coordinates.
    Returns:
        ``(B, M, D)``; exact at integer ``uv``.
    """
    if descriptors.dim() != 4 or uv.dim() != 3 or uv.shape[0] != descriptors.shape[0] or uv.shape[-1] != 2:
        raise ValueError(f"sample_descriptors: descriptors (B,D,H,W) and uv (B,M,2) expected, got {tuple(descriptors.shape)} and {tuple(uv.shape)}")
    H, W = descriptors.shape[-2:]
    uv = uv.to(descriptors.dtype)
    grid = torch.stack([(2 * uv[..., 0] + 1) / W - 1, (2 * uv[..., 1] + 1) / H - 1], dim=-1).unsqueeze(1)  # (B,1,M,2)
    out = F.grid_sample(descriptors, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B,D,1,M)
    return out.squeeze(2).transpose(1, 2)


def ntxent_loss(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    uv_a: torch.Tensor,
    uv_b: torch.Tensor,
    valid: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Symmetric pixelwise NT-Xent loss (see the module docstring for the exact formula and negatives).

    Args:
        desc_a, desc_b: ``(B, D, H, W)`` descriptor images (need not be normalised).
        uv_a, uv_b: ``(B, M, 2)`` corresponding pixels.
        valid: ``(B, M)`` bool.
        temperature: tau > 0.
    Returns:
        scalar; about ``log(m)`` for random descriptors, towards 0 for distinctive aligned ones.
    """
    if temperature <= 0:
        raise ValueError(f"ntxent_loss: temperature must be > 0, got {temperature}")
    if uv_a.shape != uv_b.shape or valid.shape != uv_a.shape[:2]:
        raise ValueError(f"ntxent_loss: uv_a, uv_b (B,M,2) and valid (B,M) expected, got {tuple(uv_a.shape)}, {tuple(uv_b.shape)}, {tuple(valid.shape)}")
    a = F.normalize(sample_descriptors(desc_a, uv_a), dim=-1)  # (B, M, D)
    b = F.normalize(sample_descriptors(desc_b, uv_b), dim=-1)
    valid = valid.to(torch.bool)
    logits = a @ b.transpose(1, 2) / temperature  # (B, M, M): row k = anchor a_k against every b_l
    pair_ok = valid.unsqueeze(2) & valid.unsqueeze(1)
    logits = logits.masked_fill(~pair_ok, float("-inf"))
    diag = torch.diagonal(logits, dim1=1, dim2=2)  # (B, M)
    safe = torch.where(valid, diag, torch.zeros_like(diag))
    lse_rows = torch.logsumexp(torch.where(valid.unsqueeze(2), logits, torch.zeros_like(logits)), dim=2)
    lse_cols = torch.logsumexp(torch.where(valid.unsqueeze(1), logits, torch.zeros_like(logits)), dim=1)
    a_to_b = torch.where(valid, lse_rows - safe, torch.zeros_like(safe))
    b_to_a = torch.where(valid, lse_cols - safe, torch.zeros_like(safe))
    count = valid.sum(1)
    per_pair = 0.5 * (a_to_b.sum(1) + b_to_a.sum(1)) / count.clamp_min(1)
    keep = count >= 2
    return (per_pair * keep).sum() / keep.sum().clamp_min(1)
