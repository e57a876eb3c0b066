"""The one inference path: an RGB image -> its dense descriptor image, and reference descriptors sampled from it.

The descriptor node (``DescriptorNode.compute_descriptors``), ``grasping.make_reference.build_reference`` (and
through it the demo and ``benchmarks/node_pipeline``) and ``benchmarks/grasp_sim``'s model predictor all call these
two functions, so a reference is sampled exactly as the live frames it is matched against are computed.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["descriptor_image", "descriptors_at", "gate_descriptors", "has_foreground", "needs_depth",
           "FOREGROUND_THRESHOLD"]

FOREGROUND_THRESHOLD = 0.5  # default of the live search (descriptor node, evaluation, grasp benchmark)


def has_foreground(model) -> bool:
    """True when ``model`` has the foreground head (``model.foreground``): it can gate its own search."""
    return getattr(model, "foreground_logits", None) is not None


def gate_descriptors(desc: np.ndarray, foreground: Optional[np.ndarray], threshold: Optional[float]) -> np.ndarray:
    """Descriptors of the pixels the model does not see as the target set to zero, in place.

    A zero descriptor is at L2 distance 1 (cosine distance 1) from every unit reference, so the search passes over
    it and the grasp node's ``max_distance`` (< 1) refuses it.

    Args:
        desc: ``(D, H, W)`` descriptor image (:func:`descriptor_image`).
        foreground: ``(H, W)`` probability that a pixel shows the target, or None (no head: nothing is gated).
        threshold: pixels below it are gated; None or 0 = off.
    Returns:
        ``desc``.
    """
    if foreground is None or not threshold:
        return desc
    if foreground.shape != desc.shape[1:]:
        raise ValueError(f"gate_descriptors: foreground {foreground.shape} must match the descriptor image "
                         f"{desc.shape[1:]}")
    desc[:, foreground < threshold] = 0.0
    return desc


def needs_depth(model) -> bool:
    """True when ``model`` reads the depth image (``input="rgbd"``): callers must pass ``depth`` and ``K``."""
    return getattr(model, "input", "rgb") == "rgbd"


def descriptor_image(model, rgb: np.ndarray, input_size: Optional[Sequence[int]] = None,
                     output_size: Optional[Sequence[int]] = None, device="cpu", normalize: bool = True,
                     depth: Optional[np.ndarray] = None, K: Optional[np.ndarray] = None,
                     foreground_threshold: Optional[float] = None, with_foreground: bool = False):
    """Dense descriptors of one image as the descriptor node computes them.

    Args:
        model: a :class:`~dense_descriptor_grasp.model.network.DenseDescriptorNet` (any decoder / method / input).
        rgb: ``(H, W, 3)`` uint8 RGB.
        input_size: ``(H_in, W_in)`` the network sees (antialiased bilinear resize; depth by the nearest pixel and
            K scaled with it); None = ``(H, W)``.
        output_size: ``(H_out, W_out)`` of the descriptor image; None = ``(H, W)``.
        normalize: L2-normalise over D (what references and matching use).
        depth: ``(H, W)`` metres (0 / NaN = missing) registered to ``rgb``; required by ``input="rgbd"`` models,
            ignored by the others.
        K: ``(3, 3)`` intrinsics of ``rgb``; required with ``depth``.
        foreground_threshold: for a model with the foreground head, descriptors where its target probability is
            below this are zero (:func:`gate_descriptors`): the live search's setting (``FOREGROUND_THRESHOLD``).
            None (default) = ungated, as a reference is sampled. Ignored by models without the head.
        with_foreground: also return the ``(H_out, W_out)`` target probability (None without the head).
    Returns:
        ``(D, H_out, W_out)`` float32, or ``(descriptors, foreground)`` with ``with_foreground``.
    """
    from dense_descriptor_grasp.geometry.camera import resize_depth_nearest, scale_intrinsics

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"descriptor_image: expected (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)[None]
    size_in = (h, w) if input_size is None else tuple(int(s) for s in input_size)
    if size_in != (h, w):
        x = torch.nn.functional.interpolate(x, size=size_in, mode="bilinear", align_corners=False, antialias=True)
    depth_t = K_t = None
    if needs_depth(model):
        if depth is None or K is None:
            raise ValueError("descriptor_image: the model reads depth (input 'rgbd'): pass depth and K of the image")
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != (h, w):
            raise ValueError(f"descriptor_image: depth {depth.shape} must have the colour image's size {(h, w)}")
        K = np.asarray(K, dtype=np.float64)
        if size_in != (h, w):
            depth, K = resize_depth_nearest(depth, size_in), scale_intrinsics(K, (h, w), size_in)
        depth_t = torch.from_numpy(np.ascontiguousarray(depth))[None].to(device)
        K_t = torch.as_tensor(K, dtype=torch.float32)[None].to(device)
    out = (h, w) if output_size is None else tuple(int(s) for s in output_size)
    was_training = bool(model.training)
    if was_training:  # BatchNorm statistics of a model in training mode would depend on the batch
        model.eval()
    try:
        with torch.inference_mode():
            d, fg = model.descriptors(x.to(device), out_size=out, normalize=normalize, depth=depth_t, K=K_t,
                                      with_foreground=True)
    finally:
        if was_training:
            model.train()
    desc = d[0].float().cpu().numpy()
    fg = None if fg is None else fg[0].float().cpu().numpy()
    gate_descriptors(desc, fg, foreground_threshold)
    return (desc, fg) if with_foreground else desc


def descriptors_at(desc: np.ndarray, uv) -> np.ndarray:
    """Reference descriptors: the descriptor image's values at pixels ``uv`` (nearest pixel, clipped to the image).

    Args:
        desc: ``(D, H, W)`` descriptor image from :func:`descriptor_image`.
        uv: ``(R, 2)`` pixels ``(u, v) = (column, row)``, pixel centres at integer coordinates.
    Returns:
        ``(R, D)`` float32 (unit length when ``desc`` is normalised: no interpolation between pixels).
    """
    desc = np.asarray(desc)
    if desc.ndim != 3:
        raise ValueError(f"descriptors_at: desc must be (D, H, W), got shape {desc.shape}")
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(uv)):
        raise ValueError("descriptors_at: pixel coordinates must be finite")
    _, H, W = desc.shape
    cols = np.clip(np.rint(uv[:, 0]).astype(np.int64), 0, W - 1)
    rows = np.clip(np.rint(uv[:, 1]).astype(np.int64), 0, H - 1)
    return np.ascontiguousarray(desc[:, rows, cols].T, dtype=np.float32)
