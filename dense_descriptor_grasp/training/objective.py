"""One pair batch -> the weighted loss terms of a method (twin forward: views A and B in one trunk pass).

The pair batch follows docs/ARCHITECTURE.md (``rgb_a``, ``rgb_b``, ``mask_*``, ``K_*``, ``T_world_cam_*``, ``uv_*``,
``valid``). ``compute_losses`` returns a dict of scalar tensors: one entry per unweighted loss term plus ``"total"``
(the weighted sum that is back-propagated), and the network outputs under ``"outputs"`` for logging.
"""
from __future__ import annotations

import torch

from dense_descriptor_grasp.model.inference import needs_depth

from .config import LossConfig
from .losses import (
    keypoints_to_camera,
    multiview_consistency_loss,
    observed_depth_loss,
    relative_pose_loss,
    separation_loss,
    silhouette_loss,
    variance_loss,
)
from .coords import coordinate_loss, surface_balance_weights
from .ntxent import ntxent_loss

__all__ = ["PRECISIONS", "cpu_has_native_bf16", "resolve_precision", "compute_losses", "foreground_loss", "keypoint_losses", "ntxent_losses", "LOSS_TERMS", "move_batch"]

LOSS_TERMS = {
    "keypoint": ("silhouette", "variance", "separation", "multiview", "pose", "observed_depth", "ntxent", "foreground"),
    "ntxent": ("ntxent", "coords", "coords_deep", "foreground"),
}
_REQUIRED = {
    "keypoint": ("rgb_a", "rgb_b", "mask_a", "mask_b", "depth_a", "depth_b", "K_a", "K_b", "T_world_cam_a", "T_world_cam_b"),
    "ntxent": ("rgb_a", "rgb_b", "uv_a", "uv_b", "valid"),
}


def move_batch(batch: dict, device) -> dict:
    """Tensors of a batch moved to ``device`` (other entries kept)."""
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


