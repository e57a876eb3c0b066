"""Standard PCK@k for dense descriptors (ROS-free, torch).

For every ground-truth correspondence ``(uv_a, uv_b)`` of an image pair:

1. take A's descriptor at ``uv_a`` (the nearest pixel: pixel centres sit at integer coordinates),
2. find its best match in B: the pixel of B (inside B's object mask by default, or anywhere in the image) whose
   descriptor has the smallest Euclidean distance to it,
3. the **pixel error** is the Euclidean distance in pixels between that best-match pixel and the true ``uv_b``.

``PCK@k`` is the fraction of correspondences whose pixel error is ``<= k`` pixels. The area under the PCK curve
(:func:`pck_auc`) is the mean of ``PCK@k`` over ``k = 1, 2, ..., 100`` pixels, i.e. normalised to ``[0, 1]``.

Shapes: descriptor images are ``(D, H, W)``, pixels ``(M, 2)`` as ``(u, v) = (column, row)``, masks ``(H, W)`` bool.

Memory: the best match is found over chunks of candidate pixels, so the largest temporary is a ``(M, chunk)``
distance block (``chunk_elements`` numbers) plus a ``(D, chunk)`` slice of B; no ``(M, H*W, D)`` or
``(M, H*W)`` tensor is built for a 640x480 image.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import torch

__all__ = [
    "PCK_THRESHOLDS",
    "AUC_MAX_K",
    "sample_descriptors",
    "best_match_pixels",
    "correspondence_pixel_errors",
    "pck_at_k",
    "pck_curve",
    "pck_auc",
    "summarize_pixel_errors",
]

PCK_THRESHOLDS = (1, 3, 5, 10, 20)
AUC_MAX_K = 100
DEFAULT_CHUNK_ELEMENTS = 1 << 22  # 4 Mi floats = 16 MB per distance block


def _as_tensor(x, name: str, dtype=None) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    return x if dtype is None else x.to(dtype)


def _check_descriptor_image(desc, name: str) -> torch.Tensor:
    desc = _as_tensor(desc, name)
    if desc.dim() != 3:
        raise ValueError(f"{name} must be a descriptor image of shape (D, H, W), got {tuple(desc.shape)}")
    if not desc.is_floating_point():
        desc = desc.float()
    return desc


def _check_uv(uv, name: str) -> torch.Tensor:
    uv = _as_tensor(uv, name)
    if uv.dim() != 2 or uv.shape[1] != 2:
        raise ValueError(f"{name} must be pixel coordinates of shape (M, 2) as (u, v), got {tuple(uv.shape)}")
    return uv.to(torch.float64)


def _nearest_pixel(uv: torch.Tensor, height: int, width: int, name: str) -> torch.Tensor:
    """``(M, 2)`` float (u, v) -> ``(M, 2)`` long, rounded to the nearest pixel centre; ValueError outside the image."""
    pix = torch.round(uv).long()
    outside = (pix[:, 0] < 0) | (pix[:, 0] >= width) | (pix[:, 1] < 0) | (pix[:, 1] >= height)
    if bool(outside.any()):
        bad = uv[outside][0].tolist()
        raise ValueError(f"{name}: {int(outside.sum())} pixel(s) outside the {width}x{height} image, e.g. (u, v) = {bad}")
    return pix


def sample_descriptors(desc, uv, name: str = "uv") -> torch.Tensor:
    """Descriptors at pixels: ``desc (D, H, W)``, ``uv (M, 2)`` float (u, v) -> ``(M, D)`` (nearest pixel).

    ``name`` is used in the error message for pixels outside the image."""
    desc = _check_descriptor_image(desc, "desc")
    uv = _check_uv(uv, name)
    D, H, W = desc.shape
    pix = _nearest_pixel(uv, H, W, name).to(desc.device)
    return desc[:, pix[:, 1], pix[:, 0]].T.contiguous()


def best_match_pixels(
    desc_a,
    desc_b,
    uv_a,
    mask_b=None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
):
    """Best match in B of A's descriptors at ``uv_a``.

    Args:
        desc_a: ``(D, H_a, W_a)`` descriptor image of A.
        desc_b: ``(D, H_b, W_b)`` descriptor image of B.
        uv_a: ``(M, 2)`` pixels of A as (u, v); rounded to the nearest pixel.
        mask_b: ``(H_b, W_b)`` bool candidate pixels of B (the object mask), or None for the whole image.
        chunk_elements: size of one ``(M, chunk)`` distance block; bounds the temporary memory.
    Returns:
        ``uv (M, 2)`` float64 best-match pixels of B as (u, v) (integer valued) and ``distance (M,)`` float64,
        the Euclidean descriptor distance of each best match. Ties go to the first candidate in row-major order.
    Raises:
        ValueError: mismatched descriptor dimensions, bad shapes, an empty mask or pixels outside A.
    """
    desc_a = _check_descriptor_image(desc_a, "desc_a")
    desc_b = _check_descriptor_image(desc_b, "desc_b")
    if desc_a.shape[0] != desc_b.shape[0]:
        raise ValueError(f"desc_a and desc_b have different descriptor dimensions: {desc_a.shape[0]} vs {desc_b.shape[0]}")
    if chunk_elements < 1:
        raise ValueError(f"chunk_elements must be >= 1, got {chunk_elements}")
    D, Hb, Wb = desc_b.shape
    query = sample_descriptors(desc_a, uv_a, "uv_a").to(desc_b.device, desc_b.dtype)  # (M, D)
    M = query.shape[0]
    flat_b = desc_b.reshape(D, Hb * Wb)
    if mask_b is None:
        candidates = torch.arange(Hb * Wb, device=desc_b.device)
    else:
        mask_b = _as_tensor(mask_b, "mask_b")
        if tuple(mask_b.shape) != (Hb, Wb):
            raise ValueError(f"mask_b must have shape (H, W) = {(Hb, Wb)} like desc_b, got {tuple(mask_b.shape)}")
        candidates = torch.nonzero(mask_b.reshape(-1).bool(), as_tuple=False).squeeze(1).to(desc_b.device)
        if candidates.numel() == 0:
            raise ValueError("mask_b is empty: no candidate pixels in image B (use the whole image instead)")
    if M == 0:
        return torch.zeros(0, 2, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)

    best_d2 = torch.full((M,), float("inf"), dtype=desc_b.dtype, device=desc_b.device)
    best_idx = torch.zeros(M, dtype=torch.long, device=desc_b.device)
    q_sq = (query * query).sum(1, keepdim=True)  # (M, 1)
    chunk = max(1, int(chunk_elements) // max(M, 1))
    with torch.no_grad():
        for start in range(0, candidates.numel(), chunk):
            idx = candidates[start:start + chunk]
            block = flat_b.index_select(1, idx)  # (D, c)
            d2 = q_sq - 2.0 * (query @ block) + (block * block).sum(0, keepdim=True)  # (M, c)
            d2_min, arg = d2.min(dim=1)
            better = d2_min < best_d2
            best_d2 = torch.where(better, d2_min, best_d2)
            best_idx = torch.where(better, idx[arg], best_idx)
    u = (best_idx % Wb).to(torch.float64)
    v = torch.div(best_idx, Wb, rounding_mode="floor").to(torch.float64)
    return torch.stack([u, v], dim=1).cpu(), best_d2.clamp_min(0).sqrt().to(torch.float64).cpu()


def correspondence_pixel_errors(
    desc_a,
    desc_b,
    uv_a,
    uv_b,
    mask_b=None,
    valid=None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> np.ndarray:
    """Pixel error of each ground-truth correspondence: ``||best_match(desc_a[uv_a]) - uv_b||`` in pixels.

    Args:
        desc_a, desc_b: ``(D, H, W)`` descriptor images.
        uv_a, uv_b: ``(M, 2)`` corresponding pixels (u, v) in A and B.
        mask_b: ``(H, W)`` bool object mask of B restricting the search, or None for the whole image.
        valid: ``(M,)`` bool, correspondences to keep (e.g. the pair's ``valid``), or None for all.
    Returns:
        ``(M',)`` float64 numpy pixel errors of the kept correspondences.
    """
    uv_a = _check_uv(uv_a, "uv_a")
    uv_b = _check_uv(uv_b, "uv_b")
    if uv_a.shape != uv_b.shape:
        raise ValueError(f"uv_a and uv_b must have the same shape, got {tuple(uv_a.shape)} and {tuple(uv_b.shape)}")
    if valid is not None:
        valid = _as_tensor(valid, "valid").bool().reshape(-1).cpu()
        if valid.numel() != uv_a.shape[0]:
            raise ValueError(f"valid must have one entry per correspondence ({uv_a.shape[0]}), got {valid.numel()}")
        uv_a, uv_b = uv_a[valid], uv_b[valid]
    pred, _ = best_match_pixels(desc_a, desc_b, uv_a, mask_b=mask_b, chunk_elements=chunk_elements)
    return torch.linalg.norm(pred - uv_b.cpu(), dim=1).numpy()


def _errors_array(errors) -> np.ndarray:
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if e.size and not np.all(e >= 0):
        raise ValueError("pixel errors must be non-negative numbers")
    return e


def pck_at_k(errors, k: float) -> float:
    """Fraction of pixel errors ``<= k``; NaN when there are no errors."""
    e = _errors_array(errors)
    return float(np.mean(e <= k)) if e.size else float("nan")


def pck_curve(errors, ks: Optional[Iterable[float]] = None) -> np.ndarray:
    """``PCK@k`` for each ``k`` (default ``1..100``): ``(K,)`` float64."""
    e = np.sort(_errors_array(errors))
    ks = np.arange(1, AUC_MAX_K + 1, dtype=np.float64) if ks is None else np.asarray(list(ks), dtype=np.float64)
    if e.size == 0:
        return np.full(ks.shape, np.nan)
    return np.searchsorted(e, ks, side="right") / e.size


def pck_auc(errors, max_k: int = AUC_MAX_K) -> float:
    """Area under ``PCK(k)`` for integer ``k = 1..max_k``, normalised to ``[0, 1]`` (the mean of those PCKs)."""
    if max_k < 1:
        raise ValueError(f"max_k must be >= 1, got {max_k}")
    return float(np.mean(pck_curve(errors, range(1, int(max_k) + 1))))


def summarize_pixel_errors(errors, thresholds: Sequence[float] = PCK_THRESHOLDS, max_k: int = AUC_MAX_K) -> dict:
    """JSON-safe summary: ``{"num_correspondences", "pck": {"1": ..., ...}, "auc", "median_error_px", "mean_error_px"}``."""
    e = _errors_array(errors)
    nan = float("nan")
    return {
        "num_correspondences": int(e.size),
        "pck": {str(k if float(k) != int(k) else int(k)): pck_at_k(e, k) for k in thresholds},
        "auc": pck_auc(e, max_k) if e.size else nan,
        "auc_max_k": int(max_k),
        "median_error_px": float(np.median(e)) if e.size else nan,
        "mean_error_px": float(np.mean(e)) if e.size else nan,
    }
