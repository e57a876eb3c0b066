"""Pixelwise NT-Xent loss (Adrian et al. 2022) for the Dense Object Nets baseline (``method="ntxent"``).

For one pair with ``m`` valid correspondences ``(p_k in A, q_k in B)``, ``k = 1..m``, and off-object pixels
``n^A_j`` (in A) and ``n^B_j`` (in B) -- background and other objects, sampled by the pair maker:

```
a_k = normalize(desc_A(p_k)),  b_k = normalize(desc_B(q_k)),  c^B_j = normalize(desc_B(n^B_j))   (bilinear)
s_kl = <a_k, b_l> / tau                                                (cosine similarity / temperature)
L_A->B = 1/m sum_k -log( exp(s_kk) / (sum_l exp(s_kl) + sum_{j in N_k} exp(<a_k, c^B_j> / tau)) )
L_B->A = the same with A and B swapped (anchors b_l, off-object negatives c^A_j of A)
L_pair = (L_A->B + L_B->A) / 2
```

Negatives of an anchor: the other ``m - 1`` sampled correspondences of the *other* image of the pair (as in
Adrian et al.) plus the other image's off-object pixels ``N_k``: all of them, or with hard-negative mining
(``hard_negatives = h > 0``) only the ``h`` most similar to the anchor. Off-object negatives teach the descriptor
what the target is *not* (table, background, distractors), which is what matching over a whole cluttered image
needs. Invalid rows (``valid == False``) are neither anchors nor negatives. The batch loss is the mean of
``L_pair`` over pairs with at least 2 valid correspondences (0 if there are none).

Descriptors are sampled from the low-resolution feature map at the correspondences' image coordinates
(``image_size``): the values equal those of the bilinearly upsampled full-resolution image, which is never built,
so training memory does not grow with ``H x W x D``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = ["sample_descriptors", "ntxent_loss"]


def sample_descriptors(descriptors: torch.Tensor, uv: torch.Tensor, image_size: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Bilinear samples of a descriptor map at image pixel coordinates.

    Args:
        descriptors: ``(B, D, h, w)``: the full-resolution image (``h, w = H, W``) or a low-resolution feature map
            whose cells are upsampled to ``(H, W)`` with ``align_corners=False`` (cell ``i`` at pixel
            ``(i + 0.5) H / h - 0.5``).
        uv: ``(B, M, 2)`` pixels ``(u, v) = (column, row)`` of the ``(H, W)`` image, pixel centres at integers.
        image_size: ``(H, W)``; None = the map's own size.
    Returns:
        ``(B, M, D)``; equal to sampling ``F.interpolate(descriptors, (H, W), bilinear)`` at integer ``uv``.
    """
    if descriptors.dim() != 4 or uv.dim() != 3 or uv.shape[0] != descriptors.shape[0] or uv.shape[-1] != 2:
        raise ValueError(f"sample_descriptors: descriptors (B,D,H,W) and uv (B,M,2) expected, got {tuple(descriptors.shape)} and {tuple(uv.shape)}")
    H, W = (descriptors.shape[-2:] if image_size is None else (int(image_size[0]), int(image_size[1])))
    if uv.shape[1] == 0:
        return descriptors.new_zeros(descriptors.shape[0], 0, descriptors.shape[1])
    uv = uv.to(descriptors.dtype)
    grid = torch.stack([(2 * uv[..., 0] + 1) / W - 1, (2 * uv[..., 1] + 1) / H - 1], dim=-1).unsqueeze(1)  # (B,1,M,2)
    out = F.grid_sample(descriptors, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B,D,1,M)
    return out.squeeze(2).transpose(1, 2)


def _off_object_logits(anchors: torch.Tensor, negatives: torch.Tensor, neg_valid: torch.Tensor, temperature: float,
                       hard_negatives: int) -> torch.Tensor:
    """``(B, M, K')`` logits of anchors ``(B, M, D)`` against off-object negatives ``(B, K, D)``; invalid = -inf.
    With ``hard_negatives = h > 0`` only each anchor's ``h`` most similar negatives are kept (``K' = h``)."""
    logits = anchors @ negatives.transpose(1, 2) / temperature
    logits = logits.masked_fill(~neg_valid.unsqueeze(1), float("-inf"))
    if 0 < hard_negatives < logits.shape[-1]:
        logits = torch.topk(logits, hard_negatives, dim=-1).values
    return logits