PRECISIONS = ("fp32", "bf16")


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU computes in bfloat16 natively (x86 flags ``avx512_bf16`` or ``amx_bf16``, Linux's
    ``/proc/cpuinfo``). Plain AVX512 emulates it, and there bf16 autocast measured slower than fp32 (docs/TRAINING.md)."""
    try:
        with open(cpuinfo, "r") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device) -> str:
    """``train.precision`` -> ``"fp32"`` or ``"bf16"``. ``"auto"``: bf16 where the hardware computes it natively
    (a CUDA device with bfloat16; a CPU with AVX512-BF16 or AMX, :func:`cpu_has_native_bf16`), else fp32."""
    if precision in PRECISIONS:
        return precision
    if precision != "auto":
        raise ValueError(f"precision must be one of {PRECISIONS + ('auto',)}, got {precision!r}")
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def _twin_forward(model, batch: dict, precision: str = "fp32") -> tuple[dict, dict]:
    """Views A and B through the network in one pass. ``precision="bf16"``: the network runs under bfloat16 autocast
    (``train.precision``) and its outputs come back as float32, so every loss is computed in float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    rgb_a, rgb_b = batch["rgb_a"], batch["rgb_b"]
    if rgb_a.shape != rgb_b.shape:
        raise ValueError(f"pair batch: rgb_a {tuple(rgb_a.shape)} and rgb_b {tuple(rgb_b.shape)} must have the same shape")
    depth = K = None
    if needs_depth(model):
        if not all(k in batch for k in ("depth_a", "depth_b", "K_a", "K_b")):
            raise KeyError("pair batch lacks depth_a / depth_b / K_a / K_b needed by a model with input 'rgbd'")
        depth = torch.cat([batch["depth_a"], batch["depth_b"]], dim=0)
        K = torch.cat([batch["K_a"], batch["K_b"]], dim=0)
    with torch.autocast(rgb_a.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(torch.cat([rgb_a, rgb_b], dim=0), depth, K)
    if precision != "fp32":
        out = {k: ([c.float() for c in v] if isinstance(v, list) else v.float() if v.is_floating_point() else v)
               for k, v in out.items()}
    B = rgb_a.shape[0]

    def half(v, part):  # a tensor, or a list of them ("coarse")
        return [c[part] for c in v] if isinstance(v, list) else v[part]

    return ({k: half(v, slice(None, B)) for k, v in out.items()},
            {k: half(v, slice(B, None)) for k, v in out.items()})


def keypoint_losses(model, batch: dict, cfg: LossConfig, precision: str = "fp32") -> dict:
    """The paper's five keypoint terms for one pair batch (unweighted) and their weighted ``total``."""
    out_a, out_b = _twin_forward(model, batch, precision)
    X_a = keypoints_to_camera(out_a["uv"], out_a["depth"], batch["K_a"])
    X_b = keypoints_to_camera(out_b["uv"], out_b["depth"], batch["K_b"])
    L = cfg.length_scale  # separation and multi-view in units of L metres (1 = paper)
    terms = {
        "silhouette": 0.5 * (silhouette_loss(out_a["prob"], batch["mask_a"]) + silhouette_loss(out_b["prob"], batch["mask_b"])),
        "variance": 0.5 * (variance_loss(out_a["prob"], out_a["uv"]) + variance_loss(out_b["prob"], out_b["uv"])),
        "separation": 0.5 * (separation_loss(X_a / L, cfg.separation_margin / L) + separation_loss(X_b / L, cfg.separation_margin / L)),
        "multiview": multiview_consistency_loss(
            out_a["uv"], out_a["depth"], batch["K_a"], batch["T_world_cam_a"],
            out_b["uv"], out_b["depth"], batch["K_b"], batch["T_world_cam_b"],
            huber_delta=cfg.huber_delta, length_scale=L,
        ),
        "pose": relative_pose_loss(X_a, X_b, batch["T_world_cam_a"], batch["T_world_cam_b"]),
    }
    if cfg.observed_depth > 0:
        terms["observed_depth"] = 0.5 * (
            observed_depth_loss(out_a["prob"], out_a["depth"], batch["depth_a"])
            + observed_depth_loss(out_b["prob"], out_b["depth"], batch["depth_b"])
        )
    if cfg.ntxent > 0:  # keypoint + NT-Xent on the same decoded features (losses.ntxent > 0)
        terms["ntxent"] = _ntxent_term(out_a["features"], out_b["features"], batch, cfg)
    weights = cfg.weights()
    terms["total"] = sum(weights[k] * v for k, v in terms.items())
    terms["outputs"] = (out_a, out_b)
    return terms


def _surface_weights(batch: dict, cfg: LossConfig):
    """``losses.surface_balance``'s per-correspondence weights (B, M), or None when it is off."""
    if cfg.surface_balance <= 0:
        return None
    if "xyz" not in batch:
        raise KeyError("pair batch lacks xyz (object points of the correspondences) needed by losses.surface_balance")
    return surface_balance_weights(batch["xyz"], batch["valid"], cfg.surface_balance)


def _ntxent_term(feat_a, feat_b, batch: dict, cfg: LossConfig, weights=None):
    """NT-Xent sampled from the low-resolution features at the correspondences, with the pair's off-object
    negatives (``neg_uv_*``) when the batch has them (``data.num_negatives > 0``)."""
    if "uv_a" not in batch:
        raise KeyError("pair batch lacks uv_a / uv_b / valid needed by the NT-Xent term (losses.ntxent)")
    negatives = {}
    if cfg.ntxent_negatives and "neg_uv_a" in batch:
        negatives = {k: batch[k] for k in ("neg_uv_a", "neg_valid_a", "neg_uv_b", "neg_valid_b")}
    return ntxent_loss(
        feat_a, feat_b, batch["uv_a"], batch["uv_b"], batch["valid"], cfg.ntxent_temperature,
        image_size=batch["rgb_a"].shape[-2:], hard_negatives=cfg.hard_negatives,
        exclude_px=cfg.ntxent_exclude_px, weights=weights, **negatives,
    )


def ntxent_losses(model, batch: dict, cfg: LossConfig, precision: str = "fp32") -> dict:
    """The NT-Xent term on the descriptor features of both views (sampled at the correspondences)."""
    out_a, out_b = _twin_forward(model, batch, precision)
    weights = _surface_weights(batch, cfg)
    loss = _ntxent_term(out_a["features"], out_b["features"], batch, cfg, weights)
    terms = {"ntxent": loss}
    if cfg.coords > 0:  # geometry supervision of the same descriptors (needs the pairs' object points, xyz)
        if "xyz" not in batch:
            raise KeyError("pair batch lacks xyz (object points of the correspondences) needed by losses.coords")
        terms["coords"] = coordinate_loss(out_a["features"], out_b["features"], batch["uv_a"], batch["uv_b"],
                                          batch["xyz"], batch["valid"], cfg.coords_sigma, batch["rgb_a"].shape[-2:],
                                          weights=weights)
    if cfg.coords_deep > 0:  # the same term on the coarse heads alone (deep supervision, model.coarse_heads)
        if "coarse" not in out_a:
            raise KeyError("losses.coords_deep needs a model with the coarse heads (model.coarse_heads: true)")
        if "xyz" not in batch:
            raise KeyError("pair batch lacks xyz (object points of the correspondences) needed by losses.coords_deep")
        terms["coords_deep"] = sum(
            coordinate_loss(ca, cb, batch["uv_a"], batch["uv_b"], batch["xyz"], batch["valid"], cfg.coords_deep_sigma,
                            batch["rgb_a"].shape[-2:], weights=weights)
            for ca, cb in zip(out_a["coarse"], out_b["coarse"])) / len(out_a["coarse"])
    terms["total"] = loss + sum(getattr(cfg, k) * terms[k] for k in ("coords", "coords_deep") if k in terms)
    terms["outputs"] = (out_a, out_b)
    return terms


def foreground_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the foreground head: ``logits (B, 1, h, w)`` (bilinearly upsampled to the mask's
    size, as inference does) against the target ``mask (B, H, W)`` bool; the mean over pixels and views."""
    up = torch.nn.functional.interpolate(logits, size=mask.shape[-2:], mode="bilinear", align_corners=False)
    return torch.nn.functional.binary_cross_entropy_with_logits(up[:, 0], mask.to(up.dtype))


def compute_losses(model, batch: dict, cfg: LossConfig, precision: str = "fp32") -> dict:
    """Dispatch on ``model.method``; checks that the batch holds the entries the method needs. A model with the
    foreground head also gets the ``foreground`` term (weight ``losses.foreground``) on both views' target masks.
    ``precision``: ``train.precision`` (``"bf16"``: the network's forward pass under bfloat16 autocast)."""
    method = model.method
    required = _REQUIRED[method] + (("mask_a", "mask_b") if getattr(model, "foreground_logits", None) is not None else ())
    missing = [k for k in dict.fromkeys(required) if k not in batch]
    if missing:
        raise KeyError(f"pair batch lacks {missing} needed by method {method!r} (see docs/ARCHITECTURE.md)")
    losses = keypoint_losses if method == "keypoint" else ntxent_losses
    terms = losses(model, batch, cfg, precision)
    out_a, out_b = terms["outputs"]
    if "foreground" in out_a:
        terms["foreground"] = 0.5 * (foreground_loss(out_a["foreground"], batch["mask_a"])
                                     + foreground_loss(out_b["foreground"], batch["mask_b"]))
        terms["total"] = terms["total"] + cfg.foreground * terms["foreground"]
    return terms