def ntxent_loss(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    uv_a: torch.Tensor,
    uv_b: torch.Tensor,
    valid: torch.Tensor,
    temperature: float = 0.1,
    image_size: Optional[Sequence[int]] = None,
    neg_uv_a: Optional[torch.Tensor] = None,
    neg_valid_a: Optional[torch.Tensor] = None,
    neg_uv_b: Optional[torch.Tensor] = None,
    neg_valid_b: Optional[torch.Tensor] = None,
    hard_negatives: int = 0,
    exclude_px: float = 0.0,
    weights: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Symmetric pixelwise NT-Xent loss (see the module docstring for the exact formula and negatives).

    Args:
        desc_a, desc_b: ``(B, D, h, w)`` descriptor maps (need not be normalised; low resolution is fine).
        uv_a, uv_b: ``(B, M, 2)`` corresponding pixels of the ``image_size`` images.
        valid: ``(B, M)`` bool.
        temperature: tau > 0.
        image_size: ``(H, W)`` of the images ``uv`` refers to; None = the maps' size.
        neg_uv_a, neg_valid_a: ``(B, K, 2)``, ``(B, K)`` off-object pixels of A (negatives for B's anchors).
        neg_uv_b, neg_valid_b: the same in B (negatives for A's anchors). None = no off-object negatives.
        hard_negatives: keep only the ``h`` most similar off-object negatives per anchor (0 = all).
        exclude_px: other correspondences closer than this many pixels to the positive (in both images) are not
            negatives of the anchor (0 = all are): neighbouring pixels of one surface patch are not pushed apart.
        weights: optional ``(B, M)`` weights of the correspondences as anchors (``losses.surface_balance``); a pair's
            loss is their weighted mean. None = all 1.
    Returns:
        scalar; about ``log(m + K)`` for random descriptors, towards 0 for distinctive aligned ones.
    """
    if temperature <= 0:
        raise ValueError(f"ntxent_loss: temperature must be > 0, got {temperature}")
    if hard_negatives < 0:
        raise ValueError(f"ntxent_loss: hard_negatives must be >= 0, got {hard_negatives}")
    if uv_a.shape != uv_b.shape or valid.shape != uv_a.shape[:2]:
        raise ValueError(f"ntxent_loss: uv_a, uv_b (B,M,2) and valid (B,M) expected, got {tuple(uv_a.shape)}, {tuple(uv_b.shape)}, {tuple(valid.shape)}")
    a = F.normalize(sample_descriptors(desc_a, uv_a, image_size), dim=-1)  # (B, M, D)
    b = F.normalize(sample_descriptors(desc_b, uv_b, image_size), dim=-1)
    valid = valid.to(torch.bool)
    logits = a @ b.transpose(1, 2) / temperature  # (B, M, M): row k = anchor a_k against every b_l
    pair_ok = valid.unsqueeze(2) & valid.unsqueeze(1)
    if exclude_px > 0:
        near_a = torch.cdist(uv_a.to(a.dtype), uv_a.to(a.dtype)) < exclude_px
        near_b = torch.cdist(uv_b.to(a.dtype), uv_b.to(a.dtype)) < exclude_px
        eye = torch.eye(uv_a.shape[1], dtype=torch.bool, device=a.device)
        pair_ok = pair_ok & ~((near_a | near_b) & ~eye)
    logits = logits.masked_fill(~pair_ok, float("-inf"))
    diag = torch.diagonal(logits, dim1=1, dim2=2)  # (B, M)
    safe = torch.where(valid, diag, torch.zeros_like(diag))
    rows = torch.where(valid.unsqueeze(2), logits, torch.zeros_like(logits))  # (B, M, M) anchors a_k
    cols = torch.where(valid.unsqueeze(1), logits, torch.zeros_like(logits)).transpose(1, 2)  # anchors b_l
    for anchors, rows_or_cols, neg_uv, neg_valid, desc in ((a, "rows", neg_uv_b, neg_valid_b, desc_b),
                                                             (b, "cols", neg_uv_a, neg_valid_a, desc_a)):
        if neg_uv is None or neg_uv.shape[1] == 0:
            continue
        if neg_valid is None or neg_valid.shape != neg_uv.shape[:2]:
            raise ValueError("ntxent_loss: off-object negatives need neg_uv (B,K,2) and neg_valid (B,K)")
        negatives = F.normalize(sample_descriptors(desc, neg_uv, image_size), dim=-1)
        extra = _off_object_logits(anchors, negatives, neg_valid.to(torch.bool), temperature, hard_negatives)
        if rows_or_cols == "rows":
            rows = torch.cat([rows, extra], dim=2)
        else:
            cols = torch.cat([cols, extra], dim=2)
    lse_rows = torch.logsumexp(rows, dim=2)
    lse_cols = torch.logsumexp(cols, dim=2)
    a_to_b = torch.where(valid, lse_rows - safe, torch.zeros_like(safe))
    b_to_a = torch.where(valid, lse_cols - safe, torch.zeros_like(safe))
    count = valid.sum(1)
    if weights is None:
        w = valid.to(a.dtype)
    else:
        if weights.shape != valid.shape:
            raise ValueError(f"ntxent_loss: weights must be (B, M) like valid, got {tuple(weights.shape)}")
        w = weights.to(a.dtype) * valid
    per_pair = 0.5 * ((w * a_to_b).sum(1) + (w * b_to_a).sum(1)) / w.sum(1).clamp_min(1e-12)
    keep = count >= 2
    return (per_pair * keep).sum() / keep.sum().clamp_min(1)
